"""Sequential editing of a transformers causal LM: FT, MEMIT, AlphaEdit, LangEdit (published and exact).

One interface for every method (SPEC sections 3 and 4):

    session = EditingSession(model, tokenizer, EditConfig(method="LangEdit-exact", layers=(1, 2)), statistics)
    record = session.apply(requests)     # one batch; returns what was written
    session.rollback()                   # undo the last batch (or rollback_language("de"))

* The session edits a deep copy of the model unless ``in_place=True``; the caller's model and
  requests are never changed otherwise.
* It owns all sequential state: one ``UpdateRule`` per edited layer (the running ``Kp Kp^T``,
  the blended covariance, or the protected basis). Two sessions never share it.
* For the closed-form methods a batch is written layer by layer (MEMIT's spreading): target values
  ``z`` at the last edited layer ``L``; then for layer ``l_j`` the keys and the current ``H_L``
  are recomputed on the partly edited model, ``R = (Z - H_L) / (m - j + 1)``, and the rule's
  update is added to the layer's matrix, in the model's dtype (solves run in float64).
* Capacity: before anything is written, each layer's rule is asked whether the batch fits; a
  CapacityError says which layer and the numbers.
* Records hold every layer's update and keys; they can be saved (safetensors + JSON metadata),
  re-applied to a fresh model, and rolled back (exactly: the original weights are restored and the
  kept records replayed in order).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .datasets import EditRequest
from .keys import compute_hidden, compute_keys
from .model_access import Architecture, check_layer, detect_architecture, edited_weight
from .projection import tau_for_leftover
from .stats import SecondMoment
from .updates import AlphaEditRule, LangEditExactRule, LangEditPublishedRule, MemitRule, UpdateRule
from .validation import SOLVE_DTYPE, CapacityError
from .values import ValueSettings, compute_target_values

METHODS = ("FT", "MEMIT", "AlphaEdit", "LangEdit-published", "LangEdit-exact")


@dataclass
class EditConfig:
    method: str                              # one of METHODS
    layers: tuple[int, ...]                  # edited layers, ascending; the last is L (target values)
    values: ValueSettings = field(default_factory=ValueSettings)
    mom2_weight: float = 1.0                 # MEMIT's lambda on C0 (C0 is a mean, K K^T a sum)
    tau: float | None = None                 # absolute eigenvalue cut; or
    leftover_fraction: float | None = 0.05   # the cut whose discarded eigenvalues hold this share of trace(C0)
    alpha: float = 10.0                      # AlphaEdit/LangEdit regulariser
    basis_rtol: float | None = None          # LangEdit-exact: tolerance for new basis directions
    ft_learning_rate: float = 5e-3           # FT: Adam on the edited matrices
    ft_steps: int = 40
    ft_norm_constraint: float = 5e-2         # FT: |W - W0| <= this, elementwise (as ROME's FT-L)
    seed: int = 0

    def validate(self, model=None, architecture: Architecture | None = None) -> "EditConfig":
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if not self.layers or list(self.layers) != sorted(set(self.layers)):
            raise ValueError(f"layers must be a non-empty ascending tuple of distinct layers, got {self.layers!r}")
        if (self.tau is None) == (self.leftover_fraction is None) and self.method not in ("FT", "MEMIT"):
            raise ValueError("give exactly one of tau (absolute cut) and leftover_fraction (share of trace(C0))")
        for name in ("mom2_weight", "alpha", "ft_learning_rate", "ft_norm_constraint"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EditConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not isinstance(self.ft_steps, int) or self.ft_steps < 1:
            raise ValueError(f"EditConfig.ft_steps must be a positive integer, got {self.ft_steps!r}")
        self.values.validate()
        if model is not None:
            for layer in self.layers:
                check_layer(model, architecture or detect_architecture(model), layer)
        return self


@dataclass
class BatchRecord:
    """What one batch wrote: per-layer updates (d_v, d_k) and keys (d_k, n), and how it went."""

    index: int
    method: str
    request_ids: list[str]
    languages: list[str]
    deltas: dict[int, torch.Tensor]
    keys: dict[int, torch.Tensor]
    seconds: dict[str, float]
    capacity_left: dict[int, int | None]
    value_nll: list[float]

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        tensors = {f"delta.{layer}": d.contiguous() for layer, d in self.deltas.items()}
        tensors |= {f"keys.{layer}": k.contiguous() for layer, k in self.keys.items()}
        metadata = {k: v for k, v in asdict(self).items() if k not in ("deltas", "keys")}
        save_file(tensors, str(path), metadata={"record": json.dumps(metadata)})

    @classmethod
    def load(cls, path: str | Path) -> "BatchRecord":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = json.loads(handle.metadata()["record"])
            deltas, keys = {}, {}
            for name in handle.keys():
                kind, layer = name.split(".")
                (deltas if kind == "delta" else keys)[int(layer)] = handle.get_tensor(name)
        metadata["capacity_left"] = {int(k): v for k, v in metadata["capacity_left"].items()}
        return cls(deltas=deltas, keys=keys, **metadata)


def check_batch(requests: list[EditRequest]) -> list[EditRequest]:
    """Refuse an empty batch, duplicate requests, and two different targets for one prompt and subject."""
    if not requests:
        raise ValueError("empty batch: give at least one EditRequest")
    seen = {}
    for request in requests:
        if not isinstance(request, EditRequest):
            raise TypeError(f"expected EditRequest objects, got {type(request).__name__}")
        key = (request.prompt, request.subject, request.lang)
        if key in seen:
            other = seen[key]
            if other.target == request.target:
                raise ValueError(f"duplicate request in batch: {request.question!r} -> {request.target!r}")
            raise ValueError(f"conflicting targets in batch for {request.question!r}: "
                             f"{other.target!r} and {request.target!r}")
        seen[key] = request
    return requests


def add_to_weight(model, architecture: Architecture, layer: int, delta: torch.Tensor, sign: float = 1.0) -> None:
    """``W += sign * delta`` for delta (d_v, d_k), in the weight's dtype and device (transposed for Conv1D)."""
    weight = edited_weight(model, architecture, layer)
    update = delta.T if architecture.transposed else delta
    with torch.no_grad():
        weight.add_(update.to(device=weight.device, dtype=weight.dtype), alpha=sign)


