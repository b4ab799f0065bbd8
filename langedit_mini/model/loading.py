"""Any model by name, for everything that names one (``edit``, the command line, the study's testbeds, the
chapters):

* ``pocket``, ``pocket-wide``: the bundled pocket models (``pocket.load_pocket_model``);
* ``smollm2-135m``, ``gemma-3-270m``: the real LLMs whose GGUF files install from the package registry
  (``model.weights``), dequantised on the CPU; with ``source="hub"`` the hub's full-precision originals
  instead (a GPU machine with network, such as Colab);
* a path to a ``.gguf`` file (``model.weights.load_gguf``);
* ``tiny-random-<family>``: a randomly initialised model of that family with the pocket tokenizer
  (``model.hub.tiny_random_model``), every code path of a real family in seconds;
* anything else: a local directory or a hub id (``model.hub.load_model``).

``load_named_model`` returns the model (eval mode), its tokenizer (with a pad token) and a record of which
weights these are, which every result built on them keeps.
"""

from __future__ import annotations

from pathlib import Path

from langedit_mini.model.hub import DTYPES, TINY_CONFIGS, load_model, resolve_dtype, tiny_random_model
from langedit_mini.model.weights import REGISTERED, load_gguf, weights_record
from langedit_mini.pocket import MODEL_DIRECTORY, POCKET_MODELS, load_pocket_model

TINY_PREFIX = "tiny-random-"
SOURCES = ("gguf", "hub")


def model_names() -> list[str]:
    """The names ``load_named_model`` knows besides paths and hub ids."""
    return [*POCKET_MODELS, *REGISTERED, *(TINY_PREFIX + family for family in TINY_CONFIGS)]


def load_named_model(name: str, *, device: str = "cpu", dtype: str = "float32", source: str = "gguf"):
    """``(model, tokenizer, record)`` of the model called ``name`` (see the module doc); ``dtype``: "float32",
    "bfloat16", "float16" or "auto" (half precision on a GPU); ``source``: for a registered GGUF model, "gguf"
    (the checked file from the installed package) or "hub" (its full-precision original)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a model name is a non-empty string, got {name!r}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    torch_dtype = resolve_dtype(dtype, device)
    if name in POCKET_MODELS:
        model, tokenizer = load_pocket_model(name, dtype=torch_dtype)
        return model.to(device), tokenizer, {"source": "bundled", "model": name}
    if name in REGISTERED and source == "hub":
        model, tokenizer = load_model(REGISTERED[name].hub, device=device, dtype=dtype)
        return model, tokenizer, {"source": "hub", "model": REGISTERED[name].hub}
    if name in REGISTERED or name.endswith(".gguf"):
        model, tokenizer = load_gguf(name, device=device, dtype=torch_dtype)
        return model, tokenizer, weights_record(name)
    if name.startswith(TINY_PREFIX):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(MODEL_DIRECTORY)
        model = tiny_random_model(tokenizer, name[len(TINY_PREFIX) :]).to(device=device, dtype=torch_dtype)
        return model, tokenizer, {"source": "random", "model": name}
    if "/" not in name and not Path(name).is_dir():
        raise ValueError(
            f"unknown model {name!r}: give one of {', '.join(model_names())}, a .gguf file, a local directory or "
            "a hub id (owner/name)"
        )
    model, tokenizer = load_model(name, device=device, dtype=dtype)
    return model, tokenizer, {"source": "hub" if not Path(name).is_dir() else "directory", "model": name}


__all__ = ["DTYPES", "SOURCES", "load_named_model", "model_names"]
