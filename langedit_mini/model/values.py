"""Target values ``z``: what the residual stream at layer L must hold for the model to say o* (reference, section 3).

For each request a vector ``delta_i`` (d_v) is added to the output of block L at the subject's last
token, in the bare prompt and every prefixed prompt of the request, and optimised with Adam so the
model predicts the target tokens (``ValueSettings.site``: where a norm follows the MLP output, Gemma 2
and 3, ``delta_i`` can go into the MLP output before it instead). Loss per request:

    mean NLL of the target tokens over its prompts
    + kl_factor * KL(edited || original) of the next token after "{subject} is a" (its language)
    + weight_decay * ||delta_i||^2 / ||h_i||^2

After each step ``||delta_i|| <= clamp_norm_factor * ||h_i||``. The whole batch is optimised
together; a request whose NLL falls below ``stop_nll`` is frozen (its delta no longer changes) and
its rows leave the batch, so early stopping is per request and a finished request costs nothing.
``z_i = h_i + delta_i`` with ``h_i`` the original output of block L at the subject's last token of
the bare prompt. Seeded and deterministic on CPU; the model's weights are never changed.

Nothing is computed twice (reference, section 3): ``delta`` enters at block L at the subject's last token, so
under causal attention every state before that position, and every state of blocks 0..L, is the same at every
step. They are computed once; a step runs only the positions from the subject's last token to the last one the
loss reads, through the blocks after L (``_SuffixForward``), and, for a large vocabulary
(``FULL_HEAD_VOCABULARY``), the LM head only at the positions whose prediction the loss reads (with 262,144
tokens, Gemma 3, the head over every position costs more than the blocks). The reference recipe, every token
through every block at every step, stays available (``ValueSettings.reuse_prefix=False``) and the two agree to
rounding (tests/test_values.py, benchmarks/values.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from langedit_mini.data.datasets import EditRequest
from langedit_mini.data.languages import KL_PROMPTS
from langedit_mini.model.architecture import (
    Architecture,
    check_layer,
    get_module,
    layer_state,
    mlp_out_module,
    num_layers,
    optimising_only,
    output_norm,
    selected_logits,
    through_norm,
)
from langedit_mini.model.keys import (
    EncodedRows,
    check_context_length,
    context_texts,
    encode_rows,
    subject_states,
)
from langedit_mini.model.tokens import model_device

#: Where the value step adds ``delta``: "residual", the residual stream after block L (``z = h + delta``, as the
#: reference code does); "mlp", block L's MLP output before the norm that follows it in Gemma 2 and 3
#: (``post_feedforward_layernorm``), so that block L alone can make ``z``. Without such a norm the two are one place.
VALUE_SITES = ("residual", "mlp")


@dataclass
class ValueSettings:
    learning_rate: float = 0.5  # v_lr
    steps: int = 25  # v_num_grad_steps
    stop_nll: float = 0.05  # a request stops when its mean target NLL is below this
    kl_factor: float = 0.0625
    weight_decay: float = 0.5
    clamp_norm_factor: float = 0.75
    # Compute once what delta cannot change (the prefix, blocks 0..L) and run only the rest at each step;
    # the same values up to rounding. False: every token through every block at every step, the
    # reference code's recipe (kept for comparison, and for a model where the cached prefix misbehaves).
    reuse_prefix: bool = True
    # Where delta is added (VALUE_SITES). On Gemma-3-270M the residual stream reached every target of G1's
    # batches and the MLP output 73 of 84 (chapter 03b): a norm's outputs lie on one ellipsoid, which bounds
    # how far one layer moves the residual stream; the write spreads the residual change over the band.
    site: str = "residual"

    def validate(self) -> ValueSettings:
        for name in ("learning_rate", "stop_nll", "clamp_norm_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ValueSettings.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("kl_factor", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ValueSettings.{name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.reuse_prefix, bool):
            raise ValueError(f"ValueSettings.reuse_prefix must be True or False, got {self.reuse_prefix!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"ValueSettings.steps must be a positive integer, got {self.steps!r}")
        if self.site not in VALUE_SITES:
            raise ValueError(f"ValueSettings.site must be one of {', '.join(VALUE_SITES)}, got {self.site!r}")
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
    progress: bool = False,
) -> TargetValues:
    """Optimise ``delta_i`` for every request at once; returns ``z = h + delta`` (d_v, n).

    ``progress``: a progress bar over the steps, with the requests still optimising and their mean NLL.

    With ``settings.reuse_prefix`` (default) what ``delta`` cannot change is computed once, before
    the first step (``_SuffixForward``); otherwise every token of every row runs through the whole
    model at every step, the reference code's recipe. Architectures whose models cannot take a
    cached prefix (``Architecture.prefix_cache``) always run the reference recipe.
    """
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
    hidden = subject_states(model, tokenizer, architecture, requests, layer, "hidden")  # (d_v, n)
    batch = _optimisation_rows(rows, spans, kl_rows, len(requests), device)
    blocks = [get_module(model, architecture.layer.format(layer=index)) for index in range(layer + 1)]
    # Where delta is added (settings.site): the residual stream after block L, or, where a norm stands between
    # the MLP's output and the residual (Gemma 2 and 3) and the site is "mlp", the MLP's output m before it.
    norm = output_norm(model, architecture, layer) if settings.site == "mlp" else None
    memory = mlp_out_module(model, architecture, layer) if norm is not None else None
    scale = hidden if norm is None else subject_states(model, tokenizer, architecture, requests, layer, "memory")
    with optimising_only(model):  # gradients for delta alone
        if settings.reuse_prefix and architecture.prefix_cache:
            forward = _SuffixForward(model, architecture, blocks, batch, memory=memory, norm=norm)
        else:
            forward = _FullForward(model, memory if memory is not None else blocks[-1], batch)
        delta, final_nll, steps_taken = _optimise_deltas(forward, batch, scale, settings, device, progress)
    if norm is None:
        z = hidden + delta.T.cpu()
    else:  # the residual stream delta moves through the norm
        with torch.no_grad():
            moved = through_norm(norm, scale.T.to(device, norm.weight.dtype), delta.to(norm.weight.dtype))
        z = hidden + moved.T.float().cpu()
    return TargetValues(z, hidden, final_nll.cpu().tolist(), steps_taken.cpu().tolist())


class _FullForward:
    """The reference recipe: each step runs every token of the selected rows through the whole model, with
    ``delta`` added to block L's output (or to the MLP output of a normalised architecture: ``block`` is
    then that module) at each row's subject position by a forward hook."""

    through = None  # delta enters the model itself; nothing to carry through a norm by hand

    def __init__(self, model, block, batch: _OptimisationRows):
        self.model, self.block, self.batch = model, block, batch
        with torch.no_grad():
            logits = model(input_ids=batch.kl_ids, attention_mask=batch.kl_mask).logits
        n = batch.kl_ids.shape[0]
        self.original_kl = logits[torch.arange(n, device=logits.device), batch.kl_last].float().log_softmax(-1)

    def __call__(self, selected, shift, rows, positions) -> torch.Tensor:
        """Logits (k, vocab) at ``positions`` of ``rows`` (row coordinates of the batch), with
        ``shift(states, positions)`` applied to block L's output of the ``selected`` rows."""
        batch = self.batch
        subject = batch.positions[selected]
        handle = self.block.register_forward_hook(lambda module, inputs, output: _with_states(output, shift, subject))
        try:
            width = int(batch.mask[selected].sum(1).max())  # right-padded: drop all-padding columns
            logits = self.model(
                input_ids=batch.ids[selected, :width], attention_mask=batch.mask[selected, :width]
            ).logits
        finally:
            handle.remove()
        return logits[_slots(selected, batch.ids.shape[0])[rows], positions]


