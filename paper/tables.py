"""Every table of the paper, in the order they are written: each is a declarative
:class:`~mialaw.paper.table_format.Table` (name, title, columns, row function) defined beside its
row function in a table module; this registry only orders them and writes them."""

from __future__ import annotations

from pathlib import Path

from . import mechanism_tables, regression_tables, slope_tables, study_tables, transfer_tables
from .run_selection import tag_roles

__all__ = ["TABLES", "write_tables"]

_ORDER = (
    "slopes",
    "regression",
    "slopes_change",
    "film",
    "lambda",
    "saturation",
    "local_slopes",
    "asymptote",
    "shadows",
    "regression_backbones",
    "regression_tasks",
    "regression_by_task",
    "task_intercepts",
    "dp_shots",
    "per_example",
    "theory",
    "gaps",
    "gap_laws",
    "bridge",
    "bridge_summary",
    "mechanism_slopes",
)
_MODULES = (slope_tables, regression_tables, study_tables, mechanism_tables, transfer_tables)
_ALL = {t.name: t for module in _MODULES for t in module.TABLES}
# Tables not in the order above (a new table module's) are written after these, by name.
TABLES = tuple(_ALL[name] for name in _ORDER) + tuple(
    _ALL[name] for name in sorted(set(_ALL) - set(_ORDER))
)


def write_tables(results: dict, profile, out: Path) -> list[Path]:
    """Write every table of ``results`` (the stage results of one reproduction) under
    ``out/tables``; the empirical runs are read by the role ``profile`` gives them."""
    results = tag_roles(results, profile)
    tables = Path(out) / "tables"
    written = []
    for table in TABLES:
        written += table.write(results, profile, tables)
    return written
