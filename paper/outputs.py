"""Every artifact of a reproduction: derivation files, tables, figures and paper.md."""

from __future__ import annotations

from pathlib import Path

from .figures import write_figures
from .mechanism_figures import write_mechanism_figures
from .render import render_paper
from .run_selection import tag_roles
from .tables import write_tables


def _derivation_markdown(derive: dict) -> str:
    lines = []
    for i, step in enumerate(derive["steps"], 1):
        mark = "✓" if step["verified"] else "✗ FAILED"
        lines.append(f"{i}. **{step['title']}** ({mark}; checked: {step['how']})")
        lines.append("")
        lines.append(f"   $$ {step['latex']} $$")
        lines.append("")
    return "\n".join(lines)


def paper_extra(profile_name: str, derive: dict | None) -> dict:
    """The non-table values of paper.md: the profile and the exported derivation."""
    extra = {"profile": profile_name}
    if derive:
        extra["derivation"] = _derivation_markdown(derive)
        verified = sum(s["verified"] for s in derive["steps"])
        extra["derivation_tally"] = f"{verified} of {len(derive['steps'])} steps verified"
    return extra


def write_outputs(results: dict, profile, out: Path) -> list[Path]:
    out = Path(out)
    results = tag_roles(results, profile)  # tables and figures read the runs by their role
    written: list[Path] = []
    extra = paper_extra(profile.name, results.get("derive"))
    if "derive" in results:
        d = results["derive"]
        for name, text in (("derivation.txt", d["text"]), ("derivation.tex", d["latex"])):
            (out / name).write_text(text)
            written.append(out / name)
    written += write_tables(results, profile, out)
    written += write_figures(results, profile, out)
    written += write_mechanism_figures(results, profile, out)
    written.append(render_paper(out, extra))
    return written
