"""Score arrays in and out: the reference LiRA code's layout, plain arrays, and mialaw runs.

The parts, one idea each: ``interchange_read`` (the two layouts read into ``ScoreArrays``),
``interchange_score`` (LiRA and RMIA scores and TPR at FPR of read arrays, ``score_arrays``, with
the project's or the reference code's definition: ``reference_lira``) and this module, which
writes arrays in the reference layout (``write_reference``), writes a mialaw run's cells in it
(``export_run``, one root per cell, losslessly: float64 statistics, bool keep) and turns score
folders measured at several S into a run directory that ``mialaw empirical fit`` reads
(``import_runs``). The names of the parts are re-exported here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from mialaw.empirical.cells import CellSpec, read_cell, read_settings, store_of, write_settings
from mialaw.empirical.config import RunConfig, cell_name
from mialaw.empirical.interchange_read import (
    ScoreArrays,
    check_pair,
    read_arrays,
    read_reference,
    read_scores,
)
from mialaw.empirical.interchange_score import PRESETS, ScoredAttack, TiltWarning, score_arrays
from mialaw.theory.lira import LIRA_PRESETS

__all__ = [
    "PRESETS",
    "REFERENCE_EPOCH",
    "ScoreArrays",
    "ScoredAttack",
    "TiltWarning",
    "export_run",
    "import_runs",
    "read_arrays",
    "read_reference",
    "read_scores",
    "score_arrays",
    "write_reference",
]

REFERENCE_EPOCH = "0000000000.npy"  # the reference code names score files by a 10-digit epoch


def write_reference(
    out, keep, stats, *, population_stats=None, labels=None, epoch=REFERENCE_EPOCH, meta=None
) -> Path:
    """Write keep (M × N) and stats (M × N × Q) in the reference layout under ``out``.

    ``out/experiment-{m}_{M}/keep.npy`` and ``.../scores/{epoch}``; ``y_train.npy`` and
    ``population_stats.npy`` at the root when given. Arrays are saved as they are (bool keep,
    float64 stats), so reading them back is lossless.
    """
    keep, stats = check_pair(keep, stats, "write_reference")
    out = Path(out)
    if out.exists() and any(out.glob("experiment*")):
        raise ValueError(f"{out} already holds experiment folders; write to an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    m_total = keep.shape[0]
    for m in range(m_total):
        folder = out / f"experiment-{m}_{m_total}"
        (folder / "scores").mkdir(parents=True, exist_ok=True)
        np.save(folder / "keep.npy", keep[m])
        np.save(folder / "scores" / epoch, stats[m])
    if labels is not None:
        np.save(out / "y_train.npy", np.asarray(labels))
    if population_stats is not None and np.asarray(population_stats).size:
        np.save(out / "population_stats.npy", np.asarray(population_stats, dtype=np.float64))
    if meta:
        (out / "mialaw.json").write_text(json.dumps(meta, indent=1))
    return out


def export_run(run_dir, out) -> list[Path]:
    """Every cell of a mialaw run written in the reference layout: ``out/C{C}_S{S}_seed{k}/``."""
    run_dir, out = Path(run_dir), Path(out)
    settings = read_settings(run_dir)
    cells = RunConfig.from_dict(settings["config"]).cells()
    written = []
    for c, s, k in cells:
        arrays = read_cell(run_dir, c, s, k, settings)
        meta = {
            "from": str(run_dir),
            "cell": cell_name(c, s, k),
            "classes": int(arrays["classes"]),
            "shots": int(arrays["shots"]),
            "seed": int(arrays["seed"]),
            "dataset": settings["config"]["dataset"],
            "backbone": settings["config"]["backbone"],
        }
        written.append(
            write_reference(
                out / cell_name(c, s, k),
                arrays["keep"],
                arrays["stats"],
                population_stats=arrays.get("population_stats"),
                labels=arrays.get("labels"),
                meta=meta,
            )
        )
    return written


def import_runs(
    dirs,
    out,
    *,
    shots=None,
    classes=None,
    dataset: str = "imported",
    backbone: str = "reference",
    targets=None,
    fpr=(0.1, 0.01, 0.001),
    preset: str = "mialaw",
    epoch=None,
) -> Path:
    """Score folders (either layout) measured at several S, as a run that ``fit_runs`` reads.

    ``shots`` (one per folder) and ``classes`` (one for all, or one per folder) may be left out
    for folders written by ``export_run`` (they say). Folders with the same (C, S) become seeds
    0, 1, .... Each cell stores the targets' keep and statistics with the attack scores (so a
    cell's arrays describe the scored models); without population statistics RMIA is not scored
    and the run reports LiRA only.
    """

    dirs = [Path(d) for d in ([dirs] if isinstance(dirs, (str, Path)) else dirs)]
    if not dirs:
        raise ValueError("give at least one score folder")
    read = [read_scores(d, epoch=epoch) for d in dirs]
    shots = _per_dir("shots", shots, read, "shots")
    classes = _per_dir("classes", classes, read, "classes")
    out = Path(out)
    if (out / "settings.json").exists() or (
        out.exists() and any(p.name != ".lock" for p in out.iterdir())  # our own lock
    ):
        raise ValueError(f"--out {out} exists and is not empty; import into a new folder")
    seen: dict = {}
    made = []
    provenance = []
    has_rmia = all(a.population_stats is not None for a in read)
    for arrays, s, c, d in zip(read, shots, classes, dirs):
        k = seen.get((c, s), 0)
        seen[(c, s)] = k + 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TiltWarning)
            scored = score_arrays(arrays, fpr=fpr, targets=targets, preset=preset)
        for w in caught:
            warnings.warn(f"{d}: {w.message}", TiltWarning, stacklevel=2)
        made.append(((c, s, k), _imported_cell(arrays, scored, c, s, k)))
        provenance.append(
            {"folder": str(d), "layout": arrays.layout, "classes": c, "shots": s, "seed": k}
            | {"models": int(arrays.keep.shape[0]), "rotation": scored.rotation}
        )
    m = min(a.keep.shape[0] for a in read)
    config = RunConfig(
        dataset=dataset,
        backbone=backbone,
        classes=tuple(sorted(set(classes))),
        shots=tuple(sorted(set(shots))),
        shadows=max(4, (m - 2) // 2 * 2),
        seeds=max(seen.values()),
        fpr=tuple(fpr),
        attacks=("lira", "rmia") if has_rmia else ("lira",),
        variance=_preset(preset)["variance"],
        centre=_preset(preset)["centre"],
        learner="imported",
    )
    store = store_of(out)
    for (c, s, k), cell in made:  # stored under the imported learner: never recomputed
        store.put(CellSpec(config, "imported", c, s, k).identity(), cell)
    imported = {
        "preset": preset,
        "folders": provenance,
        "note": "shadows in config is nominal; see folders[].models and rotation"
        + ("" if has_rmia else "; no population statistics: RMIA not scored"),
    }
    write_settings(out, config, "imported", extra={"imported": imported})
    return out


def _imported_cell(arrays: ScoreArrays, scored: ScoredAttack, c: int, s: int, k: int) -> dict:
    """One cell of an imported run: the targets' keep and statistics with their scores."""
    t = np.asarray(scored.targets)
    n = arrays.keep.shape[1]
    pop = arrays.population_stats
    cell = {
        "classes": np.int64(c),
        "shots": np.int64(s),
        "seed": np.int64(k),
        "keep": arrays.keep[t],
        "stats": arrays.stats[t],
        "labels": arrays.labels if arrays.labels is not None else np.full(n, -1, np.int64),
        "indices": np.arange(n, dtype=np.int64),
        "lira_online": scored.scores["lira_online"],
        "lira_offline": scored.scores["lira_offline"],
        "pool_overlap": np.float64(np.nan),
    }
    if pop is not None:  # without population statistics RMIA is not scored
        cell["population_stats"], cell["rmia"] = pop[t], scored.scores["rmia"]
    if t.size != arrays.keep.shape[0]:  # dedicated targets: keep the shadows too
        cell["all_keep"], cell["all_stats"] = arrays.keep, arrays.stats
    return cell


def _preset(name: str) -> dict:

    variance = LIRA_PRESETS[name]["variance"]
    return {
        "variance": variance if variance in ("per-example", "global") else "per-example",
        "centre": LIRA_PRESETS[name]["centre"],
    }


MAX_PER_DIR = 10**12  # shots or classes of one folder: more than any data set holds


def _per_dir(name, values, read, key) -> list[int]:
    n = len(read)
    if values is None:
        found = [a.meta.get(key) for a in read]
        if any(v is None for v in found):
            raise ValueError(
                f"give --{name} (one per folder{' or one for all' if name == 'classes' else ''});"
                " only folders written by `mialaw empirical export` record it"
            )
        values = found
    values = [values] if isinstance(values, (int, np.integer)) else list(values)
    if name == "classes" and len(values) == 1:
        values = values * n
    if len(values) != n:
        raise ValueError(f"--{name} needs one value per folder ({n}); got {len(values)}")
    minimum, maximum = (2 if name == "classes" else 1), MAX_PER_DIR
    for v in values:
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, np.integer))
            or not minimum <= v <= maximum
        ):
            raise ValueError(
                f"--{name} must be integers in [{minimum}, {maximum:.0e}]; got {values!r}"[:300]
            )
    return [int(v) for v in values]
