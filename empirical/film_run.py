"""FiLM fine-tuning as a learner of the empirical sweep: cells the analysis reads unchanged.

A FiLM cell is sampled exactly like a Head cell of :mod:`mialaw.empirical.experiment` (same
``candidate_pool``, population = the rest of the first C classes, ``paired_keep`` drawn from
``SeedSequence([seed, C, S])``, the same RNG calls in the same order), so Head and FiLM cells at
the same (C, S, seed) have the same candidates, keep matrix and RMIA reference population; only
the learner differs. The M + 2 models of a cell are fine-tuned at once by
:func:`mialaw.empirical.film.train_film` on the images themselves (not on cached features).

The cell holds what :func:`mialaw.empirical.analysis.summarize_cell` reads:

* ``keep`` (models × examples), ``labels``, ``indices`` (into the image set, as for Head),
  ``classes``, ``shots``, ``seed``, ``pool_overlap``;
* ``stats`` (models × examples × 2): logit-scaled confidence (``attack_stats``) on the image and
  on its horizontal mirror image; ``population_stats`` (models × P × 2) on the RMIA reference
  population (``rmia_population`` held-out images);
* ``accuracy`` (per model): on that reference population. (Head measures it on up to 4,000
  population images; for FiLM every image is a backbone pass per model, and the reference is a
  uniform sample of the same population whose logits are needed anyway.)
* ``grad_norm`` NaN (no closed form once the backbone is modulated), ``atypicality`` NaN (it
  needs frozen features of the population, which a FiLM cell never computes);
* ``train_seconds`` (training wall time), and FiLM's own: ``objective`` (last-epoch mean
  minibatch loss), ``iterations`` (optimiser steps per model), ``train_loss`` (models ×
  epochs), ``query_seconds``, ``train_cpu_seconds``, ``image_steps``.

Settings: the sweep's :class:`~mialaw.empirical.experiment.RunConfig` (dataset, backbone,
classes, shots, shadows, seeds, attacks, RMIA options) and a :class:`FilmSettings`. The image
resolution is the run's ``dataset_options["resolution"]`` (the same option as for Head, so both
learners see the same images); it is required, because FiLM's cost grows with R² and Lite0's own
224 px is rarely what is meant on a CPU. ``FilmSettings.seed`` is not a setting: every cell draws
its minibatch seed from its own ``SeedSequence``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from mialaw.empirical.backbones import get_backbone
from mialaw.empirical.datasets import first_per_class, is_image_dataset, load_dataset
from mialaw.empirical.film_settings import FilmSettings
from mialaw.empirical.learner_base import Learner
from mialaw.empirical.sampling import candidate_pool, cell_record, paired_keep
from mialaw.empirical.statistics import attack_stats

__all__ = [
    "FilmImages",
    "FilmRun",
    "film_options",
    "film_run",
    "film_settings",
    "prepare_images",
    "run_film_cell",
]

# FilmSettings fields that a run does not set: the resolution is the run's dataset option and
# the minibatch seed is drawn per cell.
_NOT_OPTIONS = ("resolution", "seed")
# Options of get_features that choose the images or the backbone rather than the dataset.
_IMAGE_OPTIONS = ("resolution", "max_per_class", "indices", "split", "weights")
# get_features options that change only how features are computed, not which images are used.
_IGNORED_OPTIONS = ("engine", "batch_size")
_POPULATION_CAP = 20000  # as experiment.run_cell: a larger population is subsampled


# --------------------------------------------------------------------------- settings
def film_settings(options: dict | None, *, resolution) -> FilmSettings:
    """FilmSettings from a run's ``film`` options (FilmSettings fields but resolution and seed)
    and the run's image resolution; ValueError on unknown or invalid values."""
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise ValueError(f"film options must be a dict; got {type(options).__name__}")
    allowed = [f.name for f in dataclasses.fields(FilmSettings) if f.name not in _NOT_OPTIONS]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hint = ""
        if "resolution" in unknown:
            hint = "; the resolution is the run's dataset option (--option resolution=R)"
        elif "seed" in unknown:
            hint = "; every cell draws its minibatch seed from its own SeedSequence"
        raise ValueError(f"unknown film options {unknown} (allowed: {allowed}){hint}")
    if resolution is None:
        raise ValueError(
            "the FiLM learner needs an explicit image resolution: dataset_options "
            "{'resolution': R} (--option resolution=R; e.g. 64 on a CPU, 224 = Lite0's own)"
        )
    return FilmSettings(resolution=resolution, **options)


def film_options(settings: FilmSettings) -> dict:
    """The run-level options of ``settings`` (all fields but resolution and seed), as recorded."""
    return {k: v for k, v in dataclasses.asdict(settings).items() if k not in _NOT_OPTIONS}


