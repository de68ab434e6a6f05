"""paper.md from paper.template.md: every number in the text is looked up in the CSV tables.

A placeholder ``{{TABLE: col=value; col=value | FIELD}}`` finds the single row of
``tables/TABLE.csv`` whose columns equal the given values (numbers compared as numbers) and
prints FIELD. FIELD is a column name, or ``slope_ci`` ("−0.50 [−0.53, −0.47]", from slope,
ci_low, ci_high), or another estimate with its interval (``INTERVAL_FIELDS``). ``{{name}}``
(no table) prints a value the caller supplies (the sentences built from the run: ``claims``).

A part of the text that needs runs a profile may not have sits in a block::

    <!-- needs: empirical-fashion-mnist-lite0-c2-large, mechanism, figures/gaps.png -->
    ...
    <!-- end -->

Each need is a stage name (a glob: ``simulate-lira-*`` is met by any such stage) or a file under
the output folder. A block whose needs are met is printed; one whose needs are not is left out,
or, when a need was skipped by this run (a note ``"STAGE skipped: why"`` from ``reproduce``),
replaced by one sentence saying which run is absent and why. ``<!-- without: NEED -->`` prints
its block only when the need is *not* met (the smaller profile's version of a passage).

A placeholder that resolves to nothing is an error, never a silent "n/a": a table that does not
exist, a filter or field that names no column, filters that match no row or several rows, a
``{{name}}`` nobody supplied. ``render`` reports all of them in one ``ValueError``. A row that
exists but holds no value (an unresolvable measurement; the tables write null as an empty cell)
prints "n/a": the measurement is part of the study, it just has no number.

The full profile runs every block's needs: with ``strict`` (the default for COMPLETE_PROFILES
when nothing was skipped) a block whose needs are not met is an error, not a shorter paper.
"""

from __future__ import annotations

import csv
import fnmatch
import math
import re
from dataclasses import dataclass
from pathlib import Path

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*:([^|}]*)\|\s*(\w+)\s*\}\}")
NAMED_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
TEMPLATE = Path(__file__).with_name("paper.template.md")

