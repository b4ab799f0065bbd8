"""Default editing hyperparameters per model: the reference values, and the pocket model's tuned ones.

``default_config(method, model_name)`` returns an ``EditConfig`` from the model's hyperparameter file
(``editing/hparams/<model>.json``, listed by ``list_hparams``). Reference values follow the
MEMIT/AlphaEdit/LangEdit releases (``book/reference.md``, section 3): edited layers, ``v_lr``, 20-25 value steps,
``kl_factor`` 0.0625, ``weight_decay`` 0.5, clamp 0.75, MEMIT's ``mom2_update_weight`` 15000,
AlphaEdit's ``tau`` 2e-2 and ``alpha`` 10. The pocket model's values were tuned on it (see the
editing chapter) and use a leftover-fraction cut, because its key spectrum has no gap at 2e-2.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd

from langedit_mini.editing.config import EditConfig
from langedit_mini.editing.methods import settings_with
from langedit_mini.editing.registry import REGISTRY, get_method
from langedit_mini.model.statistics import DEFAULT_CACHE as STATISTICS_CACHE
from langedit_mini.model.statistics import key_second_moments
from langedit_mini.model.values import ValueSettings
from langedit_mini.pocket import (
    POCKET_EDIT_LAYERS,
    POCKET_WIDE_EDIT_LAYERS,
    covariance_texts,
    load_pocket_model,
)

#: each pocket model's edited layers
POCKET_EDIT_LAYERS_OF = {"pocket": POCKET_EDIT_LAYERS, "pocket-wide": POCKET_WIDE_EDIT_LAYERS}

#: One JSON file per model in ``editing/hparams/`` (``list_hparams``): its edited layers, its target-value
#: settings, the method settings (each applies to the methods that have it: ``mom2_weight`` to MEMIT; the
#: cut and ``alpha`` to AlphaEdit and both LangEdit forms; ``steps`` to FT), and a note on where the
#: values come from. Copy one, change it, and pass its path as ``hparams=`` to ``default_config``.
HPARAMS_DIRECTORY = Path(__file__).resolve().parent / "hparams"
MODEL_NAMES = tuple(
    json.loads(path.read_text(encoding="utf-8"))["model"] for path in sorted(HPARAMS_DIRECTORY.glob("*.json"))
)


def list_hparams() -> pd.DataFrame:
    """The shipped hyperparameter files: model name, edited layers, note, path."""
    rows = []
    for path in sorted(HPARAMS_DIRECTORY.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        rows.append({"model": data["model"], "layers": tuple(data["layers"]), "note": data["note"], "path": str(path)})
    return pd.DataFrame(rows).set_index("model")


def load_hparams(name_or_path: str | Path, method: str | None = None) -> tuple[dict, dict]:
    """``(shared, settings)`` from a hyperparameter file: a model name of ``MODEL_NAMES`` or a JSON path.

    ``shared``: ``layers`` and ``values`` (a ``ValueSettings``); ``settings``: the method settings of the
    file's ``settings``, and, for ``method``, its own entries of ``methods`` over them (a file may tune
    one method's cut apart from another's: ``{"methods": {"AlphaEdit": {"alpha": 30}}}``). Unknown fields
    are errors, naming the file."""
    if str(name_or_path) in MODEL_NAMES:
        path = HPARAMS_DIRECTORY / f"{name_or_path}.json"
    elif str(name_or_path).endswith(".json"):
        path = Path(name_or_path)
    else:
        raise ValueError(
            f"no defaults for model {name_or_path!r}; known: {', '.join(MODEL_NAMES)}. "
            "Build an EditConfig yourself (layers, values, and the method's settings), or pass the path of "
            "a hyperparameter file (a .json copy of one of list_hparams())"
        )
    if not path.is_file():
        raise FileNotFoundError(f"hyperparameter file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    unknown = sorted(set(data) - {"model", "note", "layers", "values", "settings", "methods", "prompt_format"})
    if unknown or "layers" not in data:
        raise ValueError(
            f"{path}: needs 'layers' (and optionally values, settings, methods, prompt_format, model, note); "
            f"unknown {unknown}"
        )
    value_fields = {f.name for f in fields(ValueSettings)}
    bad = sorted(set(data.get("values", {})) - value_fields)
    if bad:
        raise ValueError(f"{path}: unknown value settings {bad}; known: {', '.join(sorted(value_fields))}")
    layers = data["layers"]
    if not isinstance(layers, list) or not layers or not all(isinstance(x, int) for x in layers):
        raise ValueError(f"{path}: layers must be a non-empty list of integers, got {layers!r}")
    per_method = data.get("methods", {})
    if not isinstance(per_method, dict) or not all(isinstance(v, dict) for v in per_method.values()):
        raise ValueError(f"{path}: methods must map method names to settings, got {per_method!r}")
    strangers = sorted(set(per_method) - set(REGISTRY))
    if strangers:
        raise ValueError(f"{path}: methods names unknown methods {strangers}; known: {', '.join(REGISTRY)}")
    try:
        values = ValueSettings(**data.get("values", {})).validate()
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    shared = dict(layers=tuple(layers), values=values)
    settings = dict(data.get("settings", {}))
    own = per_method.get(method, {}) if method is not None else {}
    for cut, other in (("tau", "leftover_fraction"), ("leftover_fraction", "tau")):
        if own.get(cut) is not None and other not in own:
            settings.pop(other, None)  # a method's own cut replaces the file's cut of the other kind
    settings |= own
    return shared, settings


def prompt_format(name_or_path: str | Path) -> str:
    """How the model of a hyperparameter file is asked (``data.prompts``: ``raw``, ``qa`` or ``chat``; ``raw``,
    the reference's practice, when the file does not say)."""
    path = HPARAMS_DIRECTORY / f"{name_or_path}.json" if str(name_or_path) in MODEL_NAMES else Path(name_or_path)
    return json.loads(path.read_text(encoding="utf-8")).get("prompt_format", "raw") if path.is_file() else "raw"


_SHARED_FIELDS = {f.name for f in fields(EditConfig)} - {"method", "settings"}


def default_config(
    method: str, model_name: str = "pocket", *, hparams: str | Path | None = None, **overrides
) -> EditConfig:
    """The defaults for ``method`` on ``model_name`` (one of MODEL_NAMES, or a hyperparameter file's path; or
    the file ``hparams``), with any field overridden.

    An override names a field every method shares (``layers``, ``values``, ``seed``) or one of the
    method's own settings (``alpha`` for AlphaEdit, ``steps`` for FT, ...); a setting the method does
    not have is an error (``applicable_overrides`` keeps only those that apply). ``values`` may be a dict
    of some target-value settings (``{"steps": 40}``), which replace the file's.
    """
    editing_method = get_method(method)
    shared, settings = load_hparams(hparams if hparams is not None else model_name, method)
    given = {k: v for k, v in overrides.items() if k in _SHARED_FIELDS}
    if isinstance(given.get("values"), dict):
        given["values"] = replace(shared["values"], **given["values"]).validate()
    shared = dict(shared, **given)
    own = {k: v for k, v in overrides.items() if k not in _SHARED_FIELDS}
    values = applicable_overrides(method, settings)
    for cut, other in (("tau", "leftover_fraction"), ("leftover_fraction", "tau")):
        if own.get(cut) is not None and other not in own:
            values.pop(other, None)  # a cut given replaces the file's cut of the other kind
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


def parse_settings(pairs) -> dict:
    """Settings over a hyperparameter file from ``name=value`` pairs (the ``--set`` option of the command
    line and of every study script): each value is read as JSON (numbers, true/false, null), else kept as
    text; ``values.<field>`` pairs are gathered into ``values`` (the target-value settings). A pair without
    "=", a setting no method has and an unknown target-value field are errors that name them."""
    settings, values = {}, {}
    for pair in pairs or ():
        name, separator, text = str(pair).partition("=")
        if not separator or not name:
            raise ValueError(f"a setting is name=value, got {pair!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        (values if name.startswith("values.") else settings)[name.removeprefix("values.")] = value
    applicable_overrides(next(iter(REGISTRY)), settings)  # a name no method has is an error
    unknown = sorted(set(values) - {f.name for f in fields(ValueSettings)})
    if unknown:
        known = ", ".join(f.name for f in fields(ValueSettings))
        raise ValueError(f"unknown target-value settings {unknown}; known: {known}")
    if values:
        settings["values"] = values
    return settings


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


#: A model without a hyperparameter file takes, with the layers its caller gives, the reference values of
#: AlphaEdit's and LangEdit's releases (``llama-3-8b.json``: v_lr 0.1, 25 value steps, clamp 0.75,
#: MEMIT's mom2_update_weight 15000, tau 2e-2, alpha 10): the recipe the methods were published with,
#: not values tuned for some other model. ``defaults_for`` says so with a warning.
REFERENCE_DEFAULTS = "llama-3-8b"


class ReferenceDefaultsWarning(UserWarning):
    """A model without a hyperparameter file is edited with the reference values (``REFERENCE_DEFAULTS``)."""


def defaults_for(model_name: str | None, *, layers_given: bool) -> str:
    """The hyperparameter file (a ``MODEL_NAMES`` entry) for a model named ``model_name`` (a defaults name or
    a hub name; None: unknown).

    A model with a file takes it (the caller's layers, when given, replace the file's). A model without
    one takes ``REFERENCE_DEFAULTS`` with a ``ReferenceDefaultsWarning``, but only when the caller gives
    the layers (which layers to edit cannot be guessed: ``interface.guide.layer_and_cut_guide`` helps
    choose them); without layers it is an error naming the known models.
    """
    if model_name is not None:
        try:
            return reference_name(model_name)
        except ValueError:
            if not layers_given:
                raise
    elif not layers_given:
        raise ValueError(
            f"cannot tell which model this is: name its defaults (one of {', '.join(MODEL_NAMES)}) or give the layers"
        )
    warnings.warn(
        f"no editing defaults for {model_name or 'this model'}: using the reference values of AlphaEdit's and "
        f"LangEdit's releases ({REFERENCE_DEFAULTS}.json: value lr 0.1, 25 steps, mom2_weight 15000, tau 2e-2, "
        "alpha 10) with the layers given; copy a hyperparameter file and tune it for this model",
        ReferenceDefaultsWarning,
        stacklevel=2,
    )
    return REFERENCE_DEFAULTS


def load_pocket_editing(
    texts: list[str] | None = None,
    layers=None,
    *,
    cache_dir=STATISTICS_CACHE,
    progress: bool = False,
    model_name: str = "pocket",
):
    """What every pocket editing run starts from: ``(model, tokenizer, statistics)``.

    The pocket model ``model_name`` ("pocket", the small one, or "pocket-wide") and its tokenizer
    (``pocket.load_pocket_model``) and ``C0`` of each edited layer (default: the model's edited
    layers) from ``texts`` (default: the preserved-knowledge corpus, ``pocket.covariance_texts``),
    cached under ``cache_dir`` (None: computed, nothing read or written).
    """
    if model_name not in POCKET_EDIT_LAYERS_OF:
        raise ValueError(f"unknown pocket model {model_name!r}; choose one of {', '.join(POCKET_EDIT_LAYERS_OF)}")
    model, tokenizer = load_pocket_model(model_name)
    statistics = key_second_moments(
        model,
        tokenizer,
        covariance_texts() if texts is None else texts,
        list(POCKET_EDIT_LAYERS_OF[model_name] if layers is None else layers),
        cache_dir=cache_dir,
        progress=progress,
    )
    return model, tokenizer, statistics
