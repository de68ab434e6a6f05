"""The project's sweep run on the user's features: resumable, and what its largest cell shows."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mialaw.empirical.audit_format import audit_attacks
from mialaw.empirical.cell_summary import ROC_GRID, per_example_vulnerability
from mialaw.empirical.cells import read_cell
from mialaw.empirical.sweep import run_sweep


@dataclass(frozen=True, eq=False)
class GivenFeatures:
    """What ``run_sweep(..., features=...)`` takes: features, labels and a content key."""

    features: np.ndarray
    labels: np.ndarray
    key: str


def content_key(x: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (x, y):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return "given-" + h.hexdigest()[:24]


def check_resume(run_dir: Path, key: str) -> None:
    """run_sweep compares the cell settings only; the data must match too."""
    path = run_dir / "settings.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text()).get("feature_key")
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path} is unreadable ({err}); delete {run_dir} or use another out"
        ) from None
    if old != key:
        raise ValueError(
            f"{run_dir} holds an audit of other data (features {old}, now {key}); use another "
            "out directory, or the same data to resume"
        )


def largest_cell(result, run_dir: Path, config, shots: int, top: int, names):
    """ROC (mean over seeds) and the most vulnerable examples at the largest measured S."""
    classes = config.classes[0]
    cells = [c for c in result.runs[0].cells if c.shots == shots and c.classes == classes]
    roc = {"shots": int(shots), "grid": ROC_GRID.tolist()}
    for name in audit_attacks(name for c in cells for name in c.roc):
        curves = [c.roc[name] for c in cells if name in c.roc]
        if curves:
            roc[name] = np.mean(curves, axis=0).tolist()
    alpha = config.fpr[min(1, len(config.fpr) - 1)]  # the second FPR (1% by default)
    i_alpha = list(config.fpr).index(alpha)
    best: dict = {}
    for cell in cells:
        arrays = read_cell(run_dir, classes, shots, cell.seed)
        delta, adv = per_example_vulnerability(arrays["keep"], arrays["stats"], [alpha])
        for j, idx in enumerate(arrays["indices"].tolist()):
            entry = {
                "index": int(idx),
                "name": None if names is None else names[idx],
                "label": int(arrays["labels"][j]),
                "delta": float(abs(delta[j])),
                "advantage": float(adv[0, j]),
                "fpr": alpha,
                "empirical_tpr": _finite(cell.example_tpr[i_alpha, j]),
                "seed": int(cell.seed),
            }
            if idx not in best or entry["delta"] > best[idx]["delta"]:
                best[idx] = entry
    ranked = sorted(best.values(), key=lambda e: -e["delta"])[:top]
    return roc, tuple(ranked)


def _finite(v):
    v = float(v)
    return v if math.isfinite(v) else None


def run_audit_sweep(config, given: GivenFeatures, out, top: int, names, progress: bool):
    """Run the sweep into ``out/run`` (a temporary folder when ``out`` is None); returns the
    sweep's result, the ROC and most vulnerable examples at its largest S, and the run folder
    (None when temporary)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mialaw-audit-") as scratch:
        run_dir = Path(out) / "run" if out is not None else Path(scratch) / "run"
        if out is not None and Path(out).exists() and not Path(out).is_dir():
            raise ValueError(f"out {out} exists and is not a directory")
        check_resume(run_dir, given.key)
        result = run_sweep(config, run_dir, features=given, progress=progress, plots=False)
        roc, vulnerable = largest_cell(result, run_dir, config, max(config.shots), top, names)
    return result, roc, vulnerable, None if out is None else run_dir
