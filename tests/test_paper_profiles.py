"""Every profile's paper.md says only what its own run computed (issue 17).

The quick profile is rendered from the committed stage results of its three runs (the full
study's runs of the same labels and roles), with Fashion-MNIST and without it (its stages dropped
and reproduce's skip notes passed, as a machine without the data would); the smoke profile from
the session's own smoke run, and with its empirical stage skipped. Each paper is checked against
its tables by code written here, independently of the sentences' builders: the headline's numbers
are the named run's rows, the tallies are recounted from the CSV, no figure link dangles, and the
answer never says "not in this run".
"""

import csv
import json
import re
from pathlib import Path

import pytest

from mialaw.paper.outputs import paper_text
from mialaw.paper.profiles import PROFILES
from mialaw.paper.run_selection import tag_roles
from mialaw.paper.tables import write_tables

STAGES = Path(__file__).resolve().parent.parent / "paper" / "stages"
QUICK_STAGES = (
    "derive",
    "theory",
    "simulate-oracle",
    "simulate-lira-64",
    "empirical-fashion-mnist-lite0",
    "empirical-digits-pixels",
    "empirical-gaussian",
    "empirical-combined",
)
FASHION_NOTES = (
    "empirical-fashion-mnist-lite0 skipped: Fashion-MNIST IDX files not found. Install them with "
    "`apt-get install dataset-fashion-mnist` or set MIALAW_DATA to a directory holding them.",
    "empirical-combined skipped: it needs empirical-fashion-mnist-lite0",
)


def _render(results: dict, profile, out: Path, notes=()) -> str:
    """Tables and paper.md's text (no figures: the blocks that need one are left out)."""
    out.mkdir(parents=True, exist_ok=True)
    write_tables(tag_roles(results, profile), profile, out)
    return paper_text(results, profile, out, notes)


def _quick_results(without_fashion: bool) -> dict:
    names = [n for n in QUICK_STAGES if not (without_fashion and "fashion" in n)]
    if without_fashion:
        names.remove("empirical-combined")
    return {n: json.loads((STAGES / f"{n}.json").read_text())["result"] for n in names}


