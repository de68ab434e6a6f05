"""Which stage results a table or figure reads: the empirical runs by the role their profile gives
them (``profiles.EmpiricalSpec.role``), the headline run, and a run's typed results."""

from __future__ import annotations

from mialaw.theory.records import ResultSet

__all__ = [
    "HEADLINE_RUNS",
    "KIND_OF_ROLE",
    "empirical_results",
    "headline_run",
    "primary_run",
    "result_set",
    "tag_roles",
]

# A run's role in its profile -> the part of the study whose tables read it. "main" runs (and the
# large-S, held-out-backbone and transfer runs, which are main runs of their own data) fill the
# slope, regression and per-example tables; the others only their own tables.
KIND_OF_ROLE = {
    "main": "main",
    "large": "main",
    "backbone": "main",
    "transfer": "main",
    "lambda": "lambda",
    "film": "film",
    "mechanism": "mechanism",
}


def tag_roles(results: dict, profile) -> dict:
    """``results`` with every empirical run's ``role`` from ``profile`` (a new dict; the stage
    results themselves are not changed, and their keys do not depend on roles)."""
    roles = {f"empirical-{spec.label}": spec.role for spec in profile.empirical}
    tagged = dict(results)
    for name, role in roles.items():
        if name in tagged:
            tagged[name] = dict(tagged[name]) | {"role": role}
    return tagged


def _kind(res: dict) -> str:
    role = res.get("role", "main")
    if role not in KIND_OF_ROLE:
        raise ValueError(f"run {res.get('label')!r} has role {role!r}; known: {list(KIND_OF_ROLE)}")
    return KIND_OF_ROLE[role]


def empirical_results(results: dict, *, kind: str = "main") -> list[dict]:
    """The per-run empirical stage results (not the combined cross-dataset fit) of one kind:
    "main", "lambda" (a main run at another L2 strength), "film" (FiLM against the head at the
    same cells) or "mechanism"."""
    return [
        res
        for name, res in results.items()
        if name.startswith("empirical-") and name != "empirical-combined" and _kind(res) == kind
    ]


# The DP table's run, by name: the largest-S Fashion-MNIST run, else the main one, else digits.
# The paper names the run it took (a fallback is never printed as Fashion-MNIST's).
HEADLINE_RUNS = ("fashion-mnist-lite0-c2-large", "fashion-mnist-lite0", "digits-pixels")


def headline_run(results: dict) -> dict | None:
    """The run the DP and asymptote tables and the paper's answer read: the first of
    HEADLINE_RUNS present, else (a profile without them) the first run of role "main"."""
    runs = {res["label"]: res for res in empirical_results(results)}
    named = next((runs[label] for label in HEADLINE_RUNS if label in runs), None)
    return named if named is not None else primary_run(results)


def result_set(res: dict) -> ResultSet:
    """A run's stage result as typed records (points and power laws selected by field)."""
    return ResultSet.from_json(res)


def primary_run(results: dict) -> dict | None:
    """The first run of role "main" (the profile's order): the run whose fits section 7 tabulates
    and whose per-example correlations it quotes."""
    return next((res for res in empirical_results(results) if res.get("role") == "main"), None)
