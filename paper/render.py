"""paper.md from paper.template.md: every number in the text is looked up in the CSV tables.

A placeholder ``{{TABLE: col=value; col=value | FIELD}}`` finds the single row of
``tables/TABLE.csv`` whose columns equal the given values (numbers compared as numbers) and
prints FIELD. FIELD is a column name, or ``slope_ci`` ("−0.50 [−0.53, −0.47]", from slope,
ci_low, ci_high), or another estimate with its interval (``INTERVAL_FIELDS``). ``{{name}}``
(no table) prints a value the caller supplies.

A placeholder that resolves to nothing is an error, never a silent "n/a": a table that does not
exist, a filter or field that names no column, filters that match no row or several rows, a
``{{name}}`` nobody supplied. ``render`` reports all of them in one ``ValueError``. A row that
exists but holds no value (an unresolvable measurement; the tables write null as an empty cell)
prints "n/a": the measurement is part of the study, it just has no number.

Only the full profile runs every source the text cites. A smaller profile (smoke, quick) renders
the same template with ``strict=False``: a placeholder whose table or row that run did not produce
(a source outside the profile, a skipped stage) prints NOT_RUN instead, while template mistakes (a
field or filter column the table does not have, an ambiguous match) stay errors.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*:([^|}]*)\|\s*(\w+)\s*\}\}")
NAMED_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
TEMPLATE = Path(__file__).with_name("paper.template.md")

NULL = "n/a"  # a row that exists with an empty cell: the tables' null (e.g. an unresolvable TPR)
NOT_RUN = "not in this run"  # strict=False only: the run produced no such table, row or value
# The profiles whose tables hold every row the template cites: their paper must resolve fully.
COMPLETE_PROFILES = ("full",)
# Fields made of several columns: the estimate and its interval.
INTERVAL_FIELDS = {
    "slope_ci": ("slope", "ci_low", "ci_high"),
    "beta_S_ci": ("beta_S", "beta_S_ci_low", "beta_S_ci_high"),
    "real_ci": ("real_slope", "real_ci_low", "real_ci_high"),
    "simulated_ci": ("simulated_slope", "simulated_ci_low", "simulated_ci_high"),
    "asymptotic_ci": ("asymptotic_slope", "asymptotic_low", "asymptotic_high"),
    "c_ci": ("c", "c_low", "c_high"),
    "rms_ci": ("rms_scaled", "rms_low", "rms_high"),
    "q50_ci": ("q50_scaled", "q50_low", "q50_high"),
    "q99_ci": ("q99_scaled", "q99_low", "q99_high"),
    "max_ci": ("max_scaled", "max_low", "max_high"),
    "measured_ci": ("measured", "ci_low", "ci_high"),
    "theory_ci": ("theory", "theory_low", "theory_high"),
    # Columns whose names are not identifiers (the bridge's rules).
    "paired": ("moments-paired",),
    "iid": ("moments-iid",),
    "paired_error": ("moments-paired_log10_error",),
    "iid_error": ("moments-iid_log10_error",),
}


class Table(list):
    """A table's rows (dicts of strings) that also knows its columns, even when it has no rows."""

    def __init__(self, rows=(), columns=()):
        super().__init__(rows)
        self.columns = tuple(columns)


class MissingRow(LookupError):
    """The placeholder is well formed for its table, but the table holds no row (or no table)
    for it: a template mistake in the full profile, a source not run in a smaller one."""


def _columns(rows: list[dict]) -> tuple[str, ...] | None:
    """The table's columns; None when a plain list without rows cannot tell."""
    if isinstance(rows, Table):
        return rows.columns
    return tuple(rows[0]) if rows else None


def _same(cell: str, wanted: str) -> bool:
    try:
        return math.isclose(float(cell), float(wanted), rel_tol=1e-9)
    except ValueError:
        return cell.strip() == wanted.strip()


def _fmt(value: str, digits: int = 2) -> str:
    if value in ("", None):
        return NULL
    try:
        x = float(value)
    except ValueError:
        return value
    if x == round(x) and 10 <= abs(x) < 1e9:  # counts such as shots per class
        return f"{int(round(x)):,}"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        mantissa, exponent = f"{x:.2e}".split("e")
        return f"{mantissa}·10^{int(exponent)}".replace("-", "−")
    return f"{x:.{digits}f}".replace("-", "−")


