"""paper.md's placeholders: a placeholder that resolves to nothing is an error, never "n/a"."""

import json
from pathlib import Path

import pytest

from mialaw.paper.outputs import paper_extra
from mialaw.paper.render import (
    NOT_RUN,
    NULL,
    TEMPLATE,
    load_tables,
    lookup,
    render,
    render_paper,
    table_extra,
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


def test_not_strict_marks_what_the_profile_did_not_run_but_still_rejects_template_mistakes():
    template = "{{slopes: source=digits; fpr=0.1 | slope}} {{film: fpr=0.1 | slope}} {{derivation}}"
    assert render(template, _tables(), strict=False) == " ".join([NOT_RUN] * 3)
    for mistake in ("{{slopes: source=sim; fpr=0.1 | slop}}", "{{slopes: source=twice | slope}}"):
        with pytest.raises(ValueError, match="do not resolve"):
            render(mistake, _tables(), strict=False)


def test_an_empty_table_still_knows_its_columns(tmp_path):
    (tmp_path / "film.csv").write_text("attack,fpr,head_slope\n")
    tables = load_tables(tmp_path)
    assert render("{{film: fpr=0.1 | head_slope}}", tables, strict=False) == NOT_RUN
    with pytest.raises(ValueError, match="no column 'film_slop'"):
        render("{{film: fpr=0.1 | film_slop}}", tables, strict=False)


def test_render_paper_is_strict_for_the_full_profile_only(tmp_path, monkeypatch):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "slopes.csv").write_text("source,fpr,slope\nsim,0.1,-0.5\n")
    template = tmp_path / "template.md"
    template.write_text("{{profile}}: {{slopes: source=digits; fpr=0.1 | slope}}\n")
    monkeypatch.setattr("mialaw.paper.render.TEMPLATE", template)
    path = render_paper(tmp_path, {"profile": "smoke"})
    assert path.read_text() == f"smoke: {NOT_RUN}\n"
    with pytest.raises(ValueError, match="source=digits"):
        render_paper(tmp_path, {"profile": "full"})


def test_the_template_resolves_fully_on_the_committed_tables():
    derivation = json.loads((PAPER / "stages" / "derive.json").read_text())["result"]
    extra = table_extra(PAPER) | paper_extra("full", derivation)
    text = render(TEMPLATE.read_text(), load_tables(PAPER / "tables"), extra, strict=True)
    assert "{{" not in text and NOT_RUN not in text


def test_a_link_to_a_figure_the_run_did_not_draw(tmp_path, monkeypatch):
    """Never a dangling figure link: a sentence in a smaller profile, an error in the full one."""
    (tmp_path / "tables").mkdir()
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "law.png").write_bytes(b"png")
    template = tmp_path / "template.md"
    template.write_text("![Law](figures/law.png)\n![Bridge](figures/bridge.png)\n")
    monkeypatch.setattr("mialaw.paper.render.TEMPLATE", template)
    text = render_paper(tmp_path, {"profile": "quick"}).read_text()
    assert "![Law](figures/law.png)" in text
    assert "figures/bridge.png" not in text and "Bridge: not drawn by the quick profile" in text
    with pytest.raises(ValueError, match="bridge.png"):
        render_paper(tmp_path, {"profile": "full"})
