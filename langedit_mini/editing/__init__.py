"""Editing a model: one interface for every method, its registry, each method's settings and defaults.

config     EditConfig: the method, the edited layers, the method's own settings
registry   the registered methods (METHODS is derived from it)
methods    the closed-form methods (MEMIT, AlphaEdit, LangEdit published and exact) and their settings
ft         FT, constrained fine-tuning, the gradient baseline
session    EditingSession: sequential batches, records, rollback, resuming
defaults   default_config: the reference values and the pocket model's tuned ones
"""

from langedit_mini.editing.config import EditConfig
from langedit_mini.editing.defaults import default_config
from langedit_mini.editing.registry import CLOSED_FORM_METHODS, METHODS, NULL_SPACE_METHODS, closed_form, get_method
from langedit_mini.editing.session import BatchRecord, EditingSession, apply_records, check_batch

__all__ = [
    "EditConfig",
    "default_config",
    "CLOSED_FORM_METHODS",
    "NULL_SPACE_METHODS",
    "METHODS",
    "closed_form",
    "get_method",
    "BatchRecord",
    "EditingSession",
    "apply_records",
    "check_batch",
]
