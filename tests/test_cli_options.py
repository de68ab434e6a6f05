"""The shared command-line options (``mialaw.paper.cli_options``): the argparse types, and one
option read alike by every parser that adds it."""

import argparse

import pytest

from mialaw.paper.cli_options import (
    DEFAULT_FPR,
    add_classes,
    add_fpr,
    add_json,
    add_out,
    add_shots,
    key_value,
    whole_number,
)


@pytest.mark.parametrize(
    "text, value",
    [
        ("7", 7),
        ("1e6", 10**6),
        ("2.0", 2),
        ("-3", -3),
        ("123456789012345678901", 123456789012345678901),
    ],
)
def test_whole_numbers_in_integer_or_float_notation(text, value):
    got = whole_number(text)
    assert type(got) is int and got == value


@pytest.mark.parametrize("text", ["2.5", "nan", "inf", "1e400", "ten", ""])
def test_other_text_is_not_a_whole_number(text):
    with pytest.raises(argparse.ArgumentTypeError, match="a whole number is needed"):
        whole_number(text)


def test_key_value_reads_int_then_float_then_text():
    assert key_value("dim=32") == ("dim", 32)
    assert key_value("lr=1e-3") == ("lr", 0.001)
    assert key_value("name=a=b") == ("name", "a=b")
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        key_value("dim")


def test_the_shared_options_parse_alike():
    parser = argparse.ArgumentParser()
    add_shots(parser, required=True)
    add_classes(parser, many=False, default=2)
    add_fpr(parser, default=DEFAULT_FPR)
    add_out(parser)
    add_json(parser)
    args = parser.parse_args(["--shots", "1", "4", "--out", "d"])
    assert args.shots == [1, 4] and args.classes == 2 and args.out == "d" and not args.json
    assert tuple(args.fpr) == (0.1, 0.01, 0.001)
    assert parser.parse_args(["--shots", "1", "--fpr", "0.2"]).fpr == [0.2]
    with pytest.raises(SystemExit):
        parser.parse_args(["--shots", "1.5"])  # int shots by default
