"""Score arrays in and out: the reference LiRA code's layout, plain arrays, and mialaw runs.

Two layouts are read (``read_scores`` tells them apart):

* **Reference layout** (Carlini et al.'s LiRA code, ``research/mi_lira_2021``): a root folder
  holding one folder per model whose name starts with ``experiment`` (e.g.
  ``experiment-3_16``), each with ``keep.npy`` (bool, examples: the model trained on the
  example) and ``scores/*.npy`` (one file per epoch or checkpoint: examples × augmentations of
  logit-scaled confidences). As the reference ``plot.py`` does, the last file by sorted name is
  taken (``epoch`` picks another) and keep is cut to the scores' length. Models are ordered by the
  number after ``experiment-`` (then by name), so that pairs (2k, 2k + 1) and target indices are
  well defined (the reference code relies on ``os.walk`` order). Optional files at the root:
  ``y_train.npy`` (labels, as the reference ``score.py`` reads them) and ``population_stats.npy``
  (models × P × queries, statistics on examples no model trained on: needed for RMIA; an
  extension of this project, ignored by the reference code).
* **Arrays**: a folder with ``keep.npy`` (models × examples) and ``stats.npy`` (models × examples
  [× queries]), optionally ``population_stats.npy`` and ``labels.npy``; or one ``.npz`` holding
  ``keep`` and ``stats`` (a mialaw cell file is one).

Scoring (``score_arrays``) follows the project's rules (``mialaw.theory.lira``,
``mialaw.theory.measure``): models in complementary pairs are scored by *pair rotation*; with
named ``targets`` every target is scored against the models that are not targets (dedicated
targets, as the reference code's last ``ntest`` models); otherwise plain leave-one-out, which is
tilted towards "non-member" when every example is IN for a fixed number of models (the reference
code's keep), so it warns (``TiltWarning``). TPR at FPR: one threshold over all targets' pooled
scores, resolvable iff α·negatives >= 1, bootstrap intervals.

``export_run`` writes a mialaw run's cells in the reference layout (one root per cell, losslessly:
float64 statistics, bool keep), and ``import_runs`` turns score folders measured at several S into
a run directory that ``mialaw empirical fit`` reads.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mialaw.empirical.learners import Learner

__all__ = [
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
SCORE_NAMES = ("lira_online", "lira_offline", "rmia")


class TiltWarning(UserWarning):
    """Leave-one-out scoring of a balanced keep matrix is tilted towards "non-member"."""


@dataclass(frozen=True, eq=False)
class ScoreArrays:
    """keep (M × N bool), stats (M × N × Q float64) and what came with them."""

    keep: np.ndarray
    stats: np.ndarray
    population_stats: np.ndarray | None = None
    labels: np.ndarray | None = None
    models: tuple = ()
    source: str = ""
    layout: str = "arrays"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        keep, stats = _check_pair(self.keep, self.stats, self.source or "arrays")
        object.__setattr__(self, "keep", keep)
        object.__setattr__(self, "stats", stats)
        if self.population_stats is not None:
            pop = np.asarray(self.population_stats, dtype=np.float64)
            pop = pop[:, :, None] if pop.ndim == 2 else pop
            if pop.ndim != 3 or pop.shape[0] != keep.shape[0] or pop.shape[2] != stats.shape[2]:
                raise ValueError(
                    f"population_stats must be (models={keep.shape[0]}, P, "
                    f"queries={stats.shape[2]}); got {np.shape(self.population_stats)}"
                )
            if not np.all(np.isfinite(pop)):
                raise ValueError("population_stats must be finite (no NaN or inf)")
            object.__setattr__(self, "population_stats", pop)
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != (keep.shape[1],):
                raise ValueError(
                    f"labels must hold one entry per example ({keep.shape[1]}); got {labels.shape}"
                )
        if not self.models:
            object.__setattr__(self, "models", tuple(str(m) for m in range(keep.shape[0])))


def _check_pair(keep, stats, where: str):
    keep = np.asarray(keep)
    if keep.dtype != bool:
        if keep.size and np.issubdtype(keep.dtype, np.integer) and np.isin(keep, (0, 1)).all():
            keep = keep.astype(bool)
        else:
            raise ValueError(f"{where}: keep must be boolean (or 0/1); got dtype {keep.dtype}")
    if keep.ndim != 2 or keep.shape[0] < 2 or keep.shape[1] < 1:
        raise ValueError(f"{where}: keep must be models × examples (>= 2 models); got {keep.shape}")
    stats = np.asarray(stats)
    if not (np.issubdtype(stats.dtype, np.floating) or np.issubdtype(stats.dtype, np.integer)):
        raise ValueError(f"{where}: stats must be numbers; got dtype {stats.dtype}")
    stats = stats.astype(np.float64)
    if stats.ndim == 2:
        stats = stats[:, :, None]
    if stats.ndim != 3 or stats.shape[:2] != keep.shape:
        raise ValueError(
            f"{where}: stats must be models × examples [× queries] matching keep {keep.shape}; "
            f"got {stats.shape}"
        )
    if not np.all(np.isfinite(stats)):
        raise ValueError(f"{where}: stats must be finite (no NaN or inf)")
    return keep, stats


# --------------------------------------------------------------------------- reading
def _load(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except MemoryError:
        raise
    except Exception as err:  # numpy's header parser raises several kinds (TokenError too)
        raise ValueError(f"{path} is not a readable {what} .npy file ({err})") from None


def _model_order(name: str):
    m = re.match(r"experiment-?(\d+)", name)
    return (0, int(m.group(1)), name) if m else (1, 0, name)


def _epoch_file(folder: Path, epoch) -> Path:
    files = sorted(p.name for p in folder.iterdir() if p.suffix == ".npy")
    if not files:
        raise ValueError(f"{folder} holds no score files (*.npy)")
    if epoch is None:
        return folder / files[-1]
    name = f"{int(epoch):010d}.npy" if isinstance(epoch, (int, np.integer)) else str(epoch)
    if name not in files:
        raise ValueError(f"{folder} has no score file {name}; it has {', '.join(files[-5:])}")
    return folder / name


def read_reference(root, *, epoch=None) -> ScoreArrays:
    """Read the reference layout under ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    folders = []
    for parent, dirs, _ in os.walk(root):
        for d in dirs:
            path = Path(parent) / d
            if d.startswith("experiment") and (path / "scores").is_dir():
                folders.append(path)
    if not folders:
        raise ValueError(f"{root} holds no experiment*/scores/ folders (the reference layout)")
    folders.sort(key=lambda p: (_model_order(p.name), str(p)))
    real: dict = {}
    for folder in folders:  # a linked copy of a model's folder would be scored as another model
        first = real.setdefault(folder.resolve(), folder)
        if first != folder:
            raise ValueError(
                f"{folder} and {first} are the same folder (a link): each model must appear "
                "once; remove the link"
            )
    keeps, stats, used = [], [], []
    for folder in folders:
        if not any(p.suffix == ".npy" for p in (folder / "scores").iterdir()):
            continue  # the reference code skips a model without scores, too
        if not (folder / "keep.npy").is_file():
            raise ValueError(f"{folder} has scores but no keep.npy")
        stats.append(_load(_epoch_file(folder / "scores", epoch), "scores"))
        keeps.append(_load(folder / "keep.npy", "keep"))
        used.append(folder.name)
    shapes = {s.shape for s in stats}
    if len(shapes) != 1:
        raise ValueError(f"{root}: score files differ in shape {sorted(shapes)[:3]}")
    n = stats[0].shape[0]
    if any(k.ndim != 1 or k.shape[0] < n for k in keeps):
        raise ValueError(
            f"{root}: every keep.npy must be 1-D with >= {n} entries (one per example)"
        )
    keep = np.stack([k[:n] for k in keeps])  # cut to the scores' length, as the reference does
    labels = population = None
    if (root / "y_train.npy").is_file():
        y = _load(root / "y_train.npy", "labels")
        labels = y[:n] if y.ndim == 1 and y.shape[0] >= n else None
    if (root / "population_stats.npy").is_file():
        population = _load(root / "population_stats.npy", "population statistics")
    meta = _read_meta(root / "mialaw.json") if (root / "mialaw.json").is_file() else {}
    return ScoreArrays(
        keep=keep,
        stats=np.stack(stats),
        population_stats=population,
        labels=labels,
        models=tuple(used),
        source=str(root),
        layout="reference",
        meta=meta,
    )


