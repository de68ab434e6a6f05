"""paper.md's placeholders: a placeholder that resolves to nothing is an error, never "n/a"."""

import json
from pathlib import Path

import pytest

from mialaw.paper.outputs import derivation_extra, load_stage_results, paper_text
from mialaw.paper.profiles import PROFILES
from mialaw.paper.render import (
    NULL,
    RunContext,
    load_tables,
    lookup,
    render,
    render_paper,
)

PAPER = Path(__file__).resolve().parent.parent / "paper"
SLOPE = {"source": "sim", "fpr": "0.1", "slope": "-0.5", "ci_low": "-0.6", "ci_high": "-0.4"}


def _tables():
    unresolved = SLOPE | {"fpr": "0.001", "slope": "", "ci_low": "", "ci_high": ""}
    return {"slopes": [SLOPE, SLOPE | {"source": "twice"}, SLOPE | {"source": "twice"}, unresolved]}


def test_a_placeholder_prints_its_row():
    text = render("{{slopes: source=sim; fpr=0.10 | slope_ci}}", _tables())
    assert text == "−0.50 [−0.60, −0.40]"
    assert lookup(_tables(), "slopes", "source=sim; fpr=0.1", "slope") == "−0.50"


@pytest.mark.parametrize(
    "placeholder, reason",
    [
        ("{{slope: source=sim; fpr=0.1 | slope}}", "no table 'slope'"),
        ("{{slopes: source=sim; fpr=0.2 | slope}}", "no row of table slopes matches"),
        ("{{slopes: source=twice | slope}}", "matches 2 rows"),
        ("{{slopes: source=sim; fpr=0.1 | slop}}", "no column 'slop'"),
        ("{{slopes: sorce=sim; fpr=0.1 | slope}}", "no column 'sorce' to filter on"),
        ("{{slopes: source sim | slope}}", "bad filter"),
        ("{{no_such_value}}", "no value was supplied"),
    ],
)
def test_a_placeholder_that_resolves_to_nothing_is_an_error_naming_it(placeholder, reason):
    with pytest.raises(ValueError) as error:
        render(f"before {placeholder} after", _tables())
    assert placeholder in str(error.value) and reason in str(error.value)


def test_lookup_names_the_placeholder_it_cannot_resolve():
    with pytest.raises(ValueError, match=r"\{\{slopes:source=sim; fpr=0.2\| slope\}\}: no row"):
        lookup(_tables(), "slopes", "source=sim; fpr=0.2", "slope")


def test_every_bad_placeholder_is_listed_in_one_error():
    template = "{{nope: a=1 | b}} fine {{slopes: source=sim; fpr=0.1 | slope}} {{slopes: a=1 | b}}"
    with pytest.raises(ValueError, match="2 placeholder") as error:
        render(template, _tables())
    assert "{{nope: a=1 | b}}" in str(error.value)
    assert "{{slopes: a=1 | b}}" in str(error.value)


def test_an_existing_row_without_a_value_prints_the_null_marker():
    tables = _tables()
    assert render("{{slopes: source=sim; fpr=0.001 | slope}}", tables) == NULL
    interval = render("{{slopes: source=sim; fpr=0.001 | slope_ci}}", tables)
    assert interval == f"{NULL} [{NULL}, {NULL}]"


BLOCKS = """A
<!-- needs: empirical-big, figures/law.png -->
B {{slopes: source=digits; fpr=0.1 | slope}}
<!-- end -->
<!-- without: empirical-big -->
C
<!-- end -->
D
"""


def test_a_block_whose_runs_are_absent_is_left_out_and_its_placeholders_never_read(tmp_path):
    (tmp_path / "figures").mkdir()
    context = RunContext(frozenset({"theory"}), (), tmp_path)
    assert render(BLOCKS, _tables(), context=context) == "A\nC\nD\n"


def test_a_block_whose_run_was_skipped_says_so_in_one_sentence(tmp_path):
    note = "empirical-big skipped: data not found; apt-get install big"
    context = RunContext(frozenset({"theory"}), (note, "unrelated note"), tmp_path)
    text = render(BLOCKS, _tables(), context=context)
    assert text.startswith("A\n*Not computed in this run: empirical-big skipped: data not found")
    assert "B " not in text and "unrelated" not in text


