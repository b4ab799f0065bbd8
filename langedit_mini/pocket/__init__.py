"""The pocket world: a six-language fact base, its corpus, and a small Llama that knows it.

Shipped in ``data/pocket/``: ``facts.jsonl``, ``corpus.txt``, ``edits.json`` (the editing
dataset, MzsRE schema plus ``relation``, ``fact_id``, ``lang``, true answers), ``probes.json``
(general-ability probes), ``build_report.json`` (what the fact builder kept and dropped), and
``model/`` (safetensors, ``config.json``, ``tokenizer.json``, model card). Regenerate everything
with ``python -m langedit_mini.pocket.build`` (the regeneration code, ``pocket/build/``, which
nothing at run time imports).

Two models know this world (``POCKET_MODELS``): ``pocket`` (``model/``: 4 layers, d_k 1024, the fast
model of the tests and the live chapters) and ``pocket-wide`` (``model-wide/``: 5 layers, d_k 3584, a
candidate testbed; ``python -m langedit_mini.pocket.build --model pocket-wide``).
"""

from __future__ import annotations

import json
from pathlib import Path

from langedit_mini.data.datasets import POCKET_DIRECTORY

MODEL_DIRECTORY = POCKET_DIRECTORY / "model"
POCKET_MODELS = {"pocket": MODEL_DIRECTORY, "pocket-wide": POCKET_DIRECTORY / "model-wide"}


def load_pocket_model(name: str = "pocket", *, device=None, dtype=None, directory: str | Path | None = None):
    """A pocket model and its tokenizer, loaded offline (``name``: a key of ``POCKET_MODELS``).

    ``device``: where to put the model (default CPU); ``dtype``: e.g. ``torch.bfloat16``
    (default: float32, as trained); ``directory`` overrides ``name``. Never runs remote code.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if directory is None:
        if name not in POCKET_MODELS:
            raise ValueError(f"unknown pocket model {name!r}; the pocket models are {', '.join(POCKET_MODELS)}")
        directory = POCKET_MODELS[name]
    directory = Path(directory)
    if not (directory / "model.safetensors").exists():
        raise FileNotFoundError(
            f"no pocket model at {directory}; regenerate it with `python -m langedit_mini.pocket.build"
            + (" --model pocket-wide`" if directory.name == "model-wide" else "`")
        )
    tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        directory, dtype=dtype or torch.float32, trust_remote_code=False, use_safetensors=True
    )
    model.eval()
    if device is not None:
        model.to(device)
    return model, tokenizer


def load_facts(directory: str | Path = POCKET_DIRECTORY) -> list[dict]:
    """Every fact of the fact base, one dict per fact (``facts.jsonl``)."""
    with open(Path(directory) / "facts.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def load_probes(directory: str | Path = POCKET_DIRECTORY) -> dict[str, list[dict]]:
    """The general-ability probes: ``fact_qa``, ``perplexity``, ``translation``, ``verification``."""
    return json.loads((Path(directory) / "probes.json").read_text(encoding="utf-8"))


def covariance_texts(directory: str | Path = POCKET_DIRECTORY) -> list[str]:
    """The default preserved-knowledge corpus: held-out statements of never-edited facts, six languages."""
    return [item["text"] for item in load_probes(directory)["perplexity"]]


#: The layer the editing chapters edit on the pocket model, and the null-space cut used there
#: (discarded eigenvalues hold 10% of trace(C0)). Layer 0: the pocket chapter's patching test shows
#: this 4-layer model reads a subject's facts from the subject's states after block 0, not later;
#: target values at layer 1 were reached for fewer requests (tuning measured in the pocket chapter).
POCKET_EDIT_LAYERS = (0,)
POCKET_LEFTOVER_FRACTION = 0.10
#: The wide model's edited band: three layers, as the paper's five of Llama-3-8B's 32 sit early-middle
#: (its causal trace is in the density chapter).
POCKET_WIDE_EDIT_LAYERS = (1, 2, 3)