NULL = "n/a"  # a row that exists with an empty cell: the tables' null (e.g. an unresolvable TPR)
# The profiles whose tables hold every row the template cites: their paper must resolve fully.
COMPLETE_PROFILES = ("full",)
# Fields made of several columns: the estimate and its interval.
INTERVAL_FIELDS = {
    "slope_ci": ("slope", "ci_low", "ci_high"),
    "beta_S_ci": ("beta_S", "beta_S_ci_low", "beta_S_ci_high"),
    "beta_S_interval": ("beta_S", "beta_S_low", "beta_S_high"),
    "beta_C_interval": ("beta_C", "beta_C_low", "beta_C_high"),
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


def format_number(value: str, digits: int = 2) -> str:
    """A table cell as the paper prints it (null: n/a; counts with thousands separators)."""
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
        estimate, *interval = (format_number(row[c]) for c in self.field_columns())
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

    def __init__(self, tables: dict, extra: dict):
        self.tables, self.extra = tables, extra
        self.problems: list[str] = []

    def _fail(self, match: re.Match, reason: str) -> str:
        self.problems.append(f"{match.group(0)}: {reason}")
        return match.group(0)

    def table(self, match: re.Match) -> str:
        try:
            query = Query.parse(*match.group(1, 2, 3))
            return query.value(query.row(self.tables))
        except (MissingRow, ValueError) as problem:
            return self._fail(match, str(problem))

    def named(self, match: re.Match) -> str:
        if match.group(1) in self.extra:
            return str(self.extra[match.group(1)])
        return self._fail(match, "no value was supplied")


@dataclass(frozen=True)
class RunContext:
    """What one reproduction computed, for the template's blocks: the stage results it holds,
    the notes of the stages it skipped ("STAGE skipped: why"), its output folder (for file
    needs), and whether every block must be printed (``strict``)."""

    stages: frozenset[str]
    notes: tuple[str, ...] = ()
    out: Path | None = None
    strict: bool = False

    def met(self, need: str) -> bool:
        if "/" in need:
            return self.out is not None and (self.out / need).exists()
        return any(fnmatch.fnmatchcase(stage, need) for stage in self.stages)

    def skip_notes(self, need: str) -> list[str]:
        """The notes of skipped stages that ``need`` names."""
        return [
            note
            for note in self.notes
            if " skipped" in note and fnmatch.fnmatchcase(note.split(" skipped", 1)[0], need)
        ]


BLOCK = re.compile(
    r"<!--\s*(needs|without):\s*([^>]*?)\s*-->[ \t]*\n?(.*?)<!--\s*end\s*-->[ \t]*\n?",
    re.DOTALL,
)


def _block(match: re.Match, context: RunContext, problems: list[str]) -> str:
    kind, needs, body = match.group(1), match.group(2), match.group(3)
    needs = [n.strip() for n in needs.split(",") if n.strip()]
    unmet = [n for n in needs if not context.met(n)]
    if kind == "without":
        return "" if not unmet else body
    if not unmet:
        return body
    notes = [note for need in unmet for note in context.skip_notes(need)]
    if notes:  # the profile runs it, this run skipped it: say so once, with the reason
        notes = list(dict.fromkeys(notes))
        return f"*Not computed in this run: {'; '.join(notes)}*\n\n"
    if context.strict:
        problems.append(f"a block needs {', '.join(unmet)}, which this run did not compute")
    return ""


def render(
    template: str, tables: dict, extra: dict | None = None, *, context: RunContext | None = None
) -> str:
    """Fill every block and placeholder; ``{{name}}`` (no table) takes ``extra[name]``.

    ``context`` (None: every block's needs count as met) says which runs exist. Raises ValueError
    listing every placeholder that does not resolve and, in a strict context, every block whose
    needs are not met."""
    blocks: list[str] = []
    if context is not None:
        template = BLOCK.sub(lambda m: _block(m, context, blocks), template)
    filler = _Filler(tables, extra or {})
    text = PLACEHOLDER.sub(filler.table, template)
    text = NAMED_PLACEHOLDER.sub(filler.named, text)
    problems = filler.problems + blocks
    if problems:
        listing = "\n  ".join(problems)
        raise ValueError(f"{len(problems)} placeholder(s) or block(s) do not resolve:\n  {listing}")
    return re.sub(r"\n{3,}", "\n\n", text)


def table_extra(out: Path) -> dict:
    """``{{table_NAME}}`` placeholders: the Markdown tables themselves (theory's is too long)."""
    return {
        f"table_{p.stem}": p.read_text().split("\n", 2)[2]  # without the "### title" line
        for p in sorted((Path(out) / "tables").glob("*.md"))
        if p.stem != "theory"
    }


FIGURE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def check_figure_links(text: str, out: Path) -> None:
    """Every figure link points at a file the run wrote (a figure a run may not draw sits in a
    block that needs it)."""
    missing = [m.group(2) for m in FIGURE_LINK.finditer(text) if not (out / m.group(2)).exists()]
    if missing:
        raise ValueError(f"paper.md links figures the run did not write: {missing}")


def render_paper(
    out: Path,
    extra: dict | None = None,
    *,
    stages=None,
    notes=(),
    strict: bool | None = None,
) -> Path:
    """Write OUT/paper.md from the template and OUT/tables/*.csv.

    ``stages``: the names of the stage results this run holds (None: every block is printed);
    ``notes``: reproduce's notes of skipped stages. ``strict`` defaults to whether
    ``extra["profile"]`` is one of COMPLETE_PROFILES and nothing was skipped."""
    extra = extra or {}
    out = Path(out)
    if strict is None:
        strict = extra.get("profile") in COMPLETE_PROFILES and not notes
    context = None
    if stages is not None:
        context = RunContext(frozenset(stages), tuple(notes), out, strict)
    tables = load_tables(out / "tables")
    text = render(TEMPLATE.read_text(), tables, table_extra(out) | extra, context=context)
    check_figure_links(text, out)
    path = out / "paper.md"
    path.write_text(text)
    return path
