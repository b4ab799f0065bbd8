"""Checked claims as data: what is claimed, the measured value, the bound, and whether it holds.

A ``Claim`` is computed by package code (``study.experiment.study_claims``) and then used three
ways: a chapter ``require``s it (it prints one stable line when it holds and raises when it does
not, so a chapter whose guarantee breaks fails the book build instead of printing a wrong
sentence); a committed run records it with its numbers (``study.runner.run_part``); tests read
its fields. Nothing is recovered by parsing a message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Claim:
    claim: str
    value: float
    bound: float
    at_least: bool = False  # the claim is value >= bound (else value <= bound)

    def __post_init__(self):  # plain floats, whatever measured them (numpy, torch): records are JSON
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "bound", float(self.bound))

    @property
    def holds(self) -> bool:
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    @property
    def relation(self) -> str:
        return ">=" if self.at_least else "<="

    @property
    def line(self) -> str:
        """What a chapter prints when it holds: the claim and its bound, not the value (the same on every machine)."""
        return f"holds: {self.claim} ({self.relation} {self.bound:g})"

    @property
    def failure(self) -> str:
        return f"claim failed: {self.claim}: measured {self.value:.3e}, expected {self.relation} {self.bound:.1e}"

    def as_dict(self) -> dict:
        return asdict(self) | {"holds": self.holds}


class ClaimFailed(AssertionError):
    """A claim that did not hold; ``.claim`` is the Claim."""

    def __init__(self, claim: Claim):
        super().__init__(claim.failure)
        self.claim = claim


def require(
    claim: str | Claim, value: float | None = None, bound: float | None = None, *, at_least: bool = False
) -> None:
    """Check a claim (a ``Claim``, or its text, value and bound) and print its line, or raise ``ClaimFailed``.

    Nothing is returned, so a cell ending in ``require`` shows no ``Out[]``.
    """
    if not isinstance(claim, Claim):
        claim = Claim(claim, value, bound, at_least)
    if not claim.holds:
        raise ClaimFailed(claim)
    print(claim.line)
