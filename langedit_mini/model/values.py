"""Target values ``z``: what the residual stream at layer L must hold for the model to say o* (reference, section 3).

For each request a vector ``delta_i`` (d_v) is added to the output of block L at the subject's last
token, in the bare prompt and every prefixed prompt of the request, and optimised with Adam so the
model predicts the target tokens. Loss per request:

    mean NLL of the target tokens over its prompts
    + kl_factor * KL(edited || original) of the next token after "{subject} is a" (its language)
    + weight_decay * ||delta_i||^2 / ||h_i||^2

After each step ``||delta_i|| <= clamp_norm_factor * ||h_i||``. The whole batch runs in one forward
and backward pass per step; a request whose NLL falls below ``stop_nll`` is frozen (its delta no
longer changes), so early stopping is per request. ``z_i = h_i + delta_i`` with ``h_i`` the
original output of block L at the subject's last token of the bare prompt. Seeded and
deterministic on CPU; the model's weights are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from langedit_mini.data.datasets import EditRequest
from langedit_mini.data.languages import KL_PROMPTS
from langedit_mini.model.architecture import Architecture, check_layer, get_module, num_layers, optimising_only
from langedit_mini.model.keys import (
    EncodedRows,
    check_context_length,
    compute_hidden,
    context_texts,
    encode_rows,
    layer_output,
)
from langedit_mini.model.tokens import model_device


@dataclass
class ValueSettings:
    learning_rate: float = 0.5  # v_lr
    steps: int = 25  # v_num_grad_steps
    stop_nll: float = 0.05  # a request stops when its mean target NLL is below this
    kl_factor: float = 0.0625
    weight_decay: float = 0.5
    clamp_norm_factor: float = 0.75

    def validate(self) -> ValueSettings:
        for name in ("learning_rate", "stop_nll", "clamp_norm_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ValueSettings.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("kl_factor", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ValueSettings.{name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"ValueSettings.steps must be a positive integer, got {self.steps!r}")
        return self


@dataclass
class TargetValues:
    z: torch.Tensor  # (d_v, n) float32
    hidden: torch.Tensor  # (d_v, n) h_i, the original output of block L
    final_nll: list[float]  # per request, at the last step it took
    steps_taken: list[int]  # per request


def _target_rows(tokenizer, requests: list[EditRequest]):
    """Rows: every context of every request followed by its target tokens (teacher forcing), then KL rows."""
    texts, last_chars, owners, suffixes, target_spans = [], [], [], [], []
    for index, request in enumerate(requests):
        target_ids = tokenizer(request.joiner + request.target, add_special_tokens=False)["input_ids"]
        if not target_ids:
            raise ValueError(f"target {request.target!r} of request {request.fact_id or index} tokenizes to nothing")
        for text, last_char in context_texts(request):
            texts.append(text)
            last_chars.append(last_char)
            owners.append(index)
            suffixes.append(target_ids)
    rows = encode_rows(tokenizer, texts, last_chars, owners, suffixes)
    for length, suffix in zip(rows.lengths, suffixes):
        target_spans.append((length - len(suffix), length))  # positions of the target tokens in the row
    kl_texts, kl_chars = [], []
    for request in requests:
        before = KL_PROMPTS[request.lang].split("{}")[0]
        kl_texts.append(KL_PROMPTS[request.lang].format(request.subject))
        kl_chars.append(len(before + request.subject) - 1)
    kl_rows = encode_rows(tokenizer, kl_texts, kl_chars, list(range(len(requests))))
    return rows, target_spans, kl_rows


@dataclass
class _OptimisationRows:
    """Every row one optimisation step runs, on the model's device: the prompts with their target tokens,
    then one KL row per request, padded to one width."""

    ids: torch.Tensor  # (rows + n, T)
    mask: torch.Tensor  # (rows + n, T)
    owners: torch.Tensor  # (rows + n,) the request of each row
    positions: torch.Tensor  # (rows + n,) the subject's last token of each row
    prompt_rows: int  # rows before the KL rows
    kl_ids: torch.Tensor  # (n, T_kl) the KL rows alone, for the unedited distribution
    kl_mask: torch.Tensor
    kl_last: torch.Tensor  # (n,) the KL row's last position
    target_rows: torch.Tensor  # (targets,) per target token: its row,
    target_from: torch.Tensor  # the position that predicts it,
    target_tokens: torch.Tensor  # its id,
    target_owner: torch.Tensor  # and its request
    tokens_per_request: torch.Tensor  # (n,) float


def _optimisation_rows(rows: EncodedRows, spans, kl_rows: EncodedRows, n: int, device) -> _OptimisationRows:
    ids, mask = rows.input_ids.to(device), rows.attention_mask.to(device)
    kl_ids, kl_mask = kl_rows.input_ids.to(device), kl_rows.attention_mask.to(device)
    width = max(ids.shape[1], kl_ids.shape[1])

    def padded(tensor):
        return torch.nn.functional.pad(tensor, (0, width - tensor.shape[1]))

    # Target tokens and where they are predicted from (the position before each target token).
    target_rows, target_from, target_tokens, target_owner = [], [], [], []
    for row, (start, end) in enumerate(spans):
        for position in range(start, end):
            target_rows.append(row)
            target_from.append(position - 1)
            target_tokens.append(int(rows.input_ids[row, position]))
            target_owner.append(int(rows.request_index[row]))
    target_owner = torch.tensor(target_owner, device=device)
    return _OptimisationRows(
        ids=torch.cat([padded(ids), padded(kl_ids)]),
        mask=torch.cat([padded(mask), padded(kl_mask)]),
        owners=torch.cat([rows.request_index.to(device), torch.arange(n, device=device)]),
        positions=torch.cat([rows.subject_position.to(device), kl_rows.subject_position.to(device)]),
        prompt_rows=ids.shape[0],
        kl_ids=kl_ids,
        kl_mask=kl_mask,
        kl_last=torch.tensor([length - 1 for length in kl_rows.lengths], device=device),
        target_rows=torch.tensor(target_rows, device=device),
        target_from=torch.tensor(target_from, device=device),
        target_tokens=torch.tensor(target_tokens, device=device),
        target_owner=target_owner,
        tokens_per_request=torch.bincount(target_owner, minlength=n).float(),
    )


def compute_target_values(
    model,
    tokenizer,
    architecture: Architecture,
    requests: list[EditRequest],
    layer: int,
    settings: ValueSettings | None = None,
    *,
    seed: int = 0,
) -> TargetValues:
    """Optimise ``delta_i`` for every request at once; returns ``z = h + delta`` (d_v, n)."""
    settings = (settings or ValueSettings()).validate()
    check_layer(model, architecture, layer)
    if layer == num_layers(model, architecture) - 1:
        raise ValueError(
            f"target values at layer {layer}, the model's last block, cannot reach the answer: a change at "
            "the subject's position after the last block never reaches a later position. Edit earlier layers"
        )
    device = model_device(model)
    torch.manual_seed(seed)
    rows, spans, kl_rows = _target_rows(tokenizer, requests)
    check_context_length(model, rows, requests)
    hidden = compute_hidden(model, tokenizer, architecture, requests, layer)  # (d_v, n)
    batch = _optimisation_rows(rows, spans, kl_rows, len(requests), device)
    block = get_module(model, architecture.layer.format(layer=layer))
    delta, final_nll, steps_taken = _optimise_deltas(model, block, batch, hidden, settings, device)
    z = hidden + delta.T.cpu()
    return TargetValues(z, hidden, final_nll.cpu().tolist(), steps_taken.cpu().tolist())


def _optimise_deltas(model, block, batch: _OptimisationRows, hidden: torch.Tensor, settings: ValueSettings, device):
    """Adam on ``delta`` (n, d_v), added to ``block``'s output at each row's subject position; per request:
    NLL of its targets + KL on its KL row + weight decay, clamped, frozen once its NLL is small. Returns
    ``(delta, final_nll, steps_taken)``; the model is unchanged."""
    n, d_v = hidden.shape[1], hidden.shape[0]
    delta = torch.zeros(n, d_v, device=device, requires_grad=True)
    hidden_norm = hidden.norm(dim=0).to(device)  # (n,)
    target_owner = batch.target_owner

    current = {}  # the rows of this step: their owners and subject positions

    def add_delta(module, inputs, output):
        states = layer_output(output)
        shift = torch.zeros_like(states)
        shift[torch.arange(states.shape[0], device=device), current["positions"]] = delta[current["owners"]].to(
            states.dtype
        )
        states = states + shift
        return (states,) + tuple(output[1:]) if isinstance(output, tuple) else states

    with optimising_only(model):  # gradients for delta alone
        with torch.no_grad():
            original_logits = model(input_ids=batch.kl_ids, attention_mask=batch.kl_mask).logits
            original_kl = original_logits[torch.arange(n, device=device), batch.kl_last].float().log_softmax(-1)
        optimizer = torch.optim.Adam([delta], lr=settings.learning_rate)
        active = torch.ones(n, dtype=torch.bool, device=device)
        final_nll = torch.zeros(n, device=device)
        steps_taken = torch.zeros(n, dtype=torch.long, device=device)
        handle = block.register_forward_hook(add_delta)
        try:
            for _ in range(settings.steps):
                # Only the rows of requests still optimising take part: a frozen request's loss no
                # longer matters, and rows never interact, so leaving them out changes nothing else.
                selected = active[batch.owners].nonzero().squeeze(1)
                slot = torch.full((batch.ids.shape[0],), -1, dtype=torch.long, device=device)
                slot[selected] = torch.arange(len(selected), device=device)
                current["owners"], current["positions"] = batch.owners[selected], batch.positions[selected]
                width = int(batch.mask[selected].sum(1).max())  # right-padded: drop all-padding columns
                logits = model(
                    input_ids=batch.ids[selected, :width], attention_mask=batch.mask[selected, :width]
                ).logits.float()
                live_targets = active[target_owner]
                log_probs = logits[slot[batch.target_rows[live_targets]], batch.target_from[live_targets]].log_softmax(
                    -1
                )
                token_nll = -log_probs[
                    torch.arange(int(live_targets.sum()), device=device), batch.target_tokens[live_targets]
                ]
                nll = torch.zeros(n, device=device).index_add(0, target_owner[live_targets], token_nll)
                nll = nll / batch.tokens_per_request
                live = active.nonzero().squeeze(1)
                edited_kl = logits[slot[batch.prompt_rows + live], batch.kl_last[live]].log_softmax(-1)
                kl = torch.zeros(n, device=device)
                kl[live] = torch.nn.functional.kl_div(
                    original_kl[live], edited_kl, log_target=True, reduction="none"
                ).sum(-1)
                decay = (delta.norm(dim=1) / hidden_norm) ** 2
                per_request = nll + settings.kl_factor * kl + settings.weight_decay * decay
                final_nll = torch.where(active, nll.detach(), final_nll)
                steps_taken += active.long()
                active = active & (nll.detach() >= settings.stop_nll)
                if not active.any():
                    break
                frozen = delta.detach().clone()
                optimizer.zero_grad()
                (per_request * active).sum().backward()
                optimizer.step()
                with torch.no_grad():
                    delta.copy_(torch.where(active[:, None], delta, frozen))  # finished requests stay put
                    limit = settings.clamp_norm_factor * hidden_norm
                    norms = delta.norm(dim=1)
                    delta.mul_(
                        torch.where(norms > limit, limit / norms.clamp_min(1e-12), torch.ones_like(norms))[:, None]
                    )
        finally:
            handle.remove()
    return delta.detach(), final_nll, steps_taken
