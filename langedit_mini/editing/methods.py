"""The editing methods behind one interface: each owns its settings and says how a batch is written.

A method turns a batch of ``EditRequest`` objects into updates of the edited matrices ``W``
(d_v, d_k) of an ``EditingSession``. The registry (``registry.py``) lists one object per method;
the session, the defaults and the study ask it, and never compare method names.

* ``ClosedFormMethod`` (MEMIT, AlphaEdit, LangEdit-published, LangEdit-exact): target values
  ``z`` at the last edited layer ``L`` (``values.py``), then layer by layer (MEMIT's spreading,
  the technical reference in ``book/reference.md``, section 3) the keys and the current ``H_L``
  are recomputed on the partly edited model, ``R = (Z - H_L) / (m - j + 1)``, and the layer's
  ``UpdateRule`` (``updates.py``) proposes the update that is added to ``W``. Before anything is
  written every layer's rule is asked whether the batch fits (``UpdateRule.check_capacity``; a rule
  without a notion of capacity answers that it fits), so a batch is refused whole or not at all.
* ``FineTuning`` (``ft.py``): gradient steps on the edited matrices.

Settings are small dataclasses, one per kind of method (an FT step count means nothing to MEMIT):
``settings_with(method, values)`` builds a method's settings from the values that apply to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace

import torch

from langedit_mini.core.projection import tau_for_leftover
from langedit_mini.core.updates import (
    BLENDS,
    AlphaEditRule,
    LangEditExactRule,
    LangEditPublishedRule,
    MemitRule,
    UpdateRule,
)
from langedit_mini.core.validation import SOLVE_DTYPE, CapacityError
from langedit_mini.model.architecture import add_to_weight, output_norm, residual_to_memory
from langedit_mini.model.keys import compute_keys, subject_states
from langedit_mini.model.values import compute_target_values


@dataclass
class ValueReport:
    """How the target values of a batch went, per request: the final NLL of the target, the steps taken,
    and whether the target was reached (final NLL below the stopping threshold)."""

    nll: list[float]
    steps: list[int]
    stop_nll: float

    @property
    def reached(self) -> list[bool]:
        return [value < self.stop_nll for value in self.nll]


def _require_positive(settings, *names) -> None:
    for name in names:
        if not getattr(settings, name) > 0:
            raise ValueError(f"{type(settings).__name__}.{name} must be > 0, got {getattr(settings, name)!r}")


@dataclass
class MemitSettings:
    mom2_weight: float = 1.0  # lambda on C0 (C0 is a mean, K K^T a sum)

    def validate(self) -> MemitSettings:
        _require_positive(self, "mom2_weight")
        return self


@dataclass
class NullSpaceSettings:
    """AlphaEdit: the null-space cut and the regulariser."""

    tau: float | None = None  # absolute eigenvalue cut; or
    leftover_fraction: float | None = 0.05  # the cut whose discarded eigenvalues hold this share of trace(C0)
    alpha: float = 10.0  # the solve's regulariser

    def validate(self) -> NullSpaceSettings:
        if (self.tau is None) == (self.leftover_fraction is None):
            raise ValueError("give exactly one of tau (absolute cut) and leftover_fraction (share of trace(C0))")
        _require_positive(self, "alpha")
        return self

    def cut(self, covariance: torch.Tensor) -> float:
        """The absolute eigenvalue cut ``tau`` for this covariance."""
        return self.tau if self.tau is not None else tau_for_leftover(covariance, self.leftover_fraction)


@dataclass
class PublishedSettings(NullSpaceSettings):
    """LangEdit as published: the cut, the regulariser, and how committed keys are blended into the covariance."""

    blend: str = "reference"  # "reference" (the code's N=100000, n=100), "counted" or "pooled" (core.updates)

    def validate(self) -> PublishedSettings:
        super().validate()
        if self.blend not in BLENDS:
            raise ValueError(f"PublishedSettings.blend must be one of {', '.join(BLENDS)}, got {self.blend!r}")
        return self


@dataclass
class ExactBasisSettings(NullSpaceSettings):
    """LangEdit's exact form: the cut, the regulariser, and the tolerance for new basis directions."""

    basis_rtol: float | None = None  # None: the dtype's default (projection.DEFAULT_BASIS_RTOL)


def settings_with(method: EditingMethod, values: dict, *, strict: bool = True):
    """The method's default settings with ``values`` applied.

    A value for a field the method does not have is an error when ``strict`` (an FT step count
    given to MEMIT), and left out otherwise (a study that sets ``tau`` for every method). Giving
    an absolute cut ``tau`` without ``leftover_fraction`` replaces the default fraction cut.
    """
    own = {f.name for f in fields(method.settings_type)}
    foreign = sorted(set(values) - own)
    if foreign and strict:
        raise ValueError(
            f"{method.name} has no setting {', '.join(map(repr, foreign))}; "
            f"its settings are {', '.join(sorted(own)) or 'none'}"
        )
    values = {name: value for name, value in values.items() if name in own}
    if values.get("tau") is not None and "leftover_fraction" not in values:
        values["leftover_fraction"] = None
    return replace(method.settings_type(), **values)


