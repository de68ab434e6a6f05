"""Every artifact of a reproduction: derivation files, tables, figures and paper.md."""

from __future__ import annotations

import json
from pathlib import Path

from .answer import answer_extra
from .figure_base import figure_formats
from .figures import write_figures
from .mechanism_figures import write_mechanism_figures
from .render import (
    COMPLETE_PROFILES,
    TEMPLATE,
    RunContext,
    load_tables,
    render,
    render_paper,
    table_extra,
)
from .run_selection import tag_roles
from .section_claims import section_extra
from .tables import write_tables
from .transfer_figures import write_transfer_figures


def _derivation_markdown(derive: dict) -> str:
    lines = []
    for i, step in enumerate(derive["steps"], 1):
        mark = "✓" if step["verified"] else "✗ FAILED"
        lines.append(f"{i}. **{step['title']}** ({mark}; checked: {step['how']})")
        lines.append("")
        lines.append(f"   $$ {step['latex']} $$")
        lines.append("")
    return "\n".join(lines)


def derivation_extra(derive: dict | None) -> dict:
    """The exported derivation and its tally (none when the stage was skipped)."""
    if not derive:
        return {}
    verified = sum(s["verified"] for s in derive["steps"])
    return {
        "derivation": _derivation_markdown(derive),
        "derivation_tally": f"{verified} of {len(derive['steps'])} steps verified",
    }


def skip_notes_text(notes) -> str:
    """The stages this run skipped, each with reproduce's reason (empty when none)."""
    skipped = [n for n in notes if " skipped" in n]
    if not skipped:
        return ""
    return "**Not computed in this run:**\n\n" + "\n".join(f"* {n}" for n in skipped) + "\n"


def absence_notes(results: dict, profile, notes=()) -> tuple[str, ...]:
    """``notes`` and, for every empirical run of ``profile`` that has no result and no note (a
    re-rendered run, ``--skip empirical``), a note saying so: the paper names every absent run."""
    noted = {n.split(" skipped", 1)[0] for n in notes if " skipped" in n}
    extra = tuple(
        f"{name} skipped: this run holds no result for it (the stage was skipped or failed)"
        for name in (f"empirical-{e.label}" for e in profile.empirical)
        if name not in results and name not in noted
    )
    return tuple(notes) + extra


def paper_extra(
    results: dict, profile, out: Path, notes=(), *, out_name: str | None = None
) -> dict:
    """The named values of paper.md: the command that wrote it (``--out out_name``, default
    ``out``), what it skipped, the derivation, and every sentence built from the run
    (``answer``, ``section_claims``); reads the tables already written under ``out/tables``."""
    tables = load_tables(Path(out) / "tables")
    extra = {"profile": profile.name, "out": out_name or str(out)}
    extra["skip_notes"] = skip_notes_text(notes)
    extra |= derivation_extra(results.get("derive"))
    extra |= answer_extra(results, tables, profile, notes)
    extra |= section_extra(results, tables, profile, notes)
    return extra


STUDY_STAGES = (
    "shadows-simulated",
    "shadows",
    "regression-backbones",
    "mechanism",
    "regression-tasks",
)


def load_stage_results(out: Path, profile) -> dict:
    """The stage results stored under ``out/stages`` that ``profile`` runs, in the order
    ``reproduce`` computes them (to re-render a finished run without computing anything)."""
    order = ["derive", "theory"]
    order += [f"simulate-{s.label}" for s in profile.simulations]
    order += [f"empirical-{e.label}" for e in profile.empirical] + ["empirical-combined"]
    order += list(STUDY_STAGES)
    stages = Path(out) / "stages"
    return {
        name: json.loads((stages / f"{name}.json").read_text())["result"]
        for name in order
        if (stages / f"{name}.json").exists()
    }


def paper_text(results: dict, profile, out: Path, notes=(), *, out_name: str | None = None) -> str:
    """paper.md's text for the tables and figures already under ``out`` (nothing written)."""
    results = tag_roles(results, profile)
    notes = absence_notes(results, profile, notes)
    extra = table_extra(Path(out)) | paper_extra(results, profile, out, notes, out_name=out_name)
    strict = profile.name in COMPLETE_PROFILES and not notes
    context = RunContext(frozenset(results), tuple(notes), Path(out), strict)
    return render(TEMPLATE.read_text(), load_tables(Path(out) / "tables"), extra, context=context)


def write_outputs(results: dict, profile, out: Path, notes=()) -> list[Path]:
    """Every artifact of ``results`` under ``out``; ``notes``: reproduce's notes of the stages it
    skipped ("STAGE skipped: why"), which the paper reports where those stages' text would be."""
    out = Path(out)
    results = tag_roles(results, profile)  # tables and figures read the runs by their role
    written: list[Path] = []
    if "derive" in results:
        d = results["derive"]
        for name, text in (("derivation.txt", d["text"]), ("derivation.tex", d["latex"])):
            (out / name).write_text(text)
            written.append(out / name)
    written += write_tables(results, profile, out)
    with figure_formats(profile.figure_formats):
        written += write_figures(results, profile, out)
        written += write_mechanism_figures(results, profile, out)
        written += write_transfer_figures(results, profile, out)
    notes = absence_notes(results, profile, notes)
    extra = paper_extra(results, profile, out, notes)
    written.append(render_paper(out, extra, stages=set(results), notes=notes))
    return written