def _rows(out: Path, table: str) -> list[dict]:
    with (out / "tables" / f"{table}.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _answer(text: str) -> str:
    return text.split("## The answer in brief", 1)[1].split("\n## ", 1)[0]


def _printed(value: str) -> str:
    """A slope as the paper prints it, formatted here (not by the code under test)."""
    return f"{float(value):.2f}".replace("-", "−")


def _check_common(text: str, out: Path) -> None:
    assert "{{" not in text and "<!--" not in text
    assert "not in this run" not in text.lower()
    answer = _answer(text)
    assert "n/a" not in answer
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (out / link).exists(), f"dangling figure link {link}"
    assert f"--out {out}`" in text and f"`{out}/tables/`" in text


def _check_headline(text: str, out: Path, label: str) -> None:
    """The headline bullet names ``label``, prints that run's C = 2 LiRA slopes, and its tally
    against −½ is the count over those rows' intervals."""
    answer = _answer(text)
    bullet = next(line for line in answer.splitlines() if line.startswith("* **Measured"))
    assert f"`{label}` at C = 2" in bullet
    rows = [
        r
        for r in _rows(out, "slopes")
        if r["source"] in (f"{label} (LiRA online)", f"{label} (LiRA offline)")
        and r["setting"] == "C=2"
    ]
    assert rows
    for r in rows:
        if r["slope"]:
            assert _printed(r["slope"]) in bullet, (r, bullet)
    with_ci = [r for r in rows if r["ci_low"] and r["ci_high"]]
    below = sum(float(r["ci_high"]) < -0.5 for r in with_ci)
    above = sum(float(r["ci_low"]) > -0.5 for r in with_ci)
    if not with_ci:
        assert "no fit has an interval" in bullet and "resolves the slope" in bullet
        return
    assert f"{below} lie wholly below −½" in bullet
    assert f"{len(with_ci) - below - above} include −½" in bullet
    assert f"{above} lie wholly above it" in bullet
    if below == len(with_ci):
        assert "falls faster than −½" in bullet
    else:
        assert "falls faster than −½" not in bullet


def _check_primary_claim(text: str, out: Path, label: str) -> None:
    """ "Every fit is clearly negative" only when every interval of the run lies below 0."""
    rows = [
        r
        for r in _rows(out, "slopes")
        if r["source"] in (f"{label} (LiRA online)", f"{label} (LiRA offline)")
        and r["ci_low"]
        and r["ci_high"]
    ]
    all_negative = all(float(r["ci_high"]) < 0 for r in rows)
    assert ("is clearly negative" in text) == (bool(rows) and all_negative)
    assert "Every fit is clearly negative" not in text  # the old fixed sentence


def test_quick_with_fashion_mnist_answers_from_its_own_runs(tmp_path):
    out = tmp_path / "results"
    text = _render(_quick_results(False), PROFILES["quick"], out)
    _check_common(text, out)
    _check_headline(text, out, "fashion-mnist-lite0")
    _check_primary_claim(text, out, "fashion-mnist-lite0")
    assert "the headline run is `fashion-mnist-lite0` (Fashion-MNIST" in text
    # Settings read from the run: the full-scale run's three seeds, not a profile's prose.
    assert "3 seeds" in _answer(text) and "six seeds" not in text
    for absent in ("S = 2,048", "256 shadow models", "figures/shadows.png", "Lite1"):
        assert absent not in text, absent
    _check_dp(text, out)


def _check_dp(text: str, out: Path) -> None:
    """The answer's DP shots are the ε = 1 rows of dp_shots, with how far the average law is
    carried (its own column, not the most vulnerable example's)."""
    dp = next(line for line in _answer(text).splitlines() if "DP equivalence" in line)
    for row in _rows(out, "dp_shots"):
        if float(row["epsilon"]) != 1.0 or not row["empirical_average"]:
            continue
        assert f"{int(float(row['empirical_average'])):,} (" in dp
        reach = float(row["average_decades_beyond_data"])
        assert (f"{reach:.1f} decades beyond" if reach > 0 else "within the measured S") in dp


def test_quick_without_fashion_mnist_says_so_and_never_prints_digits_as_fashion(tmp_path):
    out = tmp_path / "results"
    text = _render(_quick_results(True), PROFILES["quick"], out, FASHION_NOTES)
    _check_common(text, out)
    _check_headline(text, out, "digits-pixels")
    assert "apt-get install dataset-fashion-mnist" in text
    assert "Fashion-MNIST was not computed" in _answer(text)
    # Fashion-MNIST appears only where the paper says it is absent, never beside a number.
    for sentence in re.split(r"(?<=[.;])\s", text):
        if "Fashion-MNIST" in sentence and re.search(r"−\d", sentence):
            pytest.fail(f"a number under a Fashion-MNIST sentence: {sentence}")
    assert "fashion-mnist-lite0" not in text.replace("empirical-fashion-mnist-lite0", "")
    dp = next(line for line in _answer(text).splitlines() if "DP equivalence" in line)
    assert "`digits-pixels`'s fitted C = 2" in dp
    _check_dp(text, out)


def test_a_run_absent_without_a_note_is_still_named(tmp_path):
    """Re-rendered without reproduce's notes, the quick paper still says Fashion-MNIST's run is
    absent and does not print digits as Fashion-MNIST."""
    out = tmp_path / "results"
    text = _render(_quick_results(True), PROFILES["quick"], out)
    _check_common(text, out)
    _check_headline(text, out, "digits-pixels")
    assert "empirical-fashion-mnist-lite0 skipped: this run holds no result" in text
    assert "Fashion-MNIST was not computed" in _answer(text)


def test_smoke_paper_of_the_session_run(smoke):
    out, report = smoke
    text = (out / "paper.md").read_text()
    _check_common(text, out)
    _check_headline(text, out, "digits-pixels")
    _check_primary_claim(text, out, "digits-pixels")
    assert "d = 16, σ = 1" in text  # the smoke profile's theory, not the full one's d = 64
    assert "Fashion-MNIST" not in _answer(text)


def test_smoke_without_any_real_model_answers_from_theory_only(smoke, tmp_path):
    out, report = smoke
    results = {k: v for k, v in report.results.items() if not k.startswith("empirical-")}
    notes = tuple(f"{name} skipped: no data" for name in report.results if name not in results)
    text = _render(results, PROFILES["smoke"], tmp_path / "out", notes)
    _check_common(text, tmp_path / "out")
    assert "No real model was measured" in _answer(text)
    assert "| `" not in text  # no runs table rows