def _read_meta(path: Path) -> dict:
    """The JSON object in a folder's ``mialaw.json`` (written by ``export``); ValueError naming
    the file when it is not one."""
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); remove it or rewrite it") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} must hold a JSON object; got a {type(meta).__name__}")
    return meta


def read_arrays(path) -> ScoreArrays:
    """keep and stats from a folder of .npy files or one .npz (see the module docstring)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except MemoryError:
            raise
        except Exception as err:  # zip, header and parser errors of every kind
            raise ValueError(f"{path} is not a readable .npz file ({err})") from None
    elif path.is_dir():
        arrays = {
            name: _load(path / f"{name}.npy", name)
            for name in ("keep", "stats", "population_stats", "labels")
            if (path / f"{name}.npy").is_file()
        }
    else:
        raise ValueError(f"{path} is neither a folder nor an .npz file")
    missing = [k for k in ("keep", "stats") if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks {missing} (keep: models × examples, stats: × queries)")
    pop = arrays.get("population_stats")
    if pop is not None and pop.ndim >= 2 and pop.shape[1] == 0:
        pop = None
    return ScoreArrays(
        keep=arrays["keep"],
        stats=arrays["stats"],
        population_stats=pop,
        labels=arrays.get("labels"),
        source=str(path),
        layout="arrays",
    )


def read_scores(path, *, epoch=None) -> ScoreArrays:
    """Either layout: the reference one if ``path`` holds experiment*/ folders, else arrays."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if path.is_dir() and not (path / "keep.npy").is_file() and not (path / "stats.npy").is_file():
        return read_reference(path, epoch=epoch)
    return read_arrays(path)