@dataclass(frozen=True)
class FilmRun:
    """A FiLM sweep: ``run`` (sampling, attacks, dataset, backbone) and the FiLM ``settings``.

    ``settings.resolution`` must equal ``run.dataset_options["resolution"]``. Build it with
    :func:`film_run`.
    """

    run: object  # a RunConfig (recognised by its shape: see _is_run_config)
    settings: FilmSettings

    def __post_init__(self):
        if not _is_run_config(self.run):
            raise ValueError(f"run must be a RunConfig; got {type(self.run).__name__}")
        if not isinstance(self.settings, FilmSettings):
            raise ValueError(f"settings must be a FilmSettings; got {type(self.settings)}")
        resolution = self.run.dataset_options.get("resolution")
        if resolution != self.settings.resolution:
            raise ValueError(
                f"settings.resolution {self.settings.resolution} differs from the run's "
                f"dataset option resolution={resolution!r}"
            )

    def cell_settings(self) -> dict:
        """What defines a FiLM cell's content: the run's cell settings, the learner, FiLM's."""
        return self.run.cell_settings() | {"learner": "film", "film": film_options(self.settings)}


def _is_run_config(config) -> bool:
    # A learner's module does not import the configuration (the registry imports the learners
    # and the configuration imports the registry): a RunConfig is recognised by its shape.
    return dataclasses.is_dataclass(config) and hasattr(config, "cell_settings")


def film_run(config, film: dict | None = None) -> FilmRun:
    """A :class:`FilmRun` from a FilmRun (returned as is) or a RunConfig and FiLM options
    (``film``, else the config's ``learner_settings``)."""
    if isinstance(config, FilmRun):
        if film is not None:
            raise ValueError("film options come with a RunConfig, not with a FilmRun")
        return config
    if not _is_run_config(config):
        raise ValueError(f"config must be a RunConfig or FilmRun; got {type(config).__name__}")
    if getattr(config, "learner", "film") != "film":
        raise ValueError(f"the config's learner is {config.learner!r}, not 'film'")
    options = getattr(config, "learner_settings", None) if film is None else film
    resolution = config.dataset_options.get("resolution")
    return FilmRun(config, film_settings(options, resolution=resolution))


# --------------------------------------------------------------------------- images
@dataclass(frozen=True, eq=False)
class FilmImages:
    """The images of a FiLM sweep: the same examples, labels and order as the Head learner's
    features (``get_features`` with the same dataset options), and the backbone to tune."""

    images: np.ndarray  # (n, H, W) or (n, H, W, 3) uint8
    labels: np.ndarray  # (n,) int64, 0..C-1
    key: str
    backbone: object


def _image_digest(images, labels, extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for a in (images, labels):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_class_sizes(labels, classes, shots) -> None:
    """Like ``prepare_features``: 2·S candidates plus >= 10 held-out images per class."""
    counts = np.bincount(labels, minlength=max(classes))
    need = 2 * max(shots) + 10
    for c in classes:
        smallest = int(counts[:c].min())
        if smallest < need:
            raise ValueError(
                f"S={max(shots)} is larger than the class size allows: each class needs 2·S + 10 "
                f"= {need} images, but the smallest of the first {c} classes has {smallest}"
            )


def prepare_images(config, *, images=None, backbone=None) -> FilmImages:
    """Load (or take) the images and build (or take) the backbone, checked before any writing.

    The selection mirrors ``get_features(dataset, classes=max(C), **dataset_options)``:
    ``max_per_class`` (the first images of every class), ``indices`` or all, of ``split``.
    ``images``: optional (images, labels) to use instead of the dataset (tests).
    """

    fr = film_run(config)
    run = fr.run
    options = dict(run.dataset_options)
    for name in _IGNORED_OPTIONS:
        options.pop(name, None)
    chosen = {name: options.pop(name) for name in _IMAGE_OPTIONS if name in options}
    if images is None:
        if not is_image_dataset(run.dataset):
            raise ValueError(
                f"the FiLM learner needs images; {run.dataset!r} lives in feature space"
            )
        ds = load_dataset(
            run.dataset,
            data_dir=run.data_dir,
            classes=max(run.classes),
            split=chosen.get("split", "train"),
            **options,
        )
        if "max_per_class" in chosen and "indices" in chosen:
            raise ValueError("give indices or max_per_class, not both")
        if "max_per_class" in chosen:
            select = first_per_class(ds.labels, chosen["max_per_class"])
        elif "indices" in chosen:
            select = np.asarray(chosen["indices"], dtype=np.int64)
        else:
            select = np.arange(len(ds), dtype=np.int64)
        x, y = ds.images[select], ds.labels[select]
    else:
        x, y = images
    x, y = _check_images(x, y)
    _check_class_sizes(y, run.classes, run.shots)
    if backbone is None:
        if not run.backbone.startswith("efficientnet-lite"):
            raise ValueError(
                f"the FiLM learner needs an efficientnet-lite backbone; got {run.backbone!r}"
            )
        # The torch engine: FiLM runs the module itself (no ONNX export is needed).
        backbone = get_backbone(
            run.backbone,
            device=run.device,
            weights=chosen.get("weights"),
            resolution=fr.settings.resolution,
            engine="torch",
        )
    key = _image_digest(x, y, {"learner": "film", "backbone": str(getattr(backbone, "key", ""))})
    return FilmImages(images=x, labels=y, key=key, backbone=backbone)


def _check_images(images, labels):
    x = np.asarray(images)
    y = np.asarray(labels)
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 3):
        raise ValueError(f"images must be uint8 (n, H, W) or (n, H, W, 3); got {x.dtype} {x.shape}")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"labels must be {x.shape[0]} integers >= 0; got {y.dtype} {y.shape}")
    return x, y.astype(np.int64)


