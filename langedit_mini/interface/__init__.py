"""For people who edit their own models: one call (``api.edit``) and the command line (``cli``).

api   edit(model, tokenizer, requests, method=..., **settings) -> EditReport
cli   ``langedit-mini edit`` and ``langedit-mini sequence``
"""

from langedit_mini.interface.api import EditReport, edit

__all__ = ["EditReport", "edit"]
