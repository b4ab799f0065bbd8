"""Keys and hidden states at the subject's last token (reference, section 3).

A request's key at layer ``l`` is the input of the edited MLP projection at the last token of the
subject, averaged over the bare prompt and the prompt after each context prefix of the request's
language (``languages.CONTEXT_PREFIXES``: fixed lists, so keys are deterministic). Every
computation here is batched over requests and prefixes, uses hooks that are removed on return,
and leaves the model unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from langedit_mini.data.datasets import EditRequest
from langedit_mini.data.languages import CONTEXT_PREFIXES, PREFIX_SEPARATOR
from langedit_mini.model.architecture import Architecture, get_module, layer_state, mlp_out_module, run_until
from langedit_mini.model.tokens import evaluation_mode, model_device, pad_rows, pad_token_id


@dataclass
class EncodedRows:
    """Token rows (right-padded) with, per row, the request it belongs to and the subject's last position."""

    input_ids: torch.Tensor  # (rows, T)
    attention_mask: torch.Tensor  # (rows, T)
    request_index: torch.Tensor  # (rows,) which request each row serves
    subject_position: torch.Tensor  # (rows,) index of the subject's last token
    lengths: list[int]  # unpadded length of each row


def subject_last_token(offsets: list[tuple[int, int]], last_char: int) -> int:
    """Index of the token whose character span covers ``last_char``."""
    for index, (start, end) in enumerate(offsets):
        if start <= last_char < end:
            return index
    raise ValueError(f"no token covers character {last_char}; offsets {offsets}")


def context_texts(request: EditRequest, prefixes: bool = True) -> list[tuple[str, int]]:
    """(text, index of the subject's last character) for the bare prompt and each prefixed prompt."""
    before, after = request.prompt.split("{}")
    before, after = before.replace("{{", "{").replace("}}", "}"), after.replace("{{", "{").replace("}}", "}")
    items = []
    for prefix in [""] + (CONTEXT_PREFIXES[request.lang] if prefixes else []):
        head = f"{prefix}{PREFIX_SEPARATOR[request.lang]}" if prefix else ""
        text = head + before + request.subject + after
        items.append((text, len(head + before + request.subject) - 1))
    return items


def encode_rows(
    tokenizer,
    texts: list[str],
    last_chars: list[int],
    request_index: list[int],
    suffix_ids: list[list[int]] | None = None,
    pad_id: int | None = None,
) -> EncodedRows:
    """Tokenize texts (optionally followed by extra token ids) and locate each subject's last token."""
    encoded = tokenizer(texts, return_offsets_mapping=True)
    rows, positions = [], []
    for index, (ids, offsets) in enumerate(zip(encoded["input_ids"], encoded["offset_mapping"])):
        # special tokens (BOS) have offsets (0, 0) and never cover a character
        positions.append(subject_last_token([tuple(o) for o in offsets], last_chars[index]))
        rows.append(list(ids) + (suffix_ids[index] if suffix_ids else []))
    ids, mask = pad_rows(rows, pad_id if pad_id is not None else pad_token_id(tokenizer), left=False, device="cpu")
    return EncodedRows(ids, mask, torch.tensor(request_index), torch.tensor(positions), [len(r) for r in rows])


def _rows_for(tokenizer, requests: list[EditRequest], prefixes: bool) -> EncodedRows:
    texts, last_chars, owners = [], [], []
    for index, request in enumerate(requests):
        for text, last_char in context_texts(request, prefixes):
            texts.append(text)
            last_chars.append(last_char)
            owners.append(index)
    return encode_rows(tokenizer, texts, last_chars, owners)


def context_limit(model) -> int | None:
    """The longest input the model's position embeddings take (None when the config does not say)."""
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_context_length(model, rows: EncodedRows, requests: list[EditRequest]) -> None:
    """Refuse rows longer than the model's context, naming the request, instead of failing inside the model."""
    limit = context_limit(model)
    if limit is None:
        return
    for length, owner in zip(rows.lengths, rows.request_index.tolist()):
        if length > limit:
            request = requests[owner]
            raise ValueError(
                f"request {request.fact_id or owner} ({request.question[:60]!r}...): an input of {length} "
                f"tokens, but the model takes at most {limit}; shorten the subject or the prompt"
            )


def _average_by_request(values: torch.Tensor, owners: torch.Tensor, count: int) -> torch.Tensor:
    """Mean of row vectors (rows, d) per request -> (d, count)."""
    total = torch.zeros(count, values.shape[1], dtype=values.dtype, device=values.device)
    total.index_add_(0, owners.to(values.device), values)
    per_request = torch.bincount(owners, minlength=count).to(values.device, values.dtype)
    return (total / per_request[:, None]).T


SITES = ("key", "memory", "hidden")


def _site(model, architecture: Architecture, layer: int, site: str, store: dict):
    """Register the hook that puts block ``layer``'s (B, T, d) states at ``site`` in ``store["states"]``;
    returns (the module after which the pass may stop, the hook's handle)."""
    if site == "key":
        module = mlp_out_module(model, architecture, layer)
        return module, module.register_forward_pre_hook(lambda m, inputs: store.__setitem__("states", inputs[0]))
    if site == "memory":
        module = mlp_out_module(model, architecture, layer)
    elif site == "hidden":
        module = get_module(model, architecture.layer.format(layer=layer))
    else:
        raise ValueError(f"unknown site {site!r}; one of {', '.join(SITES)}")
    return module, module.register_forward_hook(
        lambda m, inputs, output: store.__setitem__("states", layer_state(output))
    )


def subject_states(
    model,
    tokenizer,
    architecture: Architecture,
    requests: list[EditRequest],
    layer: int,
    site: str,
    *,
    contexts: bool = False,
    batch_size: int = 256,
) -> torch.Tensor:
    """States (d, n) in float32 at the subject's last token of each request, at ``site`` of block ``layer``:
    ``"key"`` the edited matrix's input k, ``"memory"`` its output ``m = W k`` (before any norm between it and
    the residual stream), ``"hidden"`` the residual stream after the block. With ``contexts``, the mean over the
    bare prompt and each context prefix of the request's language; else the bare prompt alone. Each pass stops
    at the site: later blocks and the LM head are not run, and nothing they do changes these states."""
    rows = _rows_for(tokenizer, requests, prefixes=contexts)
    check_context_length(model, rows, requests)
    collected = []
    for start in range(0, len(rows.lengths), batch_size):
        part = slice(start, start + batch_size)
        store = {}
        module, handle = _site(model, architecture, layer, site, store)
        try:
            with evaluation_mode(model):
                device = model_device(model)
                ids, mask = rows.input_ids[part].to(device), rows.attention_mask[part].to(device)
                run_until(model, module, input_ids=ids, attention_mask=mask)
        finally:
            handle.remove()
        states = store["states"]
        positions = rows.subject_position[part].to(states.device)
        collected.append(states[torch.arange(states.shape[0], device=states.device), positions].float())
    return _average_by_request(torch.cat(collected), rows.request_index, len(requests)).cpu()


def compute_keys(
    model, tokenizer, architecture: Architecture, requests: list[EditRequest], layer: int, *, batch_size: int = 256
) -> torch.Tensor:
    """Keys (d_k, n) in float32: the MLP projection's input at the subject's last token, averaged over contexts."""
    return subject_states(model, tokenizer, architecture, requests, layer, "key", contexts=True, batch_size=batch_size)
