"""The math, with torch alone: input checks and the dtype policy, projectors, the closed-form updates.

    validation  input checks, the dtype policy (solves in float64 unless float32 is asked for),
                ProjectionError and CapacityError
    projection  NullSpaceProjector (AlphaEdit's P) and ProtectedBasis (LangEdit's exact subspace)
    updates     the closed-form updates of MEMIT, AlphaEdit and LangEdit, and their sequential rules
    synthetic   synthetic keys with a decaying spectrum, for checking the guarantee without a model

Nothing here imports a model, a tokenizer or another layer of the package.
"""

from langedit_mini.core.projection import NullSpaceProjector, ProtectedBasis, projector_from_span, tau_for_leftover
from langedit_mini.core.updates import (
    AlphaEditRule,
    LangEditExactRule,
    LangEditPublishedRule,
    MemitRule,
    UpdateRule,
    alphaedit_delta,
    alphaedit_delta_reference,
    interference_matrix,
    memit_delta,
    projected_ridge_delta,
)
from langedit_mini.core.validation import SOLVE_DTYPE, CapacityError, ProjectionError

__all__ = [
    "NullSpaceProjector",
    "ProtectedBasis",
    "projector_from_span",
    "tau_for_leftover",
    "AlphaEditRule",
    "LangEditExactRule",
    "LangEditPublishedRule",
    "MemitRule",
    "UpdateRule",
    "alphaedit_delta",
    "alphaedit_delta_reference",
    "interference_matrix",
    "memit_delta",
    "projected_ridge_delta",
    "SOLVE_DTYPE",
    "CapacityError",
    "ProjectionError",
]
