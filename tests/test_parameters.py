"""The chapters' parameter checks and claims: what a bad value is told, and claims as data."""

import numpy as np
import pytest

from langedit_mini.study.claims import Claim, ClaimFailed, require
from langedit_mini.study.parameters import (
    FRACTION,
    INT,
    METHOD_LIST,
    OPTIONAL_POSITIVE_NUMBER,
    POSITIVE_INT,
    check_parameters,
    language_list,
    list_of,
    one_of,
    optional,
)


@pytest.mark.parametrize(
    "rule, good, bad, message",
    [
        (POSITIVE_INT, 3, 0, "parameter x must be a positive integer, got 0"),
        (POSITIVE_INT, 3, True, "parameter x must be a positive integer, got True"),
        (INT, -2, 1.5, "parameter x must be an integer, got 1.5"),
        (OPTIONAL_POSITIVE_NUMBER, None, -1, "parameter x must be None or a positive number, got -1"),
        (FRACTION, 0.5, 1.0, r"parameter x must be a number in \(0, 1\), got 1.0"),
        (one_of("delta", "mt"), "mt", "blocks", "parameter x must be one of 'delta', 'mt', got 'blocks'"),
        (list_of(POSITIVE_INT, at_least=2), [1, 2], [1], "must be a list of at least 2 items, each a positive integer"),
        (optional(list_of(INT)), None, "0", "parameter x must be None or a list of at least 1 item"),
        (METHOD_LIST, ["FT"], ["ROME"], "must be a non-empty list drawn from FT, MEMIT, AlphaEdit"),
        (language_list(2), ["en", "de"], ["en"], "parameter x must be a list of at least 2 language codes"),
    ],
)
def test_each_rule_accepts_good_values_and_names_the_bad_one(rule, good, bad, message):
    check_parameters({"x": good}, x=rule)
    with pytest.raises(ValueError, match=message):
        check_parameters({"x": bad}, x=rule)


def test_an_unknown_language_and_a_missing_parameter_are_named():
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        check_parameters({"languages": ["en", "xx"]}, languages=language_list())
    with pytest.raises(ValueError, match="parameter seed is missing"):
        check_parameters({}, seed=INT)


def test_a_claim_is_data_and_require_prints_or_raises(capsys):
    claim = Claim("leak", np.float64(1e-9), 1e-8)
    assert claim.holds and isinstance(claim.value, float) and claim.as_dict()["holds"] is True
    require(claim)
    require("writes", 0.7, 0.5, at_least=True)
    assert capsys.readouterr().out == "holds: leak (<= 1e-08)\nholds: writes (>= 0.5)\n"
    with pytest.raises(ClaimFailed, match="claim failed: writes: measured 3.000e-01, expected >= 5.0e-01") as caught:
        require("writes", 0.3, 0.5, at_least=True)
    assert caught.value.claim == Claim("writes", 0.3, 0.5, True) and not caught.value.claim.holds
