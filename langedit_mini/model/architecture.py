"""Where the edited MLP matrix and its neighbours live in each architecture.

Editing changes ``W`` in ``out = W k`` (reference, section 2): the MLP's output projection, whose
*input* is the key ``k`` (d_k) and whose output lands in the residual stream (d_v). This table
says, per architecture, the module path of that projection, of each layer's output, of the final
norm and of the LM head, and whether the weight is stored transposed (GPT-2's ``Conv1D`` keeps
``(d_k, d_v)``; ``nn.Linear`` keeps ``(d_v, d_k)``).

Where a norm stands between the projection's output and the residual stream (Gemma 2 and 3 normalise the
MLP's output, ``mlp_out_norm``), the linear memory ``W k = m`` is read through that norm: ``output_norm``,
``through_norm`` and ``residual_to_memory`` move between the two spaces.

The architecture is detected from ``model.config.model_type``; every path can be overridden.
An unknown architecture gets an error listing the known ones and the parameters that would make
it work.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Architecture:
    name: str
    mlp_out: str  # module path with {layer}: the edited matrix W, input = key k
    layer: str  # module path with {layer}: the transformer block (its output = residual stream)
    final_norm: str
    lm_head: str
    transposed: bool = False  # weight stored as (d_k, d_v) (GPT-2 Conv1D)
    layers_attribute: str = "model.layers"
    # The model takes a cached prefix (``cache``, ``position_ids``, a mask with padding inside), so target
    # values can skip what their delta cannot change (``values._SuffixForward``); tested for every entry
    # of the table against the reference recipe (tests/test_values.py).
    prefix_cache: bool = True
    # Module path with {layer} of a norm applied to the MLP's output before it joins the residual stream
    # (Gemma 2 and 3: ``post_feedforward_layernorm``): the linear memory W k = m is then read through
    # norm(m), so target values and updates are computed where m lives (``output_norm``).
    mlp_out_norm: str | None = None


_LLAMA_LIKE = dict(
    mlp_out="model.layers.{layer}.mlp.down_proj",
    layer="model.layers.{layer}",
    final_norm="model.norm",
    lm_head="lm_head",
    layers_attribute="model.layers",
)

ARCHITECTURES: dict[str, Architecture] = {
    "llama": Architecture("llama", **_LLAMA_LIKE),
    "mistral": Architecture("mistral", **_LLAMA_LIKE),
    "qwen2": Architecture("qwen2", **_LLAMA_LIKE),
    "qwen3": Architecture("qwen3", **_LLAMA_LIKE),
    "gemma": Architecture("gemma", **_LLAMA_LIKE),
    "gemma2": Architecture("gemma2", **_LLAMA_LIKE, mlp_out_norm="model.layers.{layer}.post_feedforward_layernorm"),
    "gemma3_text": Architecture(
        "gemma3_text", **_LLAMA_LIKE, mlp_out_norm="model.layers.{layer}.post_feedforward_layernorm"
    ),
    "gpt2": Architecture(
        "gpt2",
        mlp_out="transformer.h.{layer}.mlp.c_proj",
        layer="transformer.h.{layer}",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        transposed=True,
        layers_attribute="transformer.h",
    ),
    "gptj": Architecture(
        "gptj",
        mlp_out="transformer.h.{layer}.mlp.fc_out",
        layer="transformer.h.{layer}",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        layers_attribute="transformer.h",
    ),
    "gpt_neox": Architecture(
        "gpt_neox",
        mlp_out="gpt_neox.layers.{layer}.mlp.dense_4h_to_h",
        layer="gpt_neox.layers.{layer}",
        final_norm="gpt_neox.final_layer_norm",
        lm_head="embed_out",
        layers_attribute="gpt_neox.layers",
    ),
    "bloom": Architecture(
        "bloom",
        mlp_out="transformer.h.{layer}.mlp.dense_4h_to_h",
        layer="transformer.h.{layer}",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        layers_attribute="transformer.h",
    ),
}


class UnknownArchitectureError(ValueError):
    pass


def check_model_and_tokenizer(model, tokenizer=None) -> None:
    """Refuse what cannot be edited or scored, with the reason: a model and tokenizer given in the wrong
    order, something that is not a torch model, and a model without a language-model head (a base
    ``LlamaModel`` instead of ``LlamaForCausalLM``, an encoder such as BERT)."""
    if isinstance(tokenizer, torch.nn.Module) and not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"the model and the tokenizer seem swapped: got a {type(model).__name__} as the model and a "
            f"{type(tokenizer).__name__} as the tokenizer; pass (model, tokenizer)"
        )
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise TypeError(f"expected a transformers model (torch.nn.Module with a config), got {type(model).__name__}")
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(
            f"{type(model).__name__} is an encoder-decoder model; these methods edit decoder-only causal LMs"
        )
    if model.get_output_embeddings() is None:
        raise ValueError(
            f"{type(model).__name__} has no language-model head, so it predicts no tokens: load the model with "
            "transformers.AutoModelForCausalLM (e.g. LlamaForCausalLM, not LlamaModel)"
        )
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    if type(model).__name__ not in causal and not getattr(config, "is_decoder", False):
        raise ValueError(
            f"{type(model).__name__} is not a causal language model (transformers' AutoModelForCausalLM "
            "classes): editing and scoring read next-token predictions, which a masked or sequence model "
            "does not make"
        )


def detect_architecture(model, **overrides) -> Architecture:
    """The architecture entry for ``model``, with any field overridden by keyword."""
    check_model_and_tokenizer(model)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in ARCHITECTURES:
        return replace(ARCHITECTURES[model_type], **overrides)
    required = ("mlp_out", "layer", "final_norm", "lm_head")
    if all(name in overrides for name in required):
        # A model the table does not know runs target values by the reference recipe unless told otherwise.
        return Architecture(name=str(model_type), **({"prefix_cache": False} | overrides))
    raise UnknownArchitectureError(
        f"unknown architecture {model_type!r}; supported: {', '.join(sorted(ARCHITECTURES))}. "
        f"For another model pass the module paths: mlp_out='...{{layer}}...', layer='...{{layer}}...', "
        f"final_norm='...', lm_head='...' (and transposed=True if the weight is stored (d_k, d_v))"
    )


def get_module(model, path: str) -> torch.nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError as error:
        raise UnknownArchitectureError(f"module {path!r} not found in {type(model).__name__}") from error


def num_layers(model, architecture: Architecture) -> int:
    return len(get_module(model, architecture.layers_attribute))


def check_layer(model, architecture: Architecture, layer: int) -> int:
    count = num_layers(model, architecture)
    if not isinstance(layer, int) or not 0 <= layer < count:
        raise ValueError(f"edited layer {layer!r} is out of range: the model has layers 0..{count - 1}")
    return layer


def mlp_out_module(model, architecture: Architecture, layer: int) -> torch.nn.Module:
    return get_module(model, architecture.mlp_out.format(layer=check_layer(model, architecture, layer)))


def edited_weight(model, architecture: Architecture, layer: int) -> torch.Tensor:
    """The edited matrix as stored (``(d_v, d_k)``, or ``(d_k, d_v)`` when ``transposed``)."""
    return mlp_out_module(model, architecture, layer).weight


def key_dimension(model, architecture: Architecture, layer: int) -> int:
    weight = edited_weight(model, architecture, layer)
    return weight.shape[0] if architecture.transposed else weight.shape[1]


def output_norm(model, architecture: Architecture, layer: int) -> torch.nn.Module | None:
    """The norm between the edited matrix's output and the residual stream at ``layer`` (None: there is none,
    the output joins the residual as it is)."""
    if architecture.mlp_out_norm is None:
        return None
    return get_module(model, architecture.mlp_out_norm.format(layer=check_layer(model, architecture, layer)))


def through_norm(norm: torch.nn.Module, memory: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """What adding ``change`` to the MLP outputs ``memory`` (rows, d_v) does to the residual stream:
    ``norm(memory + change) - norm(memory)`` (rows, d_v), differentiable in ``change``."""
    return norm(memory + change) - norm(memory)


def nearest_norm_output(gain: torch.Tensor, wanted: torch.Tensor, iterations: int = 200) -> torch.Tensor:
    """The unit-RMS directions ``u`` (d_v, n) whose outputs ``gain * u`` lie nearest the ``wanted`` outputs
    (d_v, n): every output of an RMS norm is ``gain * u`` with ``rms(u) = 1``, so this is the reachable output
    nearest the wanted one. A least-squares problem on a sphere: ``u = g w / (g^2 + mu)`` with the ``mu`` that
    makes ``rms(u) = 1`` (one for each column, found by bisection; float64)."""
    g, w = gain.double()[:, None], wanted.double()
    g2 = g.pow(2)
    low = torch.full((1, w.shape[1]), -float(g2.min()), dtype=torch.float64, device=w.device)
    low = low + 1e-12 * float(g2.max())  # just above the pole of the smallest gain
    high = (g.abs() * w.abs()).max(dim=0, keepdim=True).values * (w.shape[0] ** 0.5) + 1.0
    for _ in range(iterations):
        middle = (low + high) / 2
        too_long = (g * w / (g2 + middle)).pow(2).mean(dim=0, keepdim=True) > 1
        low, high = torch.where(too_long, middle, low), torch.where(too_long, high, middle)
    u = g * w / (g2 + (low + high) / 2)
    return u / u.pow(2).mean(dim=0, keepdim=True).sqrt().clamp_min(1e-30)


def residual_to_memory(norm: torch.nn.Module, memory: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """The change of the MLP outputs ``memory`` (d_v, n) that moves the residual stream by ``change`` (d_v, n)
    through an RMS norm ``norm(x) = g * x / sqrt(mean(x^2) + eps)``, as nearly as a norm allows.

    A norm's outputs all lie on one ellipsoid (``g * u`` with ``rms(u) = 1``), so the wanted output
    ``y = norm(memory) + change`` is met by the reachable output nearest it (``nearest_norm_output``): exactly
    when ``y`` is reachable (a whole rotation), the nearest point when it is not (a share of a rotation spread
    over several layers is a chord, inside the ellipsoid; a dimension whose gain is 0 cannot be written). The
    new memory keeps its own RMS (the norm does not see the scale; keeping it keeps the update small), except
    where ``eps`` is not small against the memory's square (tiny random models), where the scale reaches a
    point inside the ellipsoid exactly (``x = u * sqrt(eps / (1 - rms(y / g)^2))``). Float64 inside."""
    with torch.no_grad():
        d_v = memory.shape[0]
        dtype = next(iter(norm.parameters()), torch.zeros(0)).dtype
        eps = float(getattr(norm, "eps", getattr(norm, "variance_epsilon", 0.0)))
        gain = norm(torch.ones(1, d_v, dtype=dtype, device=memory.device))[0].double() * (1.0 + eps) ** 0.5
        m = memory.double()
        wanted = norm(memory.T.to(dtype)).T.double() + change.double()  # (d_v, n)
        scale = m.pow(2).mean(dim=0, keepdim=True).sqrt()
        target = nearest_norm_output(gain, wanted) * scale
        if eps > 0:  # tiny models: the norm's eps reaches inside the ellipsoid
            unit = wanted / gain[:, None]
            room = 1.0 - unit.pow(2).mean(dim=0, keepdim=True)
            inside = (scale.pow(2) < 100 * eps) & (room > 1e-4) & (gain.abs().min() > 1e-3 * gain.abs().max())
            target = torch.where(inside, unit * (eps / room.clamp_min(1e-30)).sqrt(), target)
        return (target - m).to(change.dtype)


def selected_logits(model, architecture: Architecture, rows, positions, *, with_output: bool = False, **inputs):
    """Logits (k, vocab) at ``(rows[i], positions[i])`` only: the model's base (``model.base_model``: the blocks
    and the final norm, no LM head) runs with ``inputs``, the final norm's output is caught by a hook, and the LM
    head (with the model's final soft-capping, if any) runs at the positions asked for. For a vocabulary of
    262,144 (Gemma 3) the head over every position costs more than the rest of the model; even the head at one
    position a row (``logits_to_keep=1``) ran as a batched product with the head's weight repeated per row, 0.5-1.5
    s a pass on Gemma. ``with_output``: ``(logits, the base model's output)``, for its cache."""
    store = {}
    norm = get_module(model, architecture.final_norm)
    handle = norm.register_forward_hook(lambda m, i, output: store.__setitem__("states", layer_state(output)))
    try:
        output = model.base_model(**inputs)
    finally:
        handle.remove()
    logits = model.get_output_embeddings()(store["states"][rows, positions])
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    logits = torch.tanh(logits / cap) * cap if cap else logits
    return (logits, output) if with_output else logits


def layer_state(output):
    """A module returns a tensor or a tuple whose first item is the hidden state."""
    return output[0] if isinstance(output, tuple) else output


class _Stopped(Exception):
    """Raised by ``run_until``'s hook: the pass has produced what it was run for."""


def _stop(module, inputs, output):
    raise _Stopped


def run_until(model, module: torch.nn.Module, **inputs) -> None:
    """``model(**inputs)`` run only as far as ``module``: the forward hooks registered on it before this call see
    its output, then the pass stops, so nothing after it (later blocks, the final norm, the LM head) is computed.
    For passes that only collect states with hooks; the model is not changed."""
    handle = module.register_forward_hook(_stop)
    try:
        model(**inputs)
    except _Stopped:
        pass
    finally:
        handle.remove()


def add_to_weight(model, architecture: Architecture, layer: int, delta: torch.Tensor, sign: float = 1.0) -> None:
    """``W += sign * delta`` for delta (d_v, d_k), in the weight's dtype and device (transposed for Conv1D)."""
    weight = edited_weight(model, architecture, layer)
    update = delta.T if architecture.transposed else delta
    with torch.no_grad():
        weight.add_(update.to(device=weight.device, dtype=weight.dtype), alpha=sign)


@contextmanager
def optimising_only(model, parameters=()):
    """For an optimisation inside the block: the model in eval mode, gradients only for ``parameters``.

    Every parameter's ``requires_grad`` flag and the model's train/eval mode are restored on exit,
    also after an error.
    """
    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in parameters:
        parameter.requires_grad_(True)
    try:
        yield model
    finally:
        for parameter, flag in zip(model.parameters(), flags):
            parameter.requires_grad_(flag)
        model.train(was_training)
