"""Score folders read into arrays: the reference LiRA code's layout and plain arrays.

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

Every error names the folder or file it is about.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ScoreArrays", "check_pair", "read_arrays", "read_reference", "read_scores"]


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
        where = self.source or "arrays"
        keep, stats = check_pair(self.keep, self.stats, where)
        object.__setattr__(self, "keep", keep)
        object.__setattr__(self, "stats", stats)
        if self.population_stats is not None:
            pop = np.asarray(self.population_stats, dtype=np.float64)
            pop = pop[:, :, None] if pop.ndim == 2 else pop
            if pop.ndim != 3 or pop.shape[0] != keep.shape[0] or pop.shape[2] != stats.shape[2]:
                raise ValueError(
                    f"{where}: population_stats must be (models={keep.shape[0]}, P, "
                    f"queries={stats.shape[2]}); got {np.shape(self.population_stats)}"
                )
            if not np.all(np.isfinite(pop)):
                raise ValueError(f"{where}: population_stats must be finite (no NaN or inf)")
            object.__setattr__(self, "population_stats", pop)
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != (keep.shape[1],):
                raise ValueError(
                    f"{where}: labels must hold one entry per example ({keep.shape[1]}); "
                    f"got {labels.shape}"
                )
        if not self.models:
            object.__setattr__(self, "models", tuple(str(m) for m in range(keep.shape[0])))


def check_pair(keep, stats, where: str):
    """(keep as bool M × N, stats as float64 M × N × Q) or ValueError naming ``where``."""
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
    if not stats:
        raise ValueError(f"{root}: no experiment*/scores/ folder holds a score file (*.npy)")
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