@dataclass(frozen=True)
class Query:
    """One table placeholder, parsed: which table, which row (column = value), which field."""

    table: str
    conditions: tuple[tuple[str, str], ...]
    field: str

    @classmethod
    def parse(cls, table: str, filters: str, field: str) -> Query:
        conditions = []
        for condition in (c for c in filters.split(";") if c.strip()):
            column, equals, value = condition.partition("=")
            if not equals:
                raise ValueError(f"bad filter {filters!r} in a placeholder of table {table}")
            conditions.append((column.strip(), value.strip()))
        return cls(table, tuple(conditions), field)

    def field_columns(self) -> tuple[str, ...]:
        return INTERVAL_FIELDS.get(self.field, (self.field,))

    def check_columns(self, rows: list[dict]) -> None:
        """Every filter and field column must exist in the table (a typo is never "no row")."""
        columns = _columns(rows)
        if columns is None:
            return
        for column, _ in self.conditions:
            if column not in columns:
                raise ValueError(f"table {self.table} has no column {column!r} to filter on")
        for column in self.field_columns():
            if column not in columns:
                raise ValueError(f"table {self.table} has no column {column!r}")

    def row(self, tables: dict) -> dict:
        """The single row the filters select; MissingRow when there is none."""
        rows = tables.get(self.table)
        if rows is None:
            raise MissingRow(f"there is no table {self.table!r}")
        self.check_columns(rows)
        matches = [r for r in rows if all(_same(r.get(k) or "", v) for k, v in self.conditions)]
        if not matches:
            raise MissingRow(f"no row of table {self.table} matches")
        if len(matches) > 1:
            raise ValueError(f"matches {len(matches)} rows of table {self.table}; narrow it")
        return matches[0]

    def value(self, row: dict) -> str:
        estimate, *interval = (_fmt(row[c]) for c in self.field_columns())
        return f"{estimate} [{interval[0]}, {interval[1]}]" if interval else estimate


def lookup(tables: dict, table: str, filters: str, field: str) -> str:
    """One placeholder's text; ValueError naming the placeholder when it does not resolve."""
    try:
        query = Query.parse(table, filters, field)
        return query.value(query.row(tables))
    except (MissingRow, ValueError) as problem:
        raise ValueError(f"{{{{{table}:{filters}| {field}}}}}: {problem}") from None


def read_table(path: Path) -> Table:
    with Path(path).open(newline="") as fh:
        reader = csv.DictReader(fh)
        return Table(reader, reader.fieldnames or ())


def load_tables(tables_dir: Path) -> dict:
    return {p.stem: read_table(p) for p in sorted(Path(tables_dir).glob("*.csv"))}


class _Filler:
    """Replaces placeholders one by one, collecting every failure for a single error."""

    def __init__(self, tables: dict, extra: dict, strict: bool):
        self.tables, self.extra, self.strict = tables, extra, strict
        self.problems: list[str] = []

    def _fail(self, match: re.Match, reason: str) -> str:
        self.problems.append(f"{match.group(0)}: {reason}")
        return match.group(0)

    def table(self, match: re.Match) -> str:
        try:
            query = Query.parse(*match.group(1, 2, 3))
            return query.value(query.row(self.tables))
        except MissingRow as missing:
            return NOT_RUN if not self.strict else self._fail(match, str(missing))
        except ValueError as error:
            return self._fail(match, str(error))

    def named(self, match: re.Match) -> str:
        if match.group(1) in self.extra:
            return str(self.extra[match.group(1)])
        return NOT_RUN if not self.strict else self._fail(match, "no value was supplied")


def render(template: str, tables: dict, extra: dict | None = None, *, strict: bool = True) -> str:
    """Fill every placeholder; ``{{name}}`` (no table) takes ``extra[name]``.

    Raises ValueError listing every placeholder that does not resolve (see the module's rules;
    ``strict=False`` prints NOT_RUN for tables, rows and values the run did not produce)."""
    filler = _Filler(tables, extra or {}, strict)
    text = PLACEHOLDER.sub(filler.table, template)
    text = NAMED_PLACEHOLDER.sub(filler.named, text)
    if filler.problems:
        listing = "\n  ".join(filler.problems)
        raise ValueError(f"{len(filler.problems)} placeholder(s) do not resolve:\n  {listing}")
    return text


def table_extra(out: Path) -> dict:
    """``{{table_NAME}}`` placeholders: the Markdown tables themselves (theory's is too long)."""
    return {
        f"table_{p.stem}": p.read_text().split("\n", 2)[2]  # without the "### title" line
        for p in sorted((Path(out) / "tables").glob("*.md"))
        if p.stem != "theory"
    }


FIGURE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def _figure_links(text: str, out: Path, profile: str, strict: bool) -> str:
    """Every figure link points at a file the run wrote: a link to a missing figure is an error
    in a complete profile and, in a smaller one, a sentence saying the profile did not draw it."""
    missing = [m.group(2) for m in FIGURE_LINK.finditer(text) if not (out / m.group(2)).exists()]
    if missing and strict:
        raise ValueError(f"paper.md links figures the run did not write: {missing}")

    def replace(match: re.Match) -> str:
        if (out / match.group(2)).exists():
            return match.group(0)
        return f"*({match.group(1)}: not drawn by the {profile} profile, whose runs it needs.)*"

    return FIGURE_LINK.sub(replace, text)


def render_paper(out: Path, extra: dict | None = None, *, strict: bool | None = None) -> Path:
    """Write OUT/paper.md from the template and OUT/tables/*.csv.

    ``strict`` defaults to whether ``extra["profile"]`` is one of COMPLETE_PROFILES: a smaller
    profile does not run every source the text cites."""
    extra = extra or {}
    if strict is None:
        strict = extra.get("profile") in COMPLETE_PROFILES
    tables = load_tables(Path(out) / "tables")
    text = render(TEMPLATE.read_text(), tables, table_extra(Path(out)) | extra, strict=strict)
    text = _figure_links(text, Path(out), extra.get("profile", "this"), strict)
    path = Path(out) / "paper.md"
    path.write_text(text)
    return path
