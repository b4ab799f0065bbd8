"""langedit-mini: a small, readable study of LangEdit, null-space constrained multilingual knowledge editing.

Docstrings cite "reference, section N": the book's technical reference, ``book/reference.md``.

The package's folders are its import layers; each imports only from those listed before it:

    core        the math, torch alone: projectors, the closed-form updates, input checks, synthetic keys
    data        edit requests and their loaders, languages, schedules, corpora, downloads, caches
    pocket      the bundled world: its model, facts and probes (regeneration code in pocket/build)
    model       architecture access, keys, target values, preserved-key statistics, tracing, hub models
    editing     the method registry, each method's settings, the editing session, the defaults
    evaluation  token scoring, the edit metrics, general ability
    study       sequential runs, the study, its results on disk, provenance, claims

The core's classes and functions are importable from here.
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
