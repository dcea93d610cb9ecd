"""The Flex Template's parameter regexes accept exactly what the job accepts.

Dataflow checks a launch's parameters against deploy/metadata.json's regexes before the launcher VM
starts; the job checks them again (`parse_template_args`) on that VM. The regexes are generated from
each option's minimum, maximum and choices (`JobOption.regex`); here they are checked against an
independent reading of the bounds: a value is valid when it is written as plain digits (with a
decimal point for a rate) and lies within the bounds, compared exactly (Decimal). Hypothesis draws
numbers inside and outside the bounds and strings of digits, signs, points and exponents; small
ranges are checked exhaustively; grep -E checks that the regexes mean the same in POSIX egrep, the
dialect Google documents for template regexes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.job.options import JOB_OPTIONS, OPTIONS, decimal_patterns, integer_patterns, parse_template_args

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = [option for option in JOB_OPTIONS if option.type in (int, float)]
DIGITS = set("0123456789")
REQUIRED = ["--input=gs://b/in", "--output=gs://b/out", "--model=gs://b/m"]


def plain_number(text: str, fraction: bool) -> Decimal | None:
    """The value of `text` when it is written as digits without sign, exponent or leading zero (and,
    with `fraction`, an optional decimal point followed by digits); None otherwise."""
    whole, point, part = text.partition(".")
    if point and not (fraction and part and set(part) <= DIGITS):
        return None
    if whole and not (set(whole) <= DIGITS and (whole == "0" or not whole.startswith("0"))):
        return None
    if not whole and not point:
        return None
    return Decimal(text)


def valid(option, text: str) -> bool:
    """The independent reading of what the option takes: plain digits, within its bounds."""
    value = plain_number(text, option.type is float)
    if value is None:
        return False
    low = Decimal(0) if option.minimum is None else Decimal(str(option.minimum))
    return value >= low and (option.maximum is None or value <= Decimal(str(option.maximum)))


def accepted(option, text: str) -> bool:
    """Does the entry point's own parser take `text` for this option?"""
    try:
        option.from_text(text)
    except ValueError:
        return False
    return True


def check(option, text: str) -> None:
    expected = valid(option, text)
    assert bool(re.fullmatch(option.regex(), text)) == expected, (option.name, text, option.regex())
    assert accepted(option, text) == expected, (option.name, text)
    if expected:
        assert option.from_text(text) == option.type(text)


@pytest.mark.parametrize("option", NUMBERS, ids=lambda option: option.name)
@settings(max_examples=400, deadline=None)
@given(number=st.integers(min_value=-(10**15), max_value=10**15) | st.integers(min_value=-3, max_value=12))
@pytest.mark.slow
def test_whole_numbers_inside_the_bounds_and_only_those(option, number):
    check(option, str(number))


@pytest.mark.parametrize("option", NUMBERS, ids=lambda option: option.name)
@settings(max_examples=400, deadline=None)
@given(
    number=st.floats(min_value=-3, max_value=5, allow_nan=False) | st.floats(allow_nan=True, allow_infinity=True),
    places=st.integers(min_value=0, max_value=8),
)
@example(number=1.0, places=3).via("the upper bound with zeros after the point")
@example(number=1.0000001, places=7).via("just above the upper bound")
@example(number=0.0, places=0).via("zero")
@pytest.mark.slow
def test_decimals_inside_the_bounds_and_only_those(option, number, places):
    check(option, repr(number))  # also 1e-05, inf, nan: refused by both
    if number == number and abs(number) != float("inf"):
        check(option, f"{number:.{places}f}")


@pytest.mark.parametrize("option", NUMBERS, ids=lambda option: option.name)
@settings(max_examples=600, deadline=None)
@given(text=st.text(alphabet="0123456789.-+e_ x", max_size=8))
@example(text="").via("empty")
@example(text="00").via("a leading zero")
@example(text=".5").via("no integer part")
@example(text="1.").via("a point with nothing after it")
@example(text="1_000").via("Python's digit separators")
@example(text=" 1").via("a space")
@pytest.mark.slow
def test_any_string_is_taken_exactly_when_it_is_a_plain_number_in_bounds(option, text):
    check(option, text)


