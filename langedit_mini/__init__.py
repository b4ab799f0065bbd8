"""langedit-mini: a small, readable study of LangEdit, null-space constrained multilingual knowledge editing.

Docstrings cite "reference, section N": the book's technical reference, ``book/reference.md``.

Modules:
    validation  input checks, the dtype policy, ProjectionError and CapacityError
    projection  NullSpaceProjector (AlphaEdit's P) and ProtectedBasis (LangEdit's exact subspace)
    updates     the closed-form updates of MEMIT, AlphaEdit and LangEdit, and their sequential rules
    synthetic   synthetic keys with a decaying spectrum, for checking the guarantee without a model
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

__version__ = "0.1.0"

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
    "__version__",
]
