"""Checked claims for the notebooks: a claim that is false stops the chapter.

``require`` prints one stable line (for strict nbval comparison) when the claim holds and
raises ``AssertionError`` with the measured value when it does not, so a chapter whose
guarantee breaks fails the book build instead of printing a wrong sentence.
"""

from __future__ import annotations


def require(claim: str, value: float, bound: float, *, at_least: bool = False) -> None:
    """Check ``value <= bound`` (or ``value >= bound`` when ``at_least``) and print the claim.

    The printed line names the claim and the bound, not the measured value, so that it is the
    same on every machine. Nothing is returned, so a cell ending in ``require`` shows no ``Out[]``.
    """
    value = float(value)
    holds = value >= bound if at_least else value <= bound
    relation = ">=" if at_least else "<="
    if not holds:
        raise AssertionError(f"claim failed: {claim}: measured {value:.3e}, expected {relation} {bound:.1e}")
    print(f"holds: {claim} ({relation} {bound:g})")
