"""paper.md from paper.template.md: every number in the text is looked up in the CSV tables.

A placeholder ``{{TABLE: col=value; col=value | FIELD}}`` finds the single row of
``tables/TABLE.csv`` whose columns equal the given values (numbers compared as numbers) and
prints FIELD. FIELD is a column name, or ``slope_ci`` ("−0.50 [−0.53, −0.47]", from slope,
ci_low, ci_high), or ``beta_S_ci``. A placeholder that matches no row prints "n/a" (e.g. a
profile without that source); one that matches several rows is an error.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .tables import read_table

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*:([^|}]*)\|\s*(\w+)\s*\}\}")
TEMPLATE = Path(__file__).with_name("paper.template.md")


def _same(cell: str, wanted: str) -> bool:
    try:
        return math.isclose(float(cell), float(wanted), rel_tol=1e-9)
    except ValueError:
        return cell.strip() == wanted.strip()


def _fmt(value: str, digits: int = 2) -> str:
    if value in ("", None):
        return "n/a"
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


def lookup(tables: dict, table: str, filters: str, field: str) -> str:
    rows = tables.get(table)
    if rows is None:
        return "n/a"
    conditions = [c.split("=", 1) for c in filters.split(";") if c.strip()]
    for cond in conditions:
        if len(cond) != 2:
            raise ValueError(f"bad filter {filters!r} in a placeholder of table {table}")
    matches = [r for r in rows if all(_same(r.get(k.strip(), ""), v) for k, v in conditions)]
    if not matches:
        return "n/a"
    if len(matches) > 1:
        raise ValueError(f"placeholder {table}:{filters} matches {len(matches)} rows; narrow it")
    row = matches[0]
    if field == "slope_ci":
        return f"{_fmt(row['slope'])} [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
    if field == "beta_S_ci":
        return (
            f"{_fmt(row['beta_S'])} [{_fmt(row['beta_S_ci_low'])}, {_fmt(row['beta_S_ci_high'])}]"
        )
    if field not in row:
        raise ValueError(f"table {table} has no column {field!r}")
    return _fmt(row[field])


def load_tables(tables_dir: Path) -> dict:
    return {p.stem: read_table(p) for p in sorted(Path(tables_dir).glob("*.csv"))}


def render(template: str, tables: dict, extra: dict | None = None) -> str:
    """Fill every placeholder; ``{{name}}`` (no table) takes ``extra[name]``."""
    extra = extra or {}
    text = PLACEHOLDER.sub(lambda m: lookup(tables, m.group(1), m.group(2), m.group(3)), template)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(extra.get(m.group(1), "n/a")), text)


def table_extra(out: Path) -> dict:
    """``{{table_NAME}}`` placeholders: the Markdown tables themselves (theory's is too long)."""
    return {
        f"table_{p.stem}": p.read_text().split("\n", 2)[2]  # without the "### title" line
        for p in sorted((Path(out) / "tables").glob("*.md"))
        if p.stem != "theory"
    }


def render_paper(out: Path, extra: dict | None = None) -> Path:
    """Write OUT/paper.md from the template and OUT/tables/*.csv."""
    tables = load_tables(Path(out) / "tables")
    path = Path(out) / "paper.md"
    path.write_text(render(TEMPLATE.read_text(), tables, table_extra(Path(out)) | (extra or {})))
    return path