class _SuffixForward:
    """Each step runs only what ``delta`` can change (causal attention): the positions from the subject's
    last token to the last one whose prediction the loss reads, through the blocks after L.

    Before the first step one pass without gradients runs every row once and keeps (a) every layer's
    attention keys and values of the positions before the subject's last token (the prefix), and (b) the
    output of block L at the later positions. A step then feeds each row's suffix with its prefix as a
    cache (explicit position ids, the prefix's padding masked), and blocks 0..L return their stored
    outputs instead of computing (block L's with ``delta`` added at the suffix's first position). Rows
    are run in a few groups of similar suffix length (``_length_groups``) so little of a pass is
    padding. The loss sees the same logits as the reference recipe up to rounding.
    """

    def __init__(self, model, architecture: Architecture, blocks, batch: _OptimisationRows, *, memory=None, norm=None):
        self.model, self.architecture, self.blocks, self.batch = model, architecture, blocks, batch
        self.through = None  # identity: delta joins block L's output as it is
        device = batch.ids.device
        self.start = batch.positions  # the subject's last token: the first position delta changes
        last = batch.positions.clone()  # the last position whose logits the loss reads, per row
        last.scatter_reduce_(0, batch.target_rows, batch.target_from, reduce="amax")
        kl_rows = torch.arange(batch.kl_ids.shape[0], device=device) + batch.prompt_rows
        last[kl_rows] = torch.maximum(last[kl_rows], batch.kl_last)
        self.widths = last - self.start + 1
        prefix_width = int(self.start.max())
        kl_position = torch.zeros_like(self.start)
        kl_position[kl_rows] = batch.kl_last
        self.vocabulary = _vocabulary_size(model)
        self.selected = self.vocabulary > FULL_HEAD_VOCABULARY  # the head only where the loss reads
        stored, prefix, states, picked, memories = {}, [], [], [], []
        handle = blocks[-1].register_forward_hook(lambda m, i, output: stored.__setitem__("states", output))
        if memory is not None:  # block L's MLP output before its norm, to carry delta through the norm
            memory_handle = memory.register_forward_hook(lambda m, i, output: stored.__setitem__("memory", output))
        try:
            # In parts, so that no pass holds more than LOGITS_BUDGET logits.
            for part in torch.arange(len(self.start), device=device).split(
                self._rows_within_budget(batch.ids.shape[1])
            ):
                kl_in_part = (part >= batch.prompt_rows).nonzero().squeeze(1)  # only the KL rows' logits are read
                inputs = dict(input_ids=batch.ids[part], attention_mask=batch.mask[part], use_cache=True)
                with torch.no_grad():
                    if self.selected:
                        logits, output = selected_logits(
                            model, architecture, kl_in_part, kl_position[part][kl_in_part], with_output=True, **inputs
                        )
                    else:
                        output = model(**inputs)
                        logits = output.logits[kl_in_part, kl_position[part][kl_in_part]]
                prefix.append(
                    [(keys[:, :, :prefix_width], values[:, :, :prefix_width]) for keys, values, *_ in output.cache]
                )
                states.append(layer_state(stored["states"]))
                picked.append(logits)
                if memory is not None:
                    memories.append(stored["memory"][torch.arange(len(part), device=device), self.start[part]])
        finally:
            handle.remove()
            if memory is not None:
                memory_handle.remove()
        self.prefix = [
            (torch.cat([p[i][0] for p in prefix]), torch.cat([p[i][1] for p in prefix])) for i in range(len(prefix[0]))
        ]
        self.block_structure = stored["states"]
        self.block_states = torch.cat(states)  # (rows, T, d): block L's output, unedited
        self.original_kl = torch.cat(picked).float().log_softmax(-1)  # the parts keep the rows' order
        if memory is not None:
            at_subject = torch.cat(memories)  # (rows, d_v): m at each row's subject position, unedited

            def through(deltas, rows):  # what delta added to m does to block L's output: norm(m + d) - norm(m)
                return through_norm(norm, at_subject[rows], deltas.to(at_subject.dtype))

            self.through = through

    def __call__(self, selected, shift, rows, positions) -> torch.Tensor:
        """Logits (k, vocab) at ``positions`` of ``rows`` (row coordinates of the batch), with
        ``shift(states, positions)`` applied to block L's output of the ``selected`` rows."""
        outputs, order = [], []
        groups = _length_groups(self.widths[selected])
        parts = [
            part
            for members in groups
            for part in members.split(self._rows_within_budget(int(self.widths[selected][members].max())))
        ]
        for members in parts:
            group = selected[members]
            place = _slots(group, self.batch.ids.shape[0])  # batch row -> its row in this group's pass
            wanted = (place[rows] >= 0).nonzero().squeeze(1)  # the requested logits this group holds
            outputs.append(
                self._run(group, members, shift, place[rows[wanted]], positions[wanted] - self.start[rows[wanted]])
            )
            order.append(wanted)
        return torch.cat(outputs)[torch.argsort(torch.cat(order))]

    def _rows_within_budget(self, width: int) -> int:
        return max(1, LOGITS_BUDGET // (width * self.vocabulary))

    def _run(self, group, members, shift, rows, columns_asked) -> torch.Tensor:
        """Logits (k, vocab) of the group's suffixes at ``(rows[i], columns_asked[i])`` (a row of the group, a
        column of its suffix); for a large vocabulary the LM head runs nowhere else. ``members`` index ``selected``."""
        device = group.device
        start, width = self.start[group], int(self.widths[group].max())
        prefix_width = int(start.max())
        lengths = self.batch.mask[group].sum(1)
        columns = torch.arange(width, device=device)
        # Column j of a row is its position start + j (clamped inside the row; masked past its width).
        gather = torch.minimum(start[:, None] + columns, lengths[:, None] - 1)
        suffix_mask = (columns[None, :] < self.widths[group][:, None]).long()
        prefix_mask = (torch.arange(prefix_width, device=device)[None, :] < start[:, None]).long()
        cache = DynamicCache(
            ddp_cache_data=[(k[group, :, :prefix_width], v[group, :, :prefix_width]) for k, v in self.prefix],
            config=self.model.config,
        )
        states = self.block_states[group]
        stored = states.gather(1, gather[:, :, None].expand(-1, -1, states.shape[-1]))
        first = torch.zeros(len(group), dtype=torch.long, device=device)

        def passed_through(*args, **kwargs):  # blocks before L: their output is never read
            hidden = args[0] if args else kwargs["hidden_states"]
            return _with_states(self.block_structure, lambda s, p: hidden, None)

        def stored_output(*args, **kwargs):
            return _with_states(self.block_structure, lambda s, p: shift(s, p, members), first, stored)

        inputs = dict(
            input_ids=self.batch.ids[group].gather(1, gather),
            attention_mask=torch.cat([prefix_mask, suffix_mask], dim=1),
            position_ids=gather,
            cache=cache,
            use_cache=True,
        )
        with _forwards_replaced(self.blocks, [passed_through] * (len(self.blocks) - 1) + [stored_output]):
            if self.selected:
                return selected_logits(self.model, self.architecture, rows, columns_asked, **inputs)
            return self.model(**inputs).logits[rows, columns_asked]


def _slots(selected: torch.Tensor, count: int) -> torch.Tensor:
    """Batch row -> its index in ``selected`` (-1 for rows not selected)."""
    slot = torch.full((count,), -1, dtype=torch.long, device=selected.device)
    slot[selected] = torch.arange(len(selected), device=selected.device)
    return slot


#: The most rows x positions x vocabulary one pass of ``_SuffixForward`` runs (1 GiB of logits in float32, when
#: every position has its logits; for a large vocabulary the head runs only where the loss reads, and the split
#: is kept as it was).
LOGITS_BUDGET = 2**28


def _vocabulary_size(model) -> int:
    head = model.get_output_embeddings()
    return int(head.weight.shape[0]) if head is not None else int(model.config.get_text_config().vocab_size)


#: Vocabularies up to this size get logits at every position of a pass, as the committed pocket runs were made
#: (1,024 tokens); larger ones only at the positions the loss reads (``architecture.selected_logits``): SmolLM2
#: (49,152) and Gemma 3 (262,144). The two agree to float32 rounding, not bit for bit (a product over fewer rows
#: rounds otherwise), and sequential editing can turn such a difference into a flipped score, so a model's path
#: is fixed by its vocabulary, never by a batch.
FULL_HEAD_VOCABULARY = 2**15


#: What one more model call costs, in padded token positions: ``_length_groups`` splits the rows
#: into another group only where that saves more padding than this.
GROUP_COST = 64


def _length_groups(widths: torch.Tensor, group_cost: int = GROUP_COST) -> list[torch.Tensor]:
    """Indices of ``widths`` split into groups of similar width, minimising the padded positions
    (rows x the group's widest) plus ``group_cost`` per group (dynamic programming over the sorted
    distinct widths)."""
    order = torch.argsort(widths, stable=True)
    sorted_widths = widths[order].tolist()
    distinct = sorted(set(sorted_widths))
    ends = [sum(1 for w in sorted_widths if w <= value) for value in distinct]  # rows up to each width
    best = [0.0] + [float("inf")] * len(distinct)  # best[i]: cost of the rows of the i narrowest widths
    cut = [0] * (len(distinct) + 1)
    for i in range(1, len(distinct) + 1):
        for j in range(i):
            rows = ends[i - 1] - (ends[j - 1] if j else 0)
            cost = best[j] + rows * distinct[i - 1] + group_cost
            if cost < best[i]:
                best[i], cut[i] = cost, j
    groups, i = [], len(distinct)
    while i > 0:
        j = cut[i]
        groups.append(order[(ends[j - 1] if j else 0) : ends[i - 1]])
        i = j
    return groups[::-1]


def _with_states(output, shift, positions, states=None):
    """``output`` of a block (a tensor or a tuple led by one) with its states replaced by
    ``shift(states, positions)``, ``states`` defaulting to the output's own."""
    states = shift(layer_state(output) if states is None else states, positions)
    return (states,) + tuple(output[1:]) if isinstance(output, tuple) else states


@contextmanager
def _forwards_replaced(modules, forwards):
    """Each module's ``forward`` replaced for the block (forward hooks still run); restored after."""
    previous = [module.__dict__.get("forward") for module in modules]
    for module, forward in zip(modules, forwards):
        module.forward = forward
    try:
        yield
    finally:
        for module, old in zip(modules, previous):
            if old is None:
                del module.forward
            else:
                module.forward = old


def _optimise_deltas(
    forward, batch: _OptimisationRows, hidden: torch.Tensor, settings: ValueSettings, device, progress: bool = False
):
    """Adam on ``delta`` (n, d_v), added to block L's output at each row's subject position; per request:
    NLL of its targets + KL on its KL row + weight decay, clamped, frozen once its NLL is small. Returns
    ``(delta, final_nll, steps_taken)``; the model is unchanged."""
    n, d_v = hidden.shape[1], hidden.shape[0]
    delta = torch.zeros(n, d_v, device=device, requires_grad=True)
    hidden_norm = hidden.norm(dim=0).to(device)  # (n,)
    target_owner = batch.target_owner

    def shift(states, positions, members=None):
        """``states`` with each selected row's request's delta added at ``positions`` (``members``:
        which of the selected rows these are, default all); through the norm when the forward says so."""
        owners = current_owners if members is None else current_owners[members]
        change = delta[owners]
        if forward.through is not None:
            change = forward.through(change, selected if members is None else selected[members])
        added = torch.zeros_like(states)
        added[torch.arange(states.shape[0], device=device), positions] = change.to(states.dtype)
        return states + added

    optimizer = torch.optim.Adam([delta], lr=settings.learning_rate)
    active = torch.ones(n, dtype=torch.bool, device=device)
    final_nll = torch.zeros(n, device=device)
    steps_taken = torch.zeros(n, dtype=torch.long, device=device)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.steps, desc=f"target values, {n} requests", leave=False)
    for _ in range(settings.steps):
        # Only the rows of requests still optimising take part: a frozen request's loss no
        # longer matters, and rows never interact, so leaving them out changes nothing else.
        selected = active[batch.owners].nonzero().squeeze(1)
        current_owners = batch.owners[selected]
        live_targets = active[target_owner]
        live = active.nonzero().squeeze(1)
        rows = torch.cat([batch.target_rows[live_targets], batch.prompt_rows + live])
        positions = torch.cat([batch.target_from[live_targets], batch.kl_last[live]])
        logits = forward(selected, shift, rows, positions).float()
        targets = int(live_targets.sum())
        log_probs = logits[:targets].log_softmax(-1)
        token_nll = -log_probs[torch.arange(targets, device=device), batch.target_tokens[live_targets]]
        nll = torch.zeros(n, device=device).index_add(0, target_owner[live_targets], token_nll)
        nll = nll / batch.tokens_per_request
        edited_kl = logits[targets:].log_softmax(-1)
        kl = torch.zeros(n, device=device)
        kl[live] = torch.nn.functional.kl_div(
            forward.original_kl[live], edited_kl, log_target=True, reduction="none"
        ).sum(-1)
        decay = (delta.norm(dim=1) / hidden_norm) ** 2
        per_request = nll + settings.kl_factor * kl + settings.weight_decay * decay
        final_nll = torch.where(active, nll.detach(), final_nll)
        steps_taken += active.long()
        active = active & (nll.detach() >= settings.stop_nll)
        if bar is not None:
            bar.update()
            bar.set_postfix(
                left=int(active.sum()), nll=f"{float(nll.detach()[active].mean()) if active.any() else 0:.3f}"
            )
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
            delta.mul_(torch.where(norms > limit, limit / norms.clamp_min(1e-12), torch.ones_like(norms))[:, None])
    if bar is not None:
        bar.close()
    return delta.detach(), final_nll, steps_taken
