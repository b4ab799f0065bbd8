"""Sequential editing of a transformers causal LM: FT, MEMIT, AlphaEdit, LangEdit (published and exact).

One interface for every method (the technical reference, ``book/reference.md``, sections 3 and 4):

    session = EditingSession(model, tokenizer, EditConfig(method="LangEdit-exact", layers=(1, 2)), statistics)
    record = session.apply(requests)     # one batch; returns what was written
    session.rollback()                   # undo the last batch (or rollback_language("de"))

* The session edits a deep copy of the model unless ``in_place=True``; the caller's model and
  requests are never changed otherwise.
* It owns all sequential state: one ``UpdateRule`` per edited layer (the running ``Kp Kp^T``,
  the blended covariance, or the protected basis). Two sessions never share it.
* How a batch is written is the method's (``methods.py``, ``ft.py``; listed in ``registry.py``):
  the closed-form methods spread target values over the layers with one ``UpdateRule`` each,
  FT takes gradient steps. Each method owns its settings (``EditConfig.settings``).
* Capacity: before anything is written, each layer's rule is asked whether the batch fits; a
  CapacityError says which layer and the numbers, and the model is left as it was.
* Records hold every layer's update and keys; they can be saved (safetensors + JSON metadata),
  re-applied to a fresh model, and rolled back (exactly: the original weights are restored and the
  kept records replayed in order).
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from langedit_mini.core.updates import UpdateRule
from langedit_mini.core.validation import SOLVE_DTYPE
from langedit_mini.data.datasets import EditRequest
from langedit_mini.editing.config import EditConfig
from langedit_mini.model.architecture import (
    Architecture,
    add_to_weight,
    check_model_and_tokenizer,
    detect_architecture,
    edited_weight,
)
from langedit_mini.model.statistics import SecondMoment

__all__ = ["BatchRecord", "EditingSession", "apply_records", "check_batch"]


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
    value_nll: list[float]  # per request: the target's NLL at the end of the value optimisation ([] for FT)
    value_steps: list[int] = field(default_factory=list)  # per request: optimisation steps taken
    target_reached: list[bool] = field(default_factory=list)  # per request: NLL below the stopping threshold

    @property
    def unreached(self) -> int:
        """How many requests of the batch were written with a target value that did not reach its target."""
        return sum(not reached for reached in self.target_reached)

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        tensors = {f"delta.{layer}": d.contiguous() for layer, d in self.deltas.items()}
        tensors |= {f"keys.{layer}": k.contiguous() for layer, k in self.keys.items()}
        metadata = {k: v for k, v in asdict(self).items() if k not in ("deltas", "keys")}
        save_file(tensors, str(path), metadata={"record": json.dumps(metadata)})

    @classmethod
    def load(cls, path: str | Path) -> BatchRecord:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = json.loads(handle.metadata()["record"])
            deltas, keys = {}, {}
            for name in handle.keys():
                kind, layer = name.split(".")
                (deltas if kind == "delta" else keys)[int(layer)] = handle.get_tensor(name)
        metadata["capacity_left"] = {int(k): v for k, v in metadata["capacity_left"].items()}
        return cls(deltas=deltas, keys=keys, **metadata)


class UnreachedTargetWarning(UserWarning):
    """A batch was written with target values whose optimisation stopped before reaching the target."""


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
            raise ValueError(
                f"conflicting targets in batch for {request.question!r}: {other.target!r} and {request.target!r}"
            )
        seen[key] = request
    return requests


class EditingSession:
    """Sequential edits with one method on one model; owns all state between batches."""

    def __init__(
        self,
        model,
        tokenizer,
        config: EditConfig,
        statistics: dict[int, SecondMoment] | None = None,
        *,
        in_place: bool = False,
        architecture: Architecture | None = None,
        keep_undo: bool = True,
        progress: bool = False,
    ):
        check_model_and_tokenizer(model, tokenizer)
        self.architecture = architecture or detect_architecture(model)
        self.config = config.validate(model, self.architecture)
        self.method = config.editing_method
        if self.method.needs_statistics:
            missing = [layer for layer in config.layers if not statistics or layer not in statistics]
            if missing:
                raise ValueError(
                    f"{config.method} needs the preserved-key statistics of layers {missing} "
                    "(langedit_mini.model.statistics.key_second_moments)"
                )
        self.model = model if in_place else copy.deepcopy(model)
        self.tokenizer = tokenizer
        self.statistics = statistics or {}
        self.original_weights = {
            layer: edited_weight(self.model, self.architecture, layer).detach().clone() for layer in config.layers
        }
        self.rules = self._fresh_rules()
        self.records: list[BatchRecord] = []
        # ``keep_undo``: a copy of the rules before the last batch, so that rolling it back needs no
        # rebuild (one more copy of each rule's state in memory: turn it off for very large d_k).
        self.keep_undo = keep_undo
        self.progress = progress  # progress bars in the target-value optimisation
        self._undo: tuple[int, dict] | None = None

    def _fresh_rules(self) -> dict[int, UpdateRule]:
        return self.method.make_rules(self.config.settings, self.statistics, self.config.layers)

    @property
    def capacity_left(self) -> dict[int, int | None]:
        return {layer: self.rules[layer].capacity_left if layer in self.rules else None for layer in self.config.layers}

    def apply(self, requests: list[EditRequest]) -> BatchRecord:
        """Edit one batch into the session's model; returns its record (and keeps it).

        A batch that does not fit (CapacityError) leaves the model and the session as they were.
        """
        requests = check_batch(list(requests))
        seconds = {"keys": 0.0, "values": 0.0, "solve": 0.0, "projector": 0.0, "write": 0.0}
        snapshot = copy.deepcopy(self.rules) if self.keep_undo else None
        deltas, keys, values = self.method.write(self, requests, seconds)
        self._undo = (len(self.records), snapshot) if snapshot is not None else None
        record = BatchRecord(
            len(self.records),
            self.config.method,
            [r.fact_id for r in requests],
            [r.lang for r in requests],
            deltas,
            keys,
            seconds,
            self.capacity_left,
            values.nll if values else [],
            values.steps if values else [],
            values.reached if values else [],
        )
        self.records.append(record)
        if record.unreached:
            worst = max(range(len(requests)), key=lambda i: values.nll[i])
            warnings.warn(
                f"batch {record.index}: {record.unreached} of {len(requests)} target values did not reach their "
                f"target (NLL >= {values.stop_nll:g} after up to {max(values.steps)} steps; worst NLL "
                f"{values.nll[worst]:.2f} for {requests[worst].question!r} -> {requests[worst].target!r}). They are "
                "written anyway and will score low; raise ValueSettings.steps or learning_rate to reach them",
                UnreachedTargetWarning,
                stacklevel=2,
            )
        return record

    def restore_layers(self, deltas: dict[int, torch.Tensor]) -> None:
        """Undo the layers already written in a batch that failed part-way (nothing is committed)."""
        for layer in self.config.layers:
            if layer in deltas:
                weight = edited_weight(self.model, self.architecture, layer)
                with torch.no_grad():
                    weight.copy_(self.original_weights[layer])
                for record in self.records:
                    add_to_weight(self.model, self.architecture, layer, record.deltas[layer])

    def rollback(self, batches: int = 1) -> None:
        """Undo the last ``batches`` batches: original weights restored, the kept records replayed in order."""
        if not 0 <= batches <= len(self.records):
            raise ValueError(f"cannot roll back {batches} batches: the session holds {len(self.records)}")
        if batches == 1 and self._undo is not None and self._undo[0] == len(self.records) - 1:
            # the rules as they were before the last batch: no rebuild (eigendecompositions, commits)
            self._replay(self.records[:-1], rules=self._undo[1])
            self._undo = None
            return
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
                raise ValueError(
                    f"record {record.index} was made by {record.method} on layers {sorted(record.deltas)}; "
                    f"this session runs {self.config.method} on layers {list(self.config.layers)}"
                )
        self._replay(self.records + list(records))

    def _replay(self, kept: list[BatchRecord], rules: dict | None = None) -> None:
        """The original weights plus the kept records' updates, in order (the same float additions as
        when they were made); the rules rebuilt and the kept keys committed, unless ``rules`` (their
        state after the kept records) is given."""
        for layer, original in self.original_weights.items():
            weight = edited_weight(self.model, self.architecture, layer)
            with torch.no_grad():
                weight.copy_(original)
        self.rules = self._fresh_rules() if rules is None else rules
        for index, record in enumerate(kept):
            for layer in self.config.layers:
                add_to_weight(self.model, self.architecture, layer, record.deltas[layer])
            if rules is None:
                for layer, rule in self.rules.items():
                    rule.commit(record.keys[layer].to(SOLVE_DTYPE))
            record.index = index
        self.records = list(kept)
        if rules is None:
            self._undo = None


def apply_records(model, records: list[BatchRecord], architecture: Architecture | None = None):
    """Write saved records' updates into ``model`` (in place), in order; returns the model."""
    architecture = architecture or detect_architecture(model)
    for record in records:
        for layer, delta in record.deltas.items():
            add_to_weight(model, architecture, layer, delta)
    return model