# --------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class ScoredAttack:
    """Scores (targets × examples) per attack, how they were made, and TPR at each FPR."""

    scores: dict = field(repr=False)
    labels: np.ndarray = field(repr=False)  # membership of the targets (targets × examples)
    targets: tuple
    rotation: str
    measurements: dict = field(repr=False)  # attack -> tuple of TprMeasurement
    fpr: tuple = ()

    def roc(self, attack: str = "lira_online"):
        """The pooled ROC of ``attack`` over all targets."""
        from mialaw.theory.measure import Experiment

        return Experiment(self.scores[attack], self.labels).roc()

    def table(self) -> str:
        lines = [f"rotation: {self.rotation}; {len(self.targets)} target model(s)"]
        for name, found in self.measurements.items():
            for m in found:
                if not m.resolvable:
                    lines.append(f"{name:<13} fpr={m.fpr:<7g} unresolvable (fewer than 1/fpr)")
                    continue
                lo, est, hi = m.interval
                lines.append(
                    f"{name:<13} fpr={m.fpr:<7g} TPR {est:.4f} [{lo:.4f}, {hi:.4f}] "
                    f"(achieved FPR {m.achieved_fpr:.2e}, {m.negatives} negatives)"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "rotation": self.rotation,
            "targets": list(self.targets),
            "measurements": {
                name: [m.to_dict() for m in found] for name, found in self.measurements.items()
            },
        }


def _dedicated(fn, keep, stats, targets, *extra, **options) -> np.ndarray:
    """Score each target against the non-target models only (no model scored twice)."""
    shadows = np.setdiff1d(np.arange(keep.shape[0]), targets)
    rows = []
    for t in targets:
        order = np.r_[shadows, t]
        args = [keep[order], stats[order]] + [e[order] for e in extra]
        rows.append(fn(*args, rotation="loo", targets=[len(order) - 1], **options)[0])
    return np.stack(rows)


def _scorer(keep, stats, targets, rotation):
    """(target models, how they are scored, ``run(score_fn, *extra, **options)``): dedicated
    ``targets`` against the other models, or every model by ``rotation`` (default: pairs when
    the keep matrix has complementary pairs, else leave-one-out with a TiltWarning)."""
    from mialaw.theory.lira import complementary_pairs

    models = keep.shape[0]
    if targets is not None:
        if rotation is not None:
            raise ValueError("give targets or rotation, not both")
        t = np.unique(np.atleast_1d(np.asarray(targets)))
        if not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= models:
            raise ValueError(f"targets must be model indices in [0, {models}); got {targets!r}")
        if models - t.size < 4:
            raise ValueError(
                f"dedicated targets leave {models - t.size} shadow models; need >= 4 "
                "(2 IN and 2 OUT for every example)"
            )
        how = f"dedicated targets {t.tolist()}, scored against the {models - t.size} other models"

        def dedicated(fn, *extra, **options):
            return _dedicated(fn, keep, stats, t, *extra, **options)

        return t, how, dedicated
    if rotation is None:
        rotation = "pairs" if complementary_pairs(keep) else "loo"
    if rotation not in ("pairs", "loo"):
        raise ValueError(f"rotation must be 'pairs' or 'loo'; got {rotation!r}")
    if rotation == "loo":
        warnings.warn(
            "the models are not in complementary pairs and no targets were named: scoring "
            "leave-one-out, which is tilted towards 'non-member' on a balanced keep matrix "
            "(name dedicated target models to avoid it)",
            TiltWarning,
            stacklevel=3,  # at score_arrays' caller
        )
    how = "pair rotation" if rotation == "pairs" else "leave-one-out (tilted)"

    def run(fn, *extra, **options):
        return fn(keep, stats, *extra, rotation=rotation, **options)

    return np.arange(models), how, run


