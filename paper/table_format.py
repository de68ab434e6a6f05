"""What a table of the paper is (:class:`Table`: a name, a title, its columns and a row function)
and how every table is written: Markdown (rounded) with CSV beside it (full precision)."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Table", "format_number", "read_table", "write_table"]


@dataclass(frozen=True)
class Table:
    """One table: ``rows(results, profile) -> list[dict]`` written to ``tables/<name>.md|csv``
    with ``columns`` in order. ``title`` is a string or ``title(profile) -> str``; ``needs``: a
    stage without which the table is not written at all. A new table is one of these in a table
    module's ``TABLES``; nothing else changes."""

    name: str
    title: str | Callable
    columns: tuple
    rows: Callable
    needs: str = ""

    def write(self, results: dict, profile, tables_dir: Path) -> list[Path]:
        if self.needs and self.needs not in results:
            return []
        title = self.title(profile) if callable(self.title) else self.title
        return write_table(
            self.rows(results, profile), list(self.columns), Path(tables_dir) / self.name, title
        )


def format_number(value, digits=3) -> str:
    """A cell of the Markdown table: floats rounded, no number as an empty cell."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.3g}"
    return str(value)


def write_table(rows: list[dict], columns: list[str], path_stem: Path, title: str) -> list[Path]:
    """Write ``rows`` as ``<stem>.csv`` (full precision) and ``<stem>.md`` (rounded)."""
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path = path_stem.with_suffix(".csv")
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in columns})
    md = [f"### {title}", "", "| " + " | ".join(columns) + " |"]
    md.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        md.append("| " + " | ".join(format_number(row.get(c)) for c in columns) + " |")
    md_path = path_stem.with_suffix(".md")
    md_path.write_text("\n".join(md) + "\n")
    return [md_path, csv_path]


def read_table(path: Path) -> list[dict]:
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))
