"""``AuditReport``: what an audit found, as headline, JSON, Markdown and self-contained HTML."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from mialaw.empirical.analysis import json_ready
from mialaw.empirical.audit_answers import Exposure
from mialaw.empirical.audit_figures import report_figures
from mialaw.empirical.audit_format import (
    NOT_DETERMINED,
    fmt_interval,
    fmt_number,
    fmt_shot_list,
    fmt_shots,
    label,
)
from mialaw.empirical.audit_headline import headline, largest_exposure, slope_reading


@dataclass(frozen=True)
class AuditReport:
    """What ``audit`` found; ``to_json()``, ``to_markdown()``, ``to_html()`` render it."""

    settings: dict
    data: dict  # examples, classes, per-class counts, train_shots, feature key
    points: tuple  # measured points (the analysis' dicts)
    laws: tuple  # of Law
    exposure: tuple  # of Exposure, at data["train_shots"]
    needed: tuple  # of ShotsNeeded
    roc: dict = field(repr=False)  # {"shots": S, "grid": [...], attack: [...]}
    vulnerable: tuple = ()  # dicts: index, name, label, delta, advantage, empirical_tpr
    seconds: float = float("nan")
    run_dir: str | None = None

    # ------------------------------------------------------------------ headline
    def largest(self, fpr: float) -> Exposure | None:
        """The largest exposure at ``fpr`` over the attacks whose estimate the data resolve."""
        return largest_exposure(self, fpr)[0]

    def headline(self) -> list[str]:
        """The lines a person reads in a minute (``mialaw.empirical.audit_headline``)."""
        return headline(self)

    # ------------------------------------------------------------------ renderings
    def to_json(self) -> dict:
        return json_ready(
            {
                "format": "mialaw-audit/1",
                "headline": self.headline(),
                "settings": self.settings,
                "data": self.data,
                "exposure": [e.to_dict() for e in self.exposure],
                "shots_needed": [n.to_dict() for n in self.needed],
                "laws": [law.to_dict() for law in self.laws],
                "points": list(self.points),
                "roc": self.roc,
                "most_vulnerable": list(self.vulnerable),
                "seconds": self.seconds,
                "run_dir": self.run_dir,
                "notes": NOTES,
            }
        )

    def to_markdown(self) -> str:
        out = ["# Membership-inference audit", ""]
        out += [f"- {line}" for line in self.headline()]
        out += ["", "## Exposure at your S", ""]
        out += ["| attack | FPR | TPR − FPR | 95% interval | source |", "|---|---|---|---|---|"]
        for e in self.exposure:
            lo, est, hi = e.advantage
            src = e.source + (f" ({e.note})" if e.note else "")
            out.append(
                f"| {label(e.attack)} | {e.fpr:g} | {fmt_number(est)} | "
                f"{fmt_interval(lo, hi)} | {src} |"
            )
        if self.needed:
            out += ["", "## Shots per class needed", ""]
            out += ["| criterion | attack | FPR | bound | S | 95% interval |"]
            out += ["|---|---|---|---|---|---|"]
            for n in self.needed:
                lo, est, hi = n.shots
                shots = fmt_shots(est)
                if math.isnan(est):
                    shots = "no fit"
                elif not n.determined and lo <= 1:
                    shots = NOT_DETERMINED
                elif not n.determined:
                    shots = f">= {fmt_shots(lo)} (upper end {NOT_DETERMINED})"
                out.append(
                    f"| {n.criterion} | {label(n.attack)} | {n.fpr:g} | {fmt_number(n.bound)} |"
                    f" {shots} | [{fmt_shots(lo)}, {fmt_shots(hi)}] |"
                )
        out += ["", "## Power laws (log10(TPR − FPR) = slope · log10 S + intercept)", ""]
        out += [
            "| attack | FPR | slope | 95% interval | S fitted | R² | reading |",
            "|---|---|---|---|---|---|---|",
        ]
        for law in self.laws:
            if law.line is None:
                shots = fmt_shot_list(law.shots_fitted) or "none"
                out.append(
                    f"| {label(law.attack)} | {law.fpr:g} | no fit | – | {shots} | – | "
                    f"{law.error} |"
                )
                continue
            sl = law.slope
            out.append(
                f"| {label(law.attack)} | {law.fpr:g} | {sl.estimate:.3f} | "
                f"[{sl.lower:.3f}, {sl.upper:.3f}] | {fmt_shot_list(law.shots_fitted)} | "
                f"{fmt_number(law.r2)} | {slope_reading(law)} |"
            )
        if self.vulnerable:
            out += ["", f"## Most vulnerable examples (S = {self.roc.get('shots')})", ""]
            out += ["| index | name | class | Δ̂ | per-example TPR − FPR |", "|---|---|---|---|---|"]
            for v in self.vulnerable:
                out.append(
                    f"| {v['index']} | {v.get('name') or ''} | {v['label']} | {v['delta']:.2f} | "
                    f"{fmt_number(v['advantage'])} |"
                )
        out += ["", "## Notes", ""] + [f"- {n}" for n in NOTES]
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        import html

        head = "".join(f"<li>{html.escape(line)}</li>" for line in self.headline())
        md = self.to_markdown().split("\n## ", 1)[1]  # the tables after the headline
        tables = markdown_tables_to_html("## " + md)
        figures = []
        for title, png in report_figures(self):
            figures.append(
                f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'/>"
                f"<figcaption>{html.escape(title)}</figcaption></figure>"
            )
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mialaw audit</title>"
            f"<style>{CSS}</style></head><body><h1>Membership-inference audit</h1>"
            f"<ul class='headline'>{head}</ul>{''.join(figures)}{tables}</body></html>\n"
        )

    def write(self, out) -> dict:
        """Write report.md, report.html and report.json into ``out`` (each atomically)."""
        return write_reports(self, out)


NOTES = [
    "Advantage = TPR − FPR of the pooled attack (one threshold per experiment over all target "
    "models), measured at S subsampled from your data; intervals: bootstrap of examples.",
    "'predicted' values come from the power law fitted to the largest measured S, "
    "with the interval in which a measurement at that S would fall (the fitted line's band, "
    "its covariance included, widened by one measurement's noise; report.json also gives the "
    "line's band alone as expected_ci); 'measured' ones come from a sweep cell at that S.",
    "Shots needed: Fieller's interval (the S at which the fitted line's band meets the bound); "
    f"an infinite upper end means the measured S cannot tell: {NOT_DETERMINED}.",
    "The headline's exposure is the largest over the attacks whose estimate the data resolve; "
    "the attacks without one are named. A slope whose interval includes 0 is "
    f"{NOT_DETERMINED}.",
    "Beyond the largest fitted S the upper ends (of TPR − FPR and of the S needed) also allow "
    "the curve to flatten to the theory's large-S slope −0.5 from the band's upper end there.",
    "A point enters a fit if resolvable, detected (interval above FPR), unsaturated and its "
    "achieved FPR is >= FPR/2 (RMIA's scores tie, which can leave its threshold far below FPR).",
    "(ε, δ)-DP bound: an (ε, δ)-DP training bounds TPR − FPR by (e^ε − 1)·FPR + δ.",
    "The audit attacks a linear head on fixed features; fine-tuning more of the network is "
    "usually more exposed.",
]

CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em}"
    "figure{display:block;margin:.5em 0}img{max-width:100%}.headline li{margin:.3em 0}"
)


def markdown_tables_to_html(text: str) -> str:
    import html

    parts, rows = [], []

    def flush():
        if rows:
            cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
            width = len(cells[0])  # every row gets every cell (no ragged table)
            cells = [r[:width] + [""] * (width - len(r)) for r in cells]
            head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                for r in cells[2:]
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
            rows.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            rows.append(line)
            continue
        flush()
        if line.startswith("## "):
            parts.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            parts.append(f"<p>{html.escape(line[2:])}</p>")
    flush()
    return "".join(parts)


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_reports(report: AuditReport, out) -> dict:
    """report.md, report.html, report.json in ``out``: all rendered first, then each renamed
    into place, so a failure leaves no half-written report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "report.json": json.dumps(report.to_json(), indent=1, ensure_ascii=False),
        "report.md": report.to_markdown(),
        "report.html": report.to_html(),
    }
    paths = {}
    for name, text in texts.items():
        atomic_write(out / name, text)
        paths[name] = out / name
    return paths