def test_the_regexes_the_template_ships():
    """The metadata the template is built from holds these regexes; they refuse what the job refuses."""
    metadata = {p["name"]: p for p in json.loads((ROOT / "deploy" / "metadata.json").read_text())["parameters"]}
    shipped = {name: metadata[name]["regexes"] for name in metadata if "regexes" in metadata[name]}
    assert shipped == {option.name: [option.regex()] for option in JOB_OPTIONS if option.regex()}
    refused = {"batch_size": "0", "explain_steps": "1", "max_error_rate": "1.5", "threads": "-1", "engine": "fast"}
    for name, value in refused.items():
        assert not re.fullmatch(metadata[name]["regexes"][0], value), (name, value)
    for option in NUMBERS:  # every default passes its own regex
        if option.default is not None:
            assert re.fullmatch(metadata[option.name]["regexes"][0], str(option.default)), option.name


@pytest.mark.skipif(shutil.which("grep") is None, reason="needs grep")
def test_the_regexes_mean_the_same_in_posix_egrep():
    """Google documents template regexes as POSIX egrep: grep -E takes the same values as Python's re."""
    values = ["0", "1", "2", "9", "10", "01", "-1", "+1", "1.5", "1.0", "1.00", "0.05", ".5", "1.", "1e-1", "", "x"]
    values += [str(n) for n in range(0, 130, 7)] + ["12345678901234567890"]
    for option in [*NUMBERS, OPTIONS["engine"], OPTIONS["explain_method"], OPTIONS["overwrite"]]:
        words = [*values, *option.choices]
        done = subprocess.run(
            ["grep", "-E", "-x", "-e", option.regex()], input="\n".join(words) + "\n", capture_output=True, text=True
        )
        assert done.returncode in (0, 1), done.stderr
        egrep = set(done.stdout.splitlines())
        python = {word for word in words if re.fullmatch(option.regex(), word)}
        assert egrep == python, option.name


def integer_regex(low: int, high: int | None) -> re.Pattern:
    return re.compile(f"({'|'.join(integer_patterns(low, high))})") if integer_patterns(low, high) else re.compile("$^")


def test_integer_ranges_exhaustively():
    """Every range with bounds up to 60 (and no upper bound), against every number up to 1,200."""
    for low in range(61):
        for high in [None, *range(max(low - 1, 0), 61)]:
            pattern = integer_regex(low, high)
            for value in range(1201):
                inside = low <= value and (high is None or value <= high)
                assert bool(pattern.fullmatch(str(value))) == inside, (low, high, value, pattern.pattern)


@settings(max_examples=300, deadline=None)
@given(
    low=st.integers(min_value=0, max_value=10**9),
    span=st.none() | st.integers(min_value=-1, max_value=10**10),
    values=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=20),
)
def test_integer_ranges_of_any_size(low, span, values):
    high = None if span is None else low + span
    pattern = integer_regex(low, high)
    for value in [*values, low, max(low - 1, 0), low + 1, *([] if high is None else [high, high + 1])]:
        inside = low <= value and (high is None or value <= high)
        assert bool(pattern.fullmatch(str(value))) == inside, (low, high, value, pattern.pattern)
    assert not pattern.fullmatch("0" + str(low))  # no leading zeros


@pytest.mark.parametrize(("low", "high"), [(0, 1), (0, None), (1, 3), (2, 2), (0, 0), (3, 12)])
def test_decimal_ranges(low, high):
    pattern = re.compile(f"({'|'.join(decimal_patterns(low, high))})")
    for whole in range(0, 16):
        for fraction in ["", ".0", ".00", ".5", ".25", ".001", ".999"]:
            text = f"{whole}{fraction}"
            inside = low <= Decimal(text) and (high is None or Decimal(text) <= high)
            assert bool(pattern.fullmatch(text)) == inside, (low, high, text)
    assert bool(pattern.fullmatch(".5")) == (low == 0 and high != 0)


def test_the_entry_points_parser_refuses_them_too():
    """parse_template_args exits 2; the one-line message is checked on the real entry point in test_dataflow."""
    for parameter in ("--batch_size=0", "--explain_steps=1", "--max_error_rate=1.5", "--max_error_rate=nan"):
        with pytest.raises(SystemExit) as stopped:
            parse_template_args([*REQUIRED, parameter])
        assert stopped.value.code == 2, parameter
    values, _ = parse_template_args([*REQUIRED, "--batch_size=1", "--explain_steps=2", "--max_error_rate=1.0"])
    assert (values["batch_size"], values["explain_steps"], values["max_error_rate"]) == (1, 2, 1.0)
