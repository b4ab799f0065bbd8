"""langedit-mini: a small, readable study of LangEdit, null-space constrained multilingual knowledge editing.

Docstrings cite "reference, section N": the book's technical reference, ``book/reference.md``.

The package's folders are its import layers; each imports only from those listed before it:

    core        the math, torch alone: projectors, the closed-form updates, input checks, synthetic keys
    data        edit requests and their loaders, languages, schedules, corpora, downloads, caches
    pocket      the bundled world: its model, facts and probes (regeneration code in pocket/build)
    model       architecture access, keys, target values, preserved-key statistics, tracing, hub models
    editing     the method registry, each method's settings, the editing session, the defaults
    evaluation  token scoring, the edit metrics, general ability
    study       a study on any model: running it, its results on disk, provenance, statistics, verdicts
    interface   one call to edit a model (``edit``), the command line ``langedit-mini``, the scripts' options

The core's classes and functions are importable from here; the one-call API from
``langedit_mini.interface`` (``from langedit_mini.interface import edit``).
"""

from langedit_mini import core
from langedit_mini.core import *  # noqa: F403 - the core's classes and functions, as listed in core.__all__

__version__ = "0.1.0"

__all__ = [*core.__all__, "__version__"]