class EditingMethod:
    """The interface every method answers to (one object per method, in the registry)."""

    name: str = "method"
    settings_type: type = MemitSettings
    needs_statistics: bool = True  # the preserved-key second moments C0 of every edited layer
    closed_form: bool = True  # an UpdateRule per layer (False: gradient steps, FT)
    null_space: bool = False  # its update is projected onto the null space of what is protected

    def make_rules(self, settings, statistics, layers, dtype: torch.dtype = SOLVE_DTYPE) -> dict[int, UpdateRule]:
        """A fresh ``UpdateRule`` per edited layer, solving in ``dtype`` (empty for a method without one)."""
        return {}

    def write(self, session, requests, seconds: dict[str, float]):
        """Write one batch into ``session.model``; returns ``(deltas, keys, values)``: the updates and keys per
        layer, and a ``ValueReport`` of the target values (None for a method without target values).

        Raises ``CapacityError`` with the model unchanged when the batch cannot be written.
        """
        raise NotImplementedError


def layer_error(layer: int, error: CapacityError) -> CapacityError:
    """The same CapacityError, naming the layer it came from."""
    return CapacityError(f"layer {layer}: {error}", needed=error.needed, available=error.available)


class ClosedFormMethod(EditingMethod):
    """A method whose update is a closed-form solve per layer (``UpdateRule``), spread over the layers."""

    def __init__(self, name: str, settings_type: type, make_rule):
        self.name, self.settings_type, self._make_rule = name, settings_type, make_rule
        self.null_space = issubclass(settings_type, NullSpaceSettings)

    def make_rules(self, settings, statistics, layers, dtype: torch.dtype = SOLVE_DTYPE) -> dict[int, UpdateRule]:
        return {
            layer: self._make_rule(settings, statistics[layer].covariance.to(dtype), statistics[layer], dtype)
            for layer in layers
        }

    def write(self, session, requests, seconds):
        config, model, tokenizer, architecture = session.config, session.model, session.tokenizer, session.architecture
        layers, last = config.layers, config.layers[-1]
        start = time.perf_counter()
        current_keys = {layer: compute_keys(model, tokenizer, architecture, requests, layer) for layer in layers}
        seconds["keys"] += time.perf_counter() - start
        for layer in layers:  # refuse before writing anything
            try:
                session.rules[layer].check_capacity(current_keys[layer].to(SOLVE_DTYPE))
            except CapacityError as error:
                raise layer_error(layer, error) from None
        start = time.perf_counter()
        values = compute_target_values(
            model,
            tokenizer,
            architecture,
            requests,
            last,
            config.values,
            seed=config.seed,
            progress=getattr(session, "progress", False),
        )
        seconds["values"] += time.perf_counter() - start
        deltas, keys = {}, {}
        for j, layer in enumerate(layers):
            start = time.perf_counter()
            layer_keys = (
                current_keys[layer] if j == 0 else compute_keys(model, tokenizer, architecture, requests, layer)
            )
            hidden = subject_states(model, tokenizer, architecture, requests, last, "hidden")
            residuals = (values.z - hidden) / (len(layers) - j)  # (d_v, n), in the residual stream
            norm = output_norm(model, architecture, layer)
            if norm is not None:  # W k = m reaches the residual stream through a norm: the change m needs
                memory = subject_states(model, tokenizer, architecture, requests, layer, "memory")
                residuals = residual_to_memory(norm, memory, residuals)
            seconds["keys"] += time.perf_counter() - start
            start = time.perf_counter()
            try:
                # A later layer's keys are recomputed on the partly edited model, so they may not fit
                # although the first check passed: then the layers written so far are undone.
                delta = session.rules[layer].propose(residuals.to(SOLVE_DTYPE), layer_keys.to(SOLVE_DTYPE))
            except CapacityError as error:
                session.restore_layers(deltas)
                raise layer_error(layer, error) from None
            seconds["solve"] += time.perf_counter() - start
            start = time.perf_counter()
            add_to_weight(model, architecture, layer, delta)
            deltas[layer] = delta.float()
            keys[layer] = layer_keys
            seconds["write"] += time.perf_counter() - start
        start = time.perf_counter()
        for layer in layers:
            session.rules[layer].commit(keys[layer].to(SOLVE_DTYPE))
        seconds["projector"] += time.perf_counter() - start
        return deltas, keys, ValueReport(values.final_nll, values.steps_taken, config.values.stop_nll)


# Each factory: (settings, C0 in the solve dtype, the layer's SecondMoment, dtype) -> UpdateRule.


def _memit_rule(settings: MemitSettings, covariance, moment, dtype) -> UpdateRule:
    return MemitRule(covariance, mom2_weight=settings.mom2_weight, dtype=dtype)


def _alphaedit_rule(settings: NullSpaceSettings, covariance, moment, dtype) -> UpdateRule:
    return AlphaEditRule(covariance, tau=settings.cut(covariance), alpha=settings.alpha, dtype=dtype)


def _langedit_published_rule(settings: PublishedSettings, covariance, moment, dtype) -> UpdateRule:
    return LangEditPublishedRule(
        covariance,
        n_samples=moment.n_samples,
        blend=settings.blend,
        tau=settings.cut(covariance),
        alpha=settings.alpha,
        dtype=dtype,
    )


def _langedit_exact_rule(settings: ExactBasisSettings, covariance, moment, dtype) -> UpdateRule:
    return LangEditExactRule(
        covariance, tau=settings.cut(covariance), alpha=settings.alpha, rtol=settings.basis_rtol, dtype=dtype
    )


CLOSED_FORM = (
    ClosedFormMethod("MEMIT", MemitSettings, _memit_rule),
    ClosedFormMethod("AlphaEdit", NullSpaceSettings, _alphaedit_rule),
    ClosedFormMethod("LangEdit-published", PublishedSettings, _langedit_published_rule),
    ClosedFormMethod("LangEdit-exact", ExactBasisSettings, _langedit_exact_rule),
)
