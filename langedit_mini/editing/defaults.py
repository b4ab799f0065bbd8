"""Default editing hyperparameters per model: the reference values, and the pocket model's tuned ones.

``default_config(method, model_name)`` returns an ``EditConfig``. Reference values follow the
MEMIT/AlphaEdit/LangEdit releases (``book/reference.md``, section 3): edited layers, ``v_lr``, 20-25 value steps,
``kl_factor`` 0.0625, ``weight_decay`` 0.5, clamp 0.75, MEMIT's ``mom2_update_weight`` 15000,
AlphaEdit's ``tau`` 2e-2 and ``alpha`` 10. The pocket model's values were tuned on it (see the
editing chapter) and use a leftover-fraction cut, because its key spectrum has no gap at 2e-2.
"""

from __future__ import annotations

from dataclasses import fields

from langedit_mini.editing.config import EditConfig
from langedit_mini.editing.methods import settings_with
from langedit_mini.editing.registry import REGISTRY, get_method
from langedit_mini.model.statistics import DEFAULT_CACHE as STATISTICS_CACHE
from langedit_mini.model.statistics import key_second_moments
from langedit_mini.model.values import ValueSettings
from langedit_mini.pocket import (
    POCKET_EDIT_LAYERS,
    POCKET_LEFTOVER_FRACTION,
    POCKET_WIDE_EDIT_LAYERS,
    covariance_texts,
    load_pocket_model,
)

_REFERENCE = {
    # name: (layers, value settings, mom2_weight)
    "llama-3-8b": ((4, 5, 6, 7, 8), ValueSettings(learning_rate=0.1, steps=25), 15000.0),
    "qwen2.5-7b": ((4, 5, 6, 7, 8), ValueSettings(learning_rate=0.1, steps=25), 15000.0),
    # Not in the releases: the smaller Qwen2.5 models for a free Colab GPU, with 7B's early-layer band
    # (layers 4-8 of 24 / 28) and values; a starting point, not tuned.
    "qwen2.5-0.5b": ((4, 5, 6, 7, 8), ValueSettings(learning_rate=0.1, steps=25), 15000.0),
    "qwen2.5-1.5b": ((4, 5, 6, 7, 8), ValueSettings(learning_rate=0.1, steps=25), 15000.0),
    "gpt-j-6b": ((3, 4, 5, 6, 7, 8), ValueSettings(learning_rate=0.5, steps=25), 15000.0),
    "gpt2-xl": ((13, 14, 15, 16, 17), ValueSettings(learning_rate=0.5, steps=20), 20000.0),
}

# Each model's defaults: the fields every method shares (layers, target values) and the method
# settings, each of which applies to the methods that have it (mom2_weight to MEMIT; the cut and
# alpha to AlphaEdit and both LangEdit forms; steps to FT).

#: The pocket model (4 layers, d_k = 1024), tuned in this project on one batch of 100 English edits
#: of distinct subjects (scripts/batch_of_100.py; the sweep is in the closing note of issue 4): one
#: edited layer (see ``pocket.POCKET_EDIT_LAYERS``), a larger value step and clamp than the reference
#: because its residual stream is small relative to the change an answer needs, and strong
#: regularisers: with mom2_weight 1 / alpha 1 a batch of 100 broke unrelated facts (locality 0.3),
#: with 300 both reliability and locality are near 0.9. The null-space cut discards 10% of trace(C0).
POCKET = dict(
    layers=POCKET_EDIT_LAYERS,
    values=ValueSettings(learning_rate=2.0, steps=80, clamp_norm_factor=1.5, weight_decay=0.1),
)
POCKET_SETTINGS = dict(mom2_weight=300.0, alpha=300.0, leftover_fraction=POCKET_LEFTOVER_FRACTION)

#: The wide pocket model (5 layers, d_k = 3584), the density study's testbed: the band of three layers
#: and every method's settings come from the tuning on the tuning split, with the same budget per
#: method (``results/tuning/``, shown in the density chapter).
POCKET_WIDE = dict(
    layers=POCKET_WIDE_EDIT_LAYERS,
    values=ValueSettings(learning_rate=2.0, steps=80, clamp_norm_factor=1.5, weight_decay=0.1),
)
POCKET_WIDE_SETTINGS = dict(mom2_weight=300.0, alpha=300.0, leftover_fraction=POCKET_LEFTOVER_FRACTION)

#: The tiny randomly initialised stand-in that runs the real-LLM chapter's code path on a CPU
#: (``llm.tiny_random_model``): its numbers mean nothing; these values only make it fast.
TINY_RANDOM = dict(layers=(0, 1), values=ValueSettings(learning_rate=0.5, steps=4))
TINY_RANDOM_SETTINGS = dict(mom2_weight=1.0, alpha=1.0, leftover_fraction=0.5, steps=4)