def test_a_block_whose_needs_are_met_must_resolve(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "law.png").write_bytes(b"png")
    context = RunContext(frozenset({"empirical-big"}), (), tmp_path)
    with pytest.raises(ValueError, match="source=digits"):  # no such row: an error, not a blank
        render(BLOCKS, _tables(), context=context)
    tables = _tables() | {"slopes": [SLOPE | {"source": "digits"}]}
    assert render(BLOCKS, tables, context=context) == "A\nB −0.50\nD\n"


def test_glob_needs_and_strict_contexts(tmp_path):
    template = "<!-- needs: simulate-lira-* -->\nL\n<!-- end -->\n"
    assert render(template, {}, context=RunContext(frozenset({"simulate-lira-16"}))) == "L\n"
    assert render(template, {}, context=RunContext(frozenset({"simulate-oracle"}))) == ""
    with pytest.raises(ValueError, match="needs simulate-lira-"):
        render(template, {}, context=RunContext(frozenset(), strict=True))


def test_an_empty_table_still_knows_its_columns(tmp_path):
    (tmp_path / "film.csv").write_text("attack,fpr,head_slope\n")
    tables = load_tables(tmp_path)
    with pytest.raises(ValueError, match="no row of table film"):
        render("{{film: fpr=0.1 | head_slope}}", tables)
    with pytest.raises(ValueError, match="no column 'film_slop'"):
        render("{{film: fpr=0.1 | film_slop}}", tables)


def test_render_paper_is_strict_for_the_full_profile_unless_a_stage_was_skipped(
    tmp_path, monkeypatch
):
    (tmp_path / "tables").mkdir()
    template = tmp_path / "template.md"
    template.write_text("{{profile}}\n<!-- needs: mechanism -->\nM\n<!-- end -->\n")
    monkeypatch.setattr("mialaw.paper.render.TEMPLATE", template)
    path = render_paper(tmp_path, {"profile": "smoke"}, stages={"theory"})
    assert path.read_text() == "smoke\n"
    with pytest.raises(ValueError, match="needs mechanism"):
        render_paper(tmp_path, {"profile": "full"}, stages={"theory"})
    notes = ("mechanism skipped: it needs empirical-x",)
    text = render_paper(tmp_path, {"profile": "full"}, stages={"theory"}, notes=notes).read_text()
    assert "Not computed in this run: mechanism skipped" in text


def test_the_template_resolves_fully_on_the_committed_tables():
    """The full profile renders from the committed stages and tables."""
    full = PROFILES["full"]
    results = load_stage_results(PAPER, full)
    text = paper_text(results, full, PAPER, out_name="paper")
    assert "{{" not in text and "not in this run" not in text and "<!--" not in text
    # Only a run of the profile that has no stored result is reported absent (none, once the
    # full profile has run to the end).
    absent = [e.label for e in full.empirical if f"empirical-{e.label}" not in results]
    assert text.count("this run holds no result for it") == len(absent)
    for label in absent:
        assert f"* empirical-{label} skipped" in text
    assert "`mialaw reproduce --profile full --out paper`" in text


def test_derivation_extra_counts_the_verified_steps():
    derivation = json.loads((PAPER / "stages" / "derive.json").read_text())["result"]
    extra = derivation_extra(derivation)
    steps = derivation["steps"]
    assert (
        extra["derivation_tally"]
        == f"{sum(s['verified'] for s in steps)} of {len(steps)} steps verified"
    )
    assert derivation_extra(None) == {}


def test_a_link_to_a_figure_the_run_did_not_draw(tmp_path, monkeypatch):
    """Never a dangling figure link: a figure a run may not draw sits in a block that needs it;
    an unguarded link to a missing file is an error in every profile."""
    (tmp_path / "tables").mkdir()
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "law.png").write_bytes(b"png")
    template = tmp_path / "template.md"
    template.write_text(
        "![Law](figures/law.png)\n<!-- needs: figures/bridge.png -->\n"
        "![Bridge](figures/bridge.png)\n<!-- end -->\n"
    )
    monkeypatch.setattr("mialaw.paper.render.TEMPLATE", template)
    text = render_paper(tmp_path, {"profile": "quick"}, stages=set()).read_text()
    assert text == "![Law](figures/law.png)\n"
    with pytest.raises(ValueError, match="figures/bridge.png"):
        render_paper(tmp_path, {"profile": "full"}, stages=set())
    template.write_text("![Bridge](figures/bridge.png)\n")
    with pytest.raises(ValueError, match="links figures the run did not write"):
        render_paper(tmp_path, {"profile": "quick"}, stages=set())
