"""Checks of a chapter's papermill parameters: one call per chapter instead of hand-written tests.

    check_parameters(globals(), d_k=POSITIVE_INT, tau=POSITIVE_NUMBER, languages=language_list(2))

Each rule states what a parameter must be; a value that is not raises a ValueError that names the
parameter, says what was expected and shows what was given ("parameter batch_size must be a
positive integer, got 0"), before the chapter computes anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from langedit_mini.data.languages import check_language
from langedit_mini.editing.registry import METHODS


@dataclass(frozen=True)
class Rule:
    """What a parameter must be: a description for the message, and the test."""

    description: str
    test: Callable[[object], bool]

    def check(self, name: str, value) -> None:
        if not self.test(value):
            raise ValueError(f"parameter {name} must be {self.description}, got {value!r}")


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


POSITIVE_INT = Rule("a positive integer", lambda v: _integer(v) and v >= 1)
INT = Rule("an integer", _integer)
POSITIVE_NUMBER = Rule("a positive number", lambda v: _number(v) and v > 0)
OPTIONAL_POSITIVE_INT = Rule("None or a positive integer", lambda v: v is None or (_integer(v) and v >= 1))
OPTIONAL_POSITIVE_NUMBER = Rule("None or a positive number", lambda v: v is None or (_number(v) and v > 0))
FRACTION = Rule("a number in (0, 1)", lambda v: _number(v) and 0 < v < 1)


def one_of(*choices) -> Rule:
    return Rule(f"one of {', '.join(map(repr, choices))}", lambda v: v in choices)


def list_of(rule: Rule, *, at_least: int = 1) -> Rule:
    """A list of at least ``at_least`` items, each passing ``rule``."""
    plural = "item" if at_least == 1 else "items"
    return Rule(
        f"a list of at least {at_least} {plural}, each {rule.description}",
        lambda v: isinstance(v, list) and len(v) >= at_least and all(rule.test(item) for item in v),
    )


def optional(rule: Rule) -> Rule:
    """None, or what ``rule`` accepts."""
    return Rule(f"None or {rule.description}", lambda v: v is None or rule.test(v))


def _languages(at_least: int):
    def test(value) -> bool:
        if not isinstance(value, list) or len(value) < at_least:
            return False
        for language in value:
            check_language(language)  # an unknown code gets its own message, naming it
        return True

    return test


def language_list(at_least: int = 1) -> Rule:
    return Rule(f"a list of at least {at_least} language codes", _languages(at_least))


METHOD_LIST = Rule(
    f"a non-empty list drawn from {', '.join(METHODS)}",
    lambda v: isinstance(v, list) and bool(v) and all(m in METHODS for m in v),
)
LANGUAGE = Rule("a language code", lambda v: check_language(v) == v)


def check_parameters(values: dict, **rules: Rule) -> None:
    """Check ``values[name]`` (a chapter's ``globals()``) against each rule; the first failure raises."""
    for name, rule in rules.items():
        if name not in values:
            raise ValueError(f"parameter {name} is missing: the chapter's parameters cell must define it")
        rule.check(name, values[name])
