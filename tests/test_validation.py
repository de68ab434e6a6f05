"""The shared checks of the public surface (``mialaw.theory.validation``): what passes, in which
form, and what is refused with a message naming the setting and the rule."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mialaw.theory.validation import check_choice, check_int, check_ints, is_int


@pytest.mark.parametrize("value", [0, 7, -3, np.int8(5), np.uint64(9), np.int64(-2)])
def test_integers_pass_as_python_ints(value):
    out = check_int("n", value)
    assert type(out) is int and out == int(value)


@pytest.mark.parametrize("value", [True, False, 2.0, 2.5, "3", None, np.float64(4.0), [1]])
def test_non_integers_are_refused_with_the_setting_named(value):
    with pytest.raises(ValueError, match=r"^n must be an integer; got "):
        check_int("n", value)
    assert not is_int(value)


@given(st.integers(-50, 50), st.integers(-20, 20), st.integers(0, 20))
def test_bounds_are_inclusive(value, low, width):
    high = low + width
    inside = low <= value <= high  # the rule, written independently of the check
    if inside:
        assert check_int("k", value, low, high) == value
    else:
        with pytest.raises(ValueError, match=rf"k must be an integer in \[{low}, {high}\]"):
            check_int("k", value, low, high)


def test_the_bounds_themselves_pass():
    assert check_int("k", 3, 3, 5) == 3 and check_int("k", 5, 3, 5) == 5
    assert check_ints("k", [3, 5], 3, 5) == (3, 5)
    for outside in (2, 6):
        with pytest.raises(ValueError, match=r"k must be an integer in \[3, 5\]"):
            check_int("k", outside, 3, 5)


def test_one_sided_bounds_and_the_reason_are_in_the_message():
    with pytest.raises(ValueError, match=r"shadows must be an integer >= 4 \(even\); got 2"):
        check_int("shadows", 2, 4, why=" (even)")
    with pytest.raises(ValueError, match=r"seed must be an integer <= 9; got 10"):
        check_int("seed", 10, high=9)


def test_integer_sets_are_sorted_distinct_tuples():
    assert check_ints("shots", [16, np.int64(1), 4], low=1) == (1, 4, 16)
    assert check_ints("shots", np.array([3, 2]), low=1) == (2, 3)
    assert check_ints("classes", 5, low=2) == (5,)
    assert all(type(v) is int for v in check_ints("shots", np.arange(1, 4), low=1))


@pytest.mark.parametrize(
    "values, message",
    [
        ([], "shots must not be empty"),
        ([1, 1], "shots must not repeat values"),
        ([1, 0], r"shots must be integers >= 1"),
        ([1, 2.0], r"shots must be integers >= 1"),
        ([True], r"shots must be integers >= 1"),
        ("12", r"shots must be integers >= 1"),
        (None, r"shots must be integers >= 1"),
    ],
)
def test_bad_integer_sets_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        check_ints("shots", values, low=1)


def test_choices_are_exact():
    assert check_choice("attack", "lira", ("lira", "rmia")) == "lira"
    for bad in ("LIRA", "lir", None, 1, np.array(["lira"])):
        with pytest.raises(ValueError, match=r"attack must be one of lira, rmia; got "):
            check_choice("attack", bad, ("lira", "rmia"))
    # True == 1 in Python; a choice among integers still refuses the bool.
    with pytest.raises(ValueError, match="must be one of 1, 2"):
        check_choice("order", True, (1, 2))