def score_arrays(
    arrays: ScoreArrays,
    *,
    fpr=(0.1, 0.01, 0.001),
    targets=None,
    preset: str = "mialaw",
    rmia_a: float = 0.3,
    rmia_gamma: float = 2.0,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    rotation: str | None = None,
) -> ScoredAttack:
    """LiRA (online, offline) and, with population statistics, RMIA scores and TPR at ``fpr``.

    ``targets``: model indices scored against the other models (dedicated targets); default:
    every model, by pair rotation when the keep matrix has complementary pairs, else by
    leave-one-out with a ``TiltWarning``. ``preset``: a key of
    ``mialaw.theory.lira.LIRA_PRESETS`` ("mialaw" or the reference code's "reference").
    ``rotation`` forces "pairs" or "loo" (no targets).
    """
    from mialaw.theory.lira import LIRA_PRESETS, lira_scores, rmia_scores
    from mialaw.theory.measure import Experiment, measure_tpr

    if not isinstance(arrays, ScoreArrays):
        raise ValueError("arrays must be a ScoreArrays (see read_scores)")
    if preset not in LIRA_PRESETS:
        raise ValueError(f"preset must be one of {sorted(LIRA_PRESETS)}; got {preset!r}")
    options = dict(LIRA_PRESETS[preset])
    keep, stats, pop = arrays.keep, arrays.stats, arrays.population_stats
    t, how, run = _scorer(keep, stats, targets, rotation)
    scores = {
        "lira_online": run(lira_scores, online=True, **options),
        "lira_offline": run(lira_scores, online=False, **options),
    }
    if pop is not None:
        scores["rmia"] = run(rmia_scores, pop, a=rmia_a, gamma=rmia_gamma)
    labels = keep[t]
    measurements = {
        name: measure_tpr(
            Experiment(s, labels), fpr, level=level, resamples=resamples, seed=seed + k
        )
        for k, (name, s) in enumerate(scores.items())
    }
    return ScoredAttack(
        scores=scores,
        labels=labels,
        targets=tuple(int(i) for i in t),
        rotation=how,
        measurements=measurements,
        fpr=tuple(float(a) for a in np.atleast_1d(fpr)),
    )


# --------------------------------------------------------------------------- writing
def write_reference(
    out, keep, stats, *, population_stats=None, labels=None, epoch=REFERENCE_EPOCH, meta=None
) -> Path:
    """Write keep (M × N) and stats (M × N × Q) in the reference layout under ``out``.

    ``out/experiment-{m}_{M}/keep.npy`` and ``.../scores/{epoch}``; ``y_train.npy`` and
    ``population_stats.npy`` at the root when given. Arrays are saved as they are (bool keep,
    float64 stats), so reading them back is lossless.
    """
    keep, stats = _check_pair(keep, stats, "write_reference")
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
    from mialaw.empirical.cells import read_cell, read_settings
    from mialaw.empirical.config import RunConfig, cell_name

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
                population_stats=arrays["population_stats"],
                labels=arrays["labels"],
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
    from mialaw.empirical.cells import CellSpec, store_of, write_settings
    from mialaw.empirical.config import RunConfig

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


def _cannot_recompute(*args, **kwargs):
    raise ValueError(
        "an imported run holds another tool's scores; it cannot be recomputed (import again)"
    )


# The learner of imported runs: their cells come from score folders, not from training.
IMPORTED = Learner(
    name="imported",
    version="1",
    prepare=_cannot_recompute,
    run_cell=_cannot_recompute,
    description="cells imported from score folders (import_runs)",
)


def _preset(name: str) -> dict:
    from mialaw.theory.lira import LIRA_PRESETS

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