# --------------------------------------------------------------------------- one cell
def _check_cell(y_all, run, classes, shots, seed) -> tuple[int, int, int]:
    for name, value, low, high in (
        ("classes", classes, 2, int(y_all.max()) + 1),
        ("shots", shots, 1, None),
        ("seed", seed, 0, run.seeds - 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer; got {value!r}")
        if value < low or (high is not None and value > high):
            raise ValueError(f"{name} must lie in [{low}, {high}]; got {value}")
    _check_class_sizes(y_all, (int(classes),), (int(shots),))
    return int(classes), int(shots), int(seed)


def run_film_cell(
    images,
    labels,
    config,
    classes: int,
    shots: int,
    seed: int,
    *,
    backbone=None,
    threads: int | None = None,
) -> dict:
    """Fine-tune and query the M + 2 FiLM models of one (C, S, seed) cell; its arrays.

    ``images``/``labels``: the sweep's image set (``prepare_images``; indices refer to it).
    ``config``: a :class:`FilmRun`, or a RunConfig with FiLM options (after the patch that adds
    them). ``backbone``: an EfficientNet-Lite ``TorchBackbone`` at the run's resolution (built
    from the config when None). ``threads``: CPU threads for training (``train_film``'s).
    """
    from mialaw.empirical.film import train_film

    fr = film_run(config)
    run = fr.run
    x_all, y_all = _check_images(images, labels)
    classes, shots, seed = _check_cell(y_all, run, classes, shots, seed)
    if backbone is None:
        backbone = prepare_images(fr, images=(x_all, y_all)).backbone

    # Exactly the RNG calls of experiment.run_cell, in its order, so that the candidates, the
    # keep matrix and the RMIA reference population are those of the Head cell.
    pool, overlap = candidate_pool(y_all, shots, classes, seed, run.seeds)
    rng = np.random.default_rng(np.random.SeedSequence([seed, classes, shots]))
    population = np.setdiff1d(np.flatnonzero(y_all < classes), pool)
    if population.size > _POPULATION_CAP:
        population = np.sort(rng.choice(population, _POPULATION_CAP, replace=False))
    y = y_all[pool]
    keep = paired_keep(run.models, y, rng)
    train_seed = int(rng.integers(2**31))  # Head's train_heads seed: here the minibatch seed
    reference = np.sort(rng.permutation(population)[: run.rmia_population])

    settings = dataclasses.replace(fr.settings, seed=train_seed)
    # One call queries the candidates and the reference population (and their mirror images).
    result = train_film(
        backbone,
        x_all[pool],
        y,
        keep,
        classes=classes,
        settings=settings,
        query=np.concatenate([x_all[pool], x_all[reference]]),
        threads=threads,
    )
    n = pool.size
    cand = [result.logits[:, :n], result.logits_flipped[:, :n]]
    pop = [result.logits[:, n:], result.logits_flipped[:, n:]]
    accuracy = (result.logits[:, n:].argmax(-1) == y_all[reference][None, :]).mean(1)
    steps = np.ceil(keep.sum(1) / settings.batch_size).astype(np.int64) * settings.epochs
    return cell_record(classes, shots, seed, keep, y, pool, overlap) | {
        "stats": attack_stats(cand, y),
        "population_stats": attack_stats(pop, y_all[reference]),
        "accuracy": accuracy.astype(np.float64),
        "grad_norm": np.full(keep.shape, np.nan),
        "atypicality": np.full(n, np.nan),
        "objective": result.train_loss[:, -1].astype(np.float64),
        "iterations": steps,
        "train_loss": result.train_loss.astype(np.float64),
        "train_seconds": np.float64(result.train_seconds),
        "train_cpu_seconds": np.float64(result.train_cpu_seconds),
        "query_seconds": np.float64(result.query_seconds),
        "image_steps": np.int64(result.image_steps),
    }


# --------------------------------------------------------------------------- the learner
def _prepare(config, given) -> FilmImages:
    if isinstance(given, FilmImages):
        return given
    return prepare_images(config, images=given)


def _run_cell(prepared: FilmImages, config, classes, shots, seed) -> dict:
    return run_film_cell(
        prepared.images,
        prepared.labels,
        config,
        classes,
        shots,
        seed,
        backbone=prepared.backbone,
        threads=config.threads,
    )


def _settings(options: dict, config) -> dict:
    resolution = config.dataset_options.get("resolution")
    return film_options(film_settings(options, resolution=resolution))


# Part of the identity of every FiLM cell: bump when a change alters a FiLM cell's arrays.
LEARNER = Learner(
    name="film",
    version="1",
    prepare=_prepare,
    run_cell=_run_cell,
    settings=_settings,
    description="FiLM scale/shift after every batch norm of a frozen EfficientNet-Lite, + head",
)
