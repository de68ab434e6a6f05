"""The tables of fitted slopes: every source's power law beside the published one, the first
release's slopes beside this one's, and the slope under other λ, saturation cuts, local windows
and learners (FiLM against the head)."""

from __future__ import annotations

from importlib import resources

from mialaw.empirical.attacks import law_attacks

from .fit_quality import QUALITY_COLUMNS, empirical_slope_rows, simulated_laws
from .published import PUBLISHED_QUANTILE_SLOPES, PUBLISHED_SLOPE_AVERAGE
from .run_selection import empirical_results, result_set
from .table_format import Table, read_table

__all__ = [
    "CHANGE_COLUMNS",
    "SLOPE_COLUMNS",
    "TABLES",
    "change_rows",
    "film_rows",
    "lambda_rows",
    "local_slope_rows",
    "saturation_rows",
    "shots_range",
    "slope_rows",
]

SLOPE_COLUMNS = (
    "source",
    "setting",
    "fpr",
    "slope",
    "ci_low",
    "ci_high",
    "n",
    "shots",
    "published",
    *QUALITY_COLUMNS,
)


def shots_range(fit) -> str | None:
    """ "lo-hi" of the S a fit used (a PowerLaw or its dict form)."""
    found = fit.get("shots_range") if isinstance(fit, dict) else fit.shots_range
    lo, hi = found or (None, None)
    return None if lo is None else f"{lo:g}-{hi:g}"


def _interval(ci) -> tuple:
    return tuple(ci) if ci else (None, None)


def slope_rows(results: dict, profile=None) -> list[dict]:
    """Fitted slopes of log10(TPR − FPR) on log10 S, per source and FPR, beside the paper's."""
    return _theory_slopes(results) + _simulated_slopes(results) + empirical_slopes(results)


def _theory_slopes(results: dict) -> list[dict]:
    rows = []
    theory = results.get("theory")
    for s in theory["slopes"] if theory else []:
        lo, hi = s["slope_ci"]
        rows.append(
            {
                "source": f"exact theory ({s['test']}, per-example average)",
                "setting": "d={dim}, sigma={sigma}, S in [{:.0e}, {:.0e}]".format(
                    *s["shots_range"], **theory["model"]
                ),
                "fpr": s["fpr"],
                "slope": s["slope"],
                "ci_low": lo,
                "ci_high": hi,
                "n": None,
                "published": PUBLISHED_SLOPE_AVERAGE,
            }
        )
    return rows


def _simulated_slopes(results: dict) -> list[dict]:
    """The simulated sweeps' laws, recomputed from their points (``fit_quality``)."""
    rows = []
    for name, res in results.items():
        if not name.startswith("simulate-") or "config" not in res:
            continue
        cfg = res["config"]
        setting = f"d={cfg['dim']}, sigma={cfg['sigma']}, targets={cfg['targets']}"
        if cfg["attack"] != "oracle":
            setting += f", shadows={cfg['shadows']}"
        laws = simulated_laws(res)
        for key, fit in res["fit"].items():
            for kind in ("pooled", "per_example"):
                law = laws.get((float(key), kind))
                if not fit.get(kind) and (law is None or law.fit is None):
                    continue
                rows.append(
                    {
                        "source": f"simulated {cfg['attack']} ({kind.replace('_', '-')})",
                        "setting": setting,
                        "fpr": float(key),
                        **(law.row() if law is not None else {}),
                        "published": PUBLISHED_SLOPE_AVERAGE,
                    }
                )
    return rows


def empirical_slopes(results: dict) -> list[dict]:
    """Every real-model law recomputed from its run's points (``fit_quality``): slope, χ²/dof,
    p, the asymptotic slope of a + b·log10 S + c/√S and the saturation cut used."""
    rows = []
    for res in empirical_results(results) + empirical_results(results, kind="mechanism"):
        rows += empirical_slope_rows(
            res, law_attacks(), PUBLISHED_SLOPE_AVERAGE, PUBLISHED_QUANTILE_SLOPES
        )
    return rows


# --------------------------------------------------------------------------- against v0.1
CHANGE_COLUMNS = ("source", "setting", "fpr", "slope_v0.1", "slope", "ci_low", "ci_high", "n")
# The first release's real-model slopes, shipped as package data.
REFERENCE = ("mialaw.paper", "reference/slopes-v0.1.csv")
# v0.1 named real-model sources "dataset / backbone"; this release names them by run.
V01_SOURCES = {
    "fashion-mnist / efficientnet-lite0": "fashion-mnist-lite0",
    "digits / pixels": "digits-pixels",
    "gaussian / identity": "gaussian",
}


def _reference_rows() -> list[dict]:
    package, name = REFERENCE
    path = resources.files(package).joinpath(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"the first release's slopes ({package}/{name}) are missing from this installation: "
            "reinstall mialaw (the file is package data)"
        )
    with resources.as_file(path) as found:
        return read_table(found)


def change_rows(results: dict, profile=None) -> list[dict]:
    """Real-model slopes of this release beside the first release's (paper/reference/), matched
    by source, setting and FPR."""
    old = {}
    for r in _reference_rows():
        if " (" not in r["source"]:
            continue
        run, attack = r["source"].split(" (", 1)
        key = (f"{V01_SOURCES.get(run, '?')} ({attack}", r["setting"], float(r["fpr"]))
        old[key] = r
    rows = []
    for r in empirical_slopes(results):
        if r["fpr"] is None:
            continue
        before = old.get((r["source"], r["setting"], float(r["fpr"])))
        if before is None:
            continue
        rows.append(r | {"slope_v0.1": float(before["slope"]) if before["slope"] else None})
    return rows