class EditingSession:
    """Sequential edits with one method on one model; owns all state between batches."""

    def __init__(self, model, tokenizer, config: EditConfig, statistics: dict[int, SecondMoment] | None = None, *,
                 in_place: bool = False, architecture: Architecture | None = None):
        self.architecture = architecture or detect_architecture(model)
        self.config = config.validate(model, self.architecture)
        if config.method != "FT":
            missing = [layer for layer in config.layers if not statistics or layer not in statistics]
            if missing:
                raise ValueError(f"{config.method} needs the preserved-key statistics of layers {missing} "
                                 "(langedit_mini.stats.key_second_moments)")
        self.model = model if in_place else copy.deepcopy(model)
        self.tokenizer = tokenizer
        self.statistics = statistics or {}
        self.original_weights = {layer: edited_weight(self.model, self.architecture, layer).detach().clone()
                                 for layer in config.layers}
        self.rules = self._fresh_rules()
        self.records: list[BatchRecord] = []

    def _fresh_rules(self) -> dict[int, UpdateRule]:
        config = self.config
        rules = {}
        for layer in config.layers:
            if config.method == "FT":
                continue
            moment = self.statistics[layer]
            covariance = moment.covariance.to(SOLVE_DTYPE)
            tau = config.tau if config.tau is not None else (
                tau_for_leftover(covariance, config.leftover_fraction) if config.method != "MEMIT" else None)
            if config.method == "MEMIT":
                rules[layer] = MemitRule(covariance, mom2_weight=config.mom2_weight)
            elif config.method == "AlphaEdit":
                rules[layer] = AlphaEditRule(covariance, tau=tau, alpha=config.alpha)
            elif config.method == "LangEdit-published":
                rules[layer] = LangEditPublishedRule(covariance, n_samples=moment.n_samples, tau=tau, alpha=config.alpha)
            else:
                rules[layer] = LangEditExactRule(covariance, tau=tau, alpha=config.alpha, rtol=config.basis_rtol)
        return rules

    @property
    def capacity_left(self) -> dict[int, int | None]:
        return {layer: self.rules[layer].capacity_left if layer in self.rules else None
                for layer in self.config.layers}

    def apply(self, requests: list[EditRequest]) -> BatchRecord:
        """Edit one batch into the session's model; returns its record (and keeps it)."""
        requests = check_batch(list(requests))
        seconds = {"keys": 0.0, "values": 0.0, "solve": 0.0, "projector": 0.0, "write": 0.0}
        if self.config.method == "FT":
            deltas, keys, nll = self._fine_tune(requests, seconds)
        else:
            deltas, keys, nll = self._closed_form(requests, seconds)
        record = BatchRecord(len(self.records), self.config.method, [r.fact_id for r in requests],
                             [r.lang for r in requests], deltas, keys, seconds, self.capacity_left, nll)
        self.records.append(record)
        return record

    def _closed_form(self, requests, seconds):
        config, model, tokenizer, architecture = self.config, self.model, self.tokenizer, self.architecture
        layers, last = config.layers, config.layers[-1]
        start = time.perf_counter()
        current_keys = {layer: compute_keys(model, tokenizer, architecture, requests, layer) for layer in layers}
        seconds["keys"] += time.perf_counter() - start
        for layer in layers:  # refuse before writing anything
            rule = self.rules[layer]
            if isinstance(rule, LangEditExactRule):
                try:
                    rule.basis.check_capacity(current_keys[layer].to(SOLVE_DTYPE))
                except CapacityError as error:
                    raise CapacityError(f"layer {layer}: {error}", needed=error.needed,
                                        available=error.available) from None
        start = time.perf_counter()
        values = compute_target_values(model, tokenizer, architecture, requests, last, config.values,
                                       seed=config.seed)
        seconds["values"] += time.perf_counter() - start
        deltas, keys = {}, {}
        for j, layer in enumerate(layers):
            start = time.perf_counter()
            layer_keys = current_keys[layer] if j == 0 else compute_keys(model, tokenizer, architecture, requests, layer)
            hidden = compute_hidden(model, tokenizer, architecture, requests, last)
            seconds["keys"] += time.perf_counter() - start
            residuals = (values.z - hidden) / (len(layers) - j)  # (d_v, n)
            start = time.perf_counter()
            try:
                delta = self.rules[layer].propose(residuals.to(SOLVE_DTYPE), layer_keys.to(SOLVE_DTYPE))
            except CapacityError as error:
                self._restore_written(deltas)
                raise CapacityError(f"layer {layer}: {error}", needed=error.needed, available=error.available) from None
            seconds["solve"] += time.perf_counter() - start
            start = time.perf_counter()
            add_to_weight(model, architecture, layer, delta)
            deltas[layer] = delta.float()
            keys[layer] = layer_keys
            seconds["write"] += time.perf_counter() - start
        start = time.perf_counter()
        for layer in layers:
            self.rules[layer].commit(keys[layer].to(SOLVE_DTYPE))
        seconds["projector"] += time.perf_counter() - start
        return deltas, keys, values.final_nll

    def _restore_written(self, deltas: dict[int, torch.Tensor]) -> None:
        """Undo the layers already written in a batch that failed part-way (nothing is committed)."""
        for layer in self.config.layers:
            if layer in deltas:
                weight = edited_weight(self.model, self.architecture, layer)
                with torch.no_grad():
                    weight.copy_(self.original_weights[layer])
                for record in self.records:
                    add_to_weight(self.model, self.architecture, layer, record.deltas[layer])

    def _fine_tune(self, requests, seconds):
        """FT: Adam on the edited matrices, NLL of the targets after the edit prompts, |W - W0| clamped."""
        from .metrics import encode_pairs

        config, model, architecture = self.config, self.model, self.architecture
        start = time.perf_counter()
        torch.manual_seed(config.seed)
        weights = {layer: edited_weight(model, architecture, layer) for layer in config.layers}
        before = {layer: w.detach().clone() for layer, w in weights.items()}
        prompt_ids, answer_ids = encode_pairs(self.tokenizer, [r.question for r in requests],
                                              [r.target for r in requests], [r.joiner for r in requests])
        from .metrics import _pad, model_device

        sequences = [p + a for p, a in zip(prompt_ids, answer_ids)]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        ids, mask = _pad(sequences, pad, left=False, device=model_device(model))
        labels = torch.full_like(ids, -100)
        for row, (p, a) in enumerate(zip(prompt_ids, answer_ids)):
            labels[row, len(p):len(p) + len(a)] = torch.tensor(a, device=ids.device)
        flags = {name: p.requires_grad for name, p in model.named_parameters()}
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        for weight in weights.values():
            weight.requires_grad_(True)
        optimizer = torch.optim.Adam(list(weights.values()), lr=config.ft_learning_rate)
        was_training = model.training
        model.eval()
        loss = torch.tensor(0.0)
        try:
            for _ in range(config.ft_steps):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    for layer, weight in weights.items():
                        change = (weight - before[layer]).clamp(-config.ft_norm_constraint, config.ft_norm_constraint)
                        weight.copy_(before[layer] + change)
        finally:
            for name, parameter in model.named_parameters():
                parameter.requires_grad_(flags[name])
            model.train(was_training)
        deltas = {}
        for layer, weight in weights.items():
            change = (weight.detach() - before[layer]).float()
            deltas[layer] = change.T if architecture.transposed else change
        seconds["solve"] += time.perf_counter() - start
        return deltas, {}, [loss.item()] * len(requests)

    def rollback(self, batches: int = 1) -> None:
        """Undo the last ``batches`` batches: original weights restored, the kept records replayed in order."""
        if not 0 <= batches <= len(self.records):
            raise ValueError(f"cannot roll back {batches} batches: the session holds {len(self.records)}")
        self._replay(self.records[: len(self.records) - batches])

    def rollback_language(self, language: str) -> int:
        """Undo every batch that edited ``language``; returns how many batches were removed."""
        kept = [r for r in self.records if language not in r.languages]
        removed = len(self.records) - len(kept)
        self._replay(kept)
        return removed

    def restore(self, records: list[BatchRecord]) -> None:
        """Append saved records (same method and layers) to this session, as if it had applied them: resuming."""
        for record in records:
            if record.method != self.config.method or sorted(record.deltas) != list(self.config.layers):
                raise ValueError(f"record {record.index} was made by {record.method} on layers {sorted(record.deltas)}; "
                                 f"this session runs {self.config.method} on layers {list(self.config.layers)}")
        self._replay(self.records + list(records))

    def _replay(self, kept: list[BatchRecord]) -> None:
        for layer, original in self.original_weights.items():
            weight = edited_weight(self.model, self.architecture, layer)
            with torch.no_grad():
                weight.copy_(original)
        self.rules = self._fresh_rules()
        for index, record in enumerate(kept):
            for layer in self.config.layers:
                add_to_weight(self.model, self.architecture, layer, record.deltas[layer])
            for layer, rule in self.rules.items():
                rule.commit(record.keys[layer].to(SOLVE_DTYPE))
            record.index = index
        self.records = list(kept)


def apply_records(model, records: list[BatchRecord], architecture: Architecture | None = None):
    """Write saved records' updates into ``model`` (in place), in order; returns the model."""
    architecture = architecture or detect_architecture(model)
    for record in records:
        for layer, delta in record.deltas.items():
            add_to_weight(model, architecture, layer, delta)
    return model
