"""FT: constrained fine-tuning of the edited matrices, the gradient baseline (as ROME's FT-L).

Adam on the edited matrices ``W`` of every edited layer, minimising the NLL of each request's
target after its edit prompt; after each step every entry of ``W - W0`` is clamped to
``[-norm_constraint, norm_constraint]``. No target values, keys or preserved-key statistics: FT
protects nothing, which is what makes it the baseline the null-space methods are measured against.
The update written is ``W - W0`` (d_v, d_k), so its records save, replay and roll back like the
closed-form methods' ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from langedit_mini.editing.methods import EditingMethod, _require_positive
from langedit_mini.model.architecture import edited_weight, optimising_only
from langedit_mini.model.tokens import encode_pairs, model_device, pad_rows, pad_token_id


@dataclass
class FineTuningSettings:
    learning_rate: float = 5e-3  # Adam on the edited matrices
    steps: int = 40
    norm_constraint: float = 5e-2  # |W - W0| <= this, elementwise

    def validate(self) -> FineTuningSettings:
        _require_positive(self, "learning_rate", "norm_constraint")
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1:
            raise ValueError(f"FineTuningSettings.steps must be a positive integer, got {self.steps!r}")
        return self


def answer_labels(tokenizer, requests, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded rows ``prompt + target`` of every request, their mask, and labels (-100 but the target)."""
    prompt_ids, answer_ids = encode_pairs(
        tokenizer, [r.question for r in requests], [r.target for r in requests], [r.joiner for r in requests]
    )
    ids, mask = pad_rows(
        [p + a for p, a in zip(prompt_ids, answer_ids)], pad_token_id(tokenizer), left=False, device=device
    )
    labels = torch.full_like(ids, -100)
    for row, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids)):
        labels[row, len(prompt) : len(prompt) + len(answer)] = torch.tensor(answer, device=ids.device)
    return ids, mask, labels


class FineTuning(EditingMethod):
    name = "FT"
    settings_type = FineTuningSettings
    needs_statistics = False
    closed_form = False

    def write(self, session, requests, seconds):
        settings, model, architecture = session.config.settings, session.model, session.architecture
        start = time.perf_counter()
        torch.manual_seed(session.config.seed)
        weights = {layer: edited_weight(model, architecture, layer) for layer in session.config.layers}
        before = {layer: weight.detach().clone() for layer, weight in weights.items()}
        ids, mask, labels = answer_labels(session.tokenizer, requests, model_device(model))
        optimizer = torch.optim.Adam(list(weights.values()), lr=settings.learning_rate)
        loss = torch.tensor(0.0)
        with optimising_only(model, weights.values()):
            for _ in range(settings.steps):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    for layer, weight in weights.items():
                        change = (weight - before[layer]).clamp(-settings.norm_constraint, settings.norm_constraint)
                        weight.copy_(before[layer] + change)
        deltas = {}
        for layer, weight in weights.items():
            change = (weight.detach() - before[layer]).float()
            deltas[layer] = change.T if architecture.transposed else change  # (d_v, d_k)
        seconds["solve"] += time.perf_counter() - start
        return deltas, {}, None