# --------------------------------------------------------------------------- measurement rules
LAMBDA_COLUMNS = ("dataset", "attack", "fpr", "lambda", "slope", "ci_low", "ci_high", "n", "shots")


def lambda_rows(results: dict, profile=None) -> list[dict]:
    """How the C = 2 LiRA slope moves with the mean-loss L2 strength λ (main runs and λ runs)."""
    rows = []
    names = law_attacks()
    varied = empirical_results(results, kind="lambda")
    bases = {res["label"].rsplit("-lambda", 1)[0] for res in varied}
    # The λ runs and the main runs they vary (not every main run: one row per λ and dataset).
    runs = [res for res in empirical_results(results) if res["label"] in bases] + varied
    for res in runs:
        lam = res.get("weight_decay")
        if lam is None:
            continue
        for f in result_set(res).laws(classes=2, attack=tuple(names)):
            lo, hi = _interval(f.slope_ci)
            rows.append(
                {
                    "dataset": f"{f.dataset} / {f.backbone}",
                    "attack": names[f.attack],
                    "fpr": f.fpr,
                    "lambda": lam,
                    "slope": f.slope,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": f.n,
                    "shots": shots_range(f),
                }
            )
    return sorted(rows, key=lambda r: (r["dataset"], r["attack"], -r["fpr"], r["lambda"]))


CUT_COLUMNS = ("source", "classes", "fpr", "cut", "slope", "ci_low", "ci_high", "n", "shots")


def saturation_rows(results: dict, profile=None) -> list[dict]:
    """The fitted slope under other saturation cuts (advantage < cut·(1 − α) enters the fit)."""
    rows = []
    names = law_attacks()
    for res in empirical_results(results):
        for f in result_set(res).laws(attack=tuple(names)):
            for c in f.extra.get("saturation_sensitivity", []):
                lo, hi = _interval(c.get("slope_ci"))
                rows.append(
                    {
                        "source": f"{res['label']} ({names[f.attack]})",
                        "classes": f.classes,
                        "fpr": f.fpr,
                        "cut": c["cut"],
                        "slope": c.get("slope"),
                        "ci_low": lo,
                        "ci_high": hi,
                        "n": c.get("n"),
                        "shots": shots_range(c),
                    }
                )
    return rows


LOCAL_COLUMNS = (
    "source",
    "classes",
    "fpr",
    "shots_low",
    "shots_high",
    "slope",
    "ci_low",
    "ci_high",
)


def local_slope_rows(results: dict, profile=None) -> list[dict]:
    """Slopes between neighbouring S (the curve's shape), with 95 % intervals."""
    rows = []
    names = law_attacks()
    for res in empirical_results(results):
        for f in result_set(res).laws(attack=tuple(names)):
            for ls in f.extra.get("local_slopes", []):
                rows.append(
                    {
                        "source": f"{res['label']} ({names[f.attack]})",
                        "classes": f.classes,
                        "fpr": f.fpr,
                        "shots_low": ls["shots_low"],
                        "shots_high": ls["shots_high"],
                        "slope": ls["slope"],
                        "ci_low": ls["slope_ci"][0],
                        "ci_high": ls["slope_ci"][1],
                    }
                )
    return rows


FILM_COLUMNS = (
    "attack",
    "fpr",
    "film_slope",
    "film_ci_low",
    "film_ci_high",
    "film_n",
    "head_slope",
    "head_ci_low",
    "head_ci_high",
    "head_n",
)


def film_rows(results: dict, profile=None) -> list[dict]:
    """FiLM against the linear head on the same cells (C = 2, 64 px): fitted slopes side by side."""
    names = law_attacks()
    fits = {}
    for res in empirical_results(results, kind="film"):
        learner = "film" if "-film-" in res["label"] else "head"
        for f in result_set(res).laws(classes=2, attack=tuple(names)):
            fits[(learner, f.attack, f.fpr)] = f
    rows = []
    for attack, label in names.items():
        for alpha in sorted({k[2] for k in fits}, reverse=True):
            row = {"attack": label, "fpr": alpha}
            for learner in ("film", "head"):
                f = fits.get((learner, attack, alpha))
                lo, hi = _interval(f.slope_ci) if f else (None, None)
                row |= {
                    f"{learner}_slope": f.slope if f else None,
                    f"{learner}_ci_low": lo,
                    f"{learner}_ci_high": hi,
                    f"{learner}_n": f.n if f else None,
                }
            rows.append(row)
    return rows


TABLES = (
    Table("slopes", "Power-law slopes beside the paper", SLOPE_COLUMNS, slope_rows),
    Table(
        "slopes_change",
        "Real-model slopes: the first release (v0.1) beside the corrected measurement",
        CHANGE_COLUMNS,
        change_rows,
    ),
    Table(
        "film",
        "FiLM against the linear head on the same cells (C = 2, 64 px)",
        FILM_COLUMNS,
        film_rows,
    ),
    Table(
        "lambda",
        "C = 2 slopes against the mean-loss L2 strength lambda",
        LAMBDA_COLUMNS,
        lambda_rows,
    ),
    Table("saturation", "Slopes under other saturation cuts", CUT_COLUMNS, saturation_rows),
    Table("local_slopes", "Local slopes between neighbouring S", LOCAL_COLUMNS, local_slope_rows),
)