MODEL_NAMES = tuple(_REFERENCE) + ("pocket", "pocket-wide", "tiny-random")

_SHARED_FIELDS = {f.name for f in fields(EditConfig)} - {"method", "settings"}


def _model_defaults(model_name: str) -> tuple[dict, dict]:
    if model_name == "pocket":
        return POCKET, POCKET_SETTINGS
    if model_name == "pocket-wide":
        return POCKET_WIDE, POCKET_WIDE_SETTINGS
    if model_name == "tiny-random":
        return TINY_RANDOM, TINY_RANDOM_SETTINGS
    if model_name in _REFERENCE:
        layers, values, mom2_weight = _REFERENCE[model_name]
        return dict(layers=layers, values=values), dict(mom2_weight=mom2_weight, tau=2e-2, alpha=10.0)
    raise ValueError(
        f"no defaults for model {model_name!r}; known: {', '.join(MODEL_NAMES)}. "
        "Build an EditConfig yourself (layers, values, and the method's settings)"
    )


def default_config(method: str, model_name: str = "pocket", **overrides) -> EditConfig:
    """The defaults for ``method`` on ``model_name`` (one of MODEL_NAMES), with any field overridden.

    An override names a field every method shares (``layers``, ``values``, ``seed``) or one of the
    method's own settings (``alpha`` for AlphaEdit, ``steps`` for FT, ...); a setting the method does
    not have is an error (``applicable_overrides`` keeps only those that apply).
    """
    editing_method = get_method(method)
    shared, settings = _model_defaults(model_name)
    shared = dict(shared, **{k: v for k, v in overrides.items() if k in _SHARED_FIELDS})
    own = {k: v for k, v in overrides.items() if k not in _SHARED_FIELDS}
    values = applicable_overrides(method, settings)
    if own.get("tau") is not None and "leftover_fraction" not in own:
        values.pop("leftover_fraction", None)  # an absolute cut replaces the model's fraction cut
    values.update(own)
    return EditConfig(method=method, settings=settings_with(editing_method, values), **shared)


def applicable_overrides(method: str, overrides: dict) -> dict:
    """The entries of ``overrides`` (not None) that apply to ``method``: shared fields and its own settings.

    One set of overrides can so serve every method of a study (``tau`` reaches the null-space methods
    only). A name that is neither a shared field nor a setting of any registered method is an error.
    """
    known = _SHARED_FIELDS.union(*({f.name for f in fields(m.settings_type)} for m in REGISTRY.values()))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown setting {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    own = _SHARED_FIELDS | {f.name for f in fields(get_method(method).settings_type)}
    return {name: value for name, value in overrides.items() if name in own and value is not None}


def reference_name(model_name: str) -> str:
    """The ``MODEL_NAMES`` entry for a hub model name: ``meta-llama/Meta-Llama-3-8B-Instruct`` -> ``llama-3-8b``."""
    if model_name in MODEL_NAMES:
        return model_name
    short = model_name.split("/")[-1].lower().replace("meta-llama-", "llama-")
    for name in sorted(MODEL_NAMES, key=len, reverse=True):
        if short.startswith(name):
            return name
    raise ValueError(
        f"no editing defaults for {model_name!r}; known: {', '.join(MODEL_NAMES)}. Pass "
        "edit_layers (and, for other families, your own EditConfig values) to edit it anyway"
    )


def load_pocket_editing(
    texts: list[str] | None = None,
    layers=None,
    *,
    cache_dir=STATISTICS_CACHE,
    progress: bool = False,
    model_name: str = "pocket",
):
    """What every pocket editing run starts from: ``(model, tokenizer, statistics)``.

    The pocket model (``model_name``: "pocket", the small one, or "pocket-wide") and tokenizer
    (``pocket.load_pocket_model``) and ``C0`` of each edited layer (default: the model's edited
    layers) from ``texts`` (default: the preserved-knowledge corpus, ``pocket.covariance_texts``),
    cached under ``cache_dir`` (None: computed, nothing read or written).
    """
    sizes = {"pocket": "small", "pocket-wide": "wide"}
    if model_name not in sizes:
        raise ValueError(f"unknown pocket model {model_name!r}; choose one of {', '.join(sizes)}")
    if layers is None:
        layers = POCKET_EDIT_LAYERS if model_name == "pocket" else POCKET_WIDE_EDIT_LAYERS
    model, tokenizer = load_pocket_model(size=sizes[model_name])
    statistics = key_second_moments(
        model,
        tokenizer,
        covariance_texts() if texts is None else texts,
        list(layers),
        cache_dir=cache_dir,
        progress=progress,
    )
    return model, tokenizer, statistics
