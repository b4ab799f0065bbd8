"""Real LLMs from the Hugging Face hub, and the tiny stand-in that runs the same code on a CPU.

``load_model`` loads a hub model for editing (``float16`` on a GPU, ``float32`` on a CPU unless
told otherwise; ``editing.defaults.reference_name`` maps a hub name to its editing defaults).
``tiny_random_model`` builds a randomly initialised model of the same architecture family with
the pocket tokenizer: the offline book build and the tests execute the real-LLM chapter with it,
so every code path runs, while its numbers mean nothing (the chapter says so). ``resolve_run_mode``
decides between the two.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

RUN_MODES = ("auto", "full", "smoke")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: Architecture families the stand-in can mimic, by hub config ``model_type``.
TINY_CONFIGS = {
    "qwen2": transformers.Qwen2Config,
    "llama": transformers.LlamaConfig,
    "mistral": transformers.MistralConfig,
    "gemma3_text": transformers.Gemma3TextConfig,  # its MLP output is normalised before the residual
}
#: settings a family needs beyond the shared ones (Gemma 3's heads default to 256 dimensions)
TINY_EXTRA = {"gemma3_text": lambda hidden: {"head_dim": hidden // 4, "query_pre_attn_scalar": hidden // 4}}


def resolve_run_mode(run_mode: str) -> str:
    """``auto`` is ``full`` where CUDA is available and ``smoke`` elsewhere."""
    if run_mode not in RUN_MODES:
        raise ValueError(f"run_mode must be one of {', '.join(RUN_MODES)}, got {run_mode!r}")
    if run_mode == "auto":
        return "full" if torch.cuda.is_available() else "smoke"
    if run_mode == "full" and not torch.cuda.is_available():
        # Allowed (a CPU with patience and memory), but said.
        print("run_mode='full' without CUDA: the real model runs on the CPU, which is slow")
    return run_mode


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def load_model(model_name: str, *, device: str = "cuda", dtype: str = "auto"):
    """``(model, tokenizer)`` from the hub, in eval mode on ``device``, with a pad token."""
    torch_dtype = resolve_dtype(dtype, device)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_name)
        model = transformers.AutoModelForCausalLM.from_pretrained(model_name, dtype=torch_dtype)
    except OSError as error:
        raise OSError(
            f"could not load {model_name!r} from the Hugging Face hub or its cache: {error}. Gated "
            "models (Llama) need `huggingface-cli login` and an accepted licence"
        ) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer


def tiny_random_model(
    tokenizer, family: str = "qwen2", *, seed: int = 0, layers: int = 3, hidden: int = 32, max_positions: int = 1024
):
    """A randomly initialised ``family`` model sized for a CPU test, with ``tokenizer``'s vocabulary."""
    if family not in TINY_CONFIGS:
        raise ValueError(f"no tiny stand-in for model type {family!r}; choose from {', '.join(TINY_CONFIGS)}")
    config = TINY_CONFIGS[family](
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        **TINY_EXTRA.get(family, lambda hidden: {})(hidden),
    )
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def model_family(model_name: str) -> str:
    """The architecture family of a hub name, guessed from the name (no download): for the stand-in."""
    lowered = model_name.lower()
    for family in TINY_CONFIGS:
        if family in lowered:
            return family
    return "llama"


def run_plan(
    mode: str,
    model_name: str,
    *,
    mzsre_mirror=None,
    corpus_root=None,
    general_root=None,
    edits_per_language: int,
    batch_size: int,
    max_tokens: int,
    local_mzsre="../../shared/datasets/MzsRE",
    fixtures="../data/fixtures/general",
) -> dict:
    """What the real-LLM chapter runs in ``mode`` (``resolve_run_mode``), and what it was asked to run.

    In ``full`` mode everything is as asked. In ``smoke`` mode each part is replaced by a stand-in that
    works offline on a CPU, and the plan names it: the tiny random model of the same family (pocket
    tokenizer), a local MzsRE mirror when ``local_mzsre`` exists (else the pocket edits), the pocket corpus
    for the statistics, the hand-written task fixtures, prompts of at most 512 tokens, and at most two
    edits per language in batches of at most two (a random model learns nothing from more; a few run every
    step of the schedule). Returns ``asked`` and ``used`` (what to show) and the values to run with.
    """
    if mode not in ("full", "smoke"):
        raise ValueError(f"mode must be 'full' or 'smoke' (resolve_run_mode decides), got {mode!r}")
    used = {
        "model": model_name,
        "MzsRE": mzsre_mirror or "download",
        "corpus": corpus_root or "Wikipedia",
        "general tasks": general_root or "hub",
        "edits per language": f"{edits_per_language} (batches of {batch_size})",
    }
    plan = {
        "asked": dict(used),
        "mzsre_mirror": mzsre_mirror,
        "general_root": general_root,
        "edits_per_language": edits_per_language,
        "batch_size": batch_size,
        "max_tokens": max_tokens,
    }
    if mode == "smoke":
        used["model"] = f"tiny random {model_family(model_name)} (pocket tokenizer)"
        if mzsre_mirror is None:
            plan["mzsre_mirror"] = str(local_mzsre) if Path(local_mzsre).is_dir() else None
            used["MzsRE"] = (
                f"local mirror {plan['mzsre_mirror']}"
                if plan["mzsre_mirror"]
                else "pocket edits (no local MzsRE mirror)"
            )
        if corpus_root is None:
            used["corpus"] = "pocket corpus"
        if general_root is None:
            plan["general_root"] = str(fixtures)
            used["general tasks"] = f"hand-written fixtures ({fixtures})"
        plan["max_tokens"] = min(max_tokens, 512)
        plan["edits_per_language"], plan["batch_size"] = min(edits_per_language, 2), min(batch_size, 2)
        used["edits per language"] = f"{plan['edits_per_language']} (batches of {plan['batch_size']})"
    plan["used"] = used
    return plan
