"""The registry of editing methods: the one place that knows which methods exist.

``METHODS`` (the names, in the order tables show them) is derived from it; code elsewhere asks a
method object (``get_method(name)``) what it needs and how it writes, instead of comparing names.
"""

from __future__ import annotations

from langedit_mini.editing.ft import FineTuning
from langedit_mini.editing.methods import CLOSED_FORM, EditingMethod

REGISTRY: dict[str, EditingMethod] = {method.name: method for method in (FineTuning(), *CLOSED_FORM)}

#: every method's name: FT, MEMIT, AlphaEdit, LangEdit-published, LangEdit-exact
METHODS = tuple(REGISTRY)

#: the methods with a closed-form update per layer (every method but the gradient baseline)
CLOSED_FORM_METHODS = tuple(name for name, method in REGISTRY.items() if method.closed_form)

#: the methods whose update is projected onto a null space (AlphaEdit, both LangEdit forms)
NULL_SPACE_METHODS = tuple(name for name, method in REGISTRY.items() if method.null_space)


def get_method(name: str) -> EditingMethod:
    """The registered method called ``name``; a ValueError lists the known ones otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


def closed_form(methods) -> list[str]:
    """The closed-form methods among ``methods``, in their order."""
    return [name for name in methods if get_method(name).closed_form]
