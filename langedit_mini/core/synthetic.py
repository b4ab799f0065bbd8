"""Synthetic keys with a realistic decaying spectrum, and a sequential multilingual run on them.

The guarantee chapter needs keys whose second moment looks like an LLM MLP's (a few large
eigenvalues, a long tail) and edit batches that arrive language after language. Nothing here
touches a model: an "edit" is a closed-form update ``Delta_t`` computed from keys ``K_t`` and
residuals ``R_t``, and every quantity the chapter plots (interference, edit residual, disturbance
of preserved keys, capacity) is measured on those matrices.

Key model: ``k = Q diag(sqrt(lambda + floor)) g + mu_language`` with ``Q`` a random rotation,
``lambda`` the spectrum of ordinary text, ``floor`` the extra energy that rare facts put in
low-variance directions, and ``mu_language`` a per-language mean shift. Preserved keys use
``floor = 0`` and no shift.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from langedit_mini.core.projection import NullSpaceProjector
from langedit_mini.core.updates import UpdateRule, interference_matrix
from langedit_mini.core.validation import CapacityError, ProjectionError

SPECTRUM_SHAPES = ("power", "exponential")


@dataclass
class SyntheticConfig:
    d_k: int = 512  # key dimension (14336 for Llama-3-8B)
    d_v: int = 64  # value dimension (rows of the edited matrix)
    edits_per_language: int = 20  # keys per batch; one batch per language
    n_languages: int = 6  # batches in the sequence
    spectrum: str = "power"  # "power": lambda_i = i^-decay; "exponential": exp(-decay * i / d_k)
    decay: float = 1.0  # how fast the spectrum falls
    edit_key_floor: float = 5e-2  # energy per direction that edit keys add on top of the spectrum
    language_shift: float = 0.5  # norm of each language's mean key shift, relative to sqrt(trace C0)
    preserved_samples: int = 2048  # N: preserved keys averaged into C0
    seed: int = 0  # everything is drawn from one seeded generator

    def validate(self) -> SyntheticConfig:
        for name in ("d_k", "d_v", "edits_per_language", "n_languages", "preserved_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ProjectionError(f"SyntheticConfig.{name} must be a positive integer, got {value!r}")
        if self.spectrum not in SPECTRUM_SHAPES:
            raise ProjectionError(f"SyntheticConfig.spectrum must be one of {SPECTRUM_SHAPES}, got {self.spectrum!r}")
        for name in ("decay", "edit_key_floor", "language_shift"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ProjectionError(f"SyntheticConfig.{name} must be a finite number >= 0, got {value!r}")
        return self


def spectrum(config: SyntheticConfig) -> torch.Tensor:
    """Eigenvalues of the population second moment of preserved keys, largest = 1, descending."""
    index = torch.arange(config.d_k, dtype=torch.float64)
    if config.spectrum == "power":
        return (index + 1) ** (-config.decay)
    return torch.exp(-config.decay * index / config.d_k)


@dataclass
class SyntheticWorld:
    config: SyntheticConfig
    rotation: torch.Tensor  # (d_k, d_k) eigenvectors of the population second moment
    eigenvalues: torch.Tensor  # (d_k,) population spectrum
    preserved_keys: torch.Tensor  # K0, (d_k, N)
    covariance: torch.Tensor  # C0 = K0 K0^T / N, (d_k, d_k)
    held_out_keys: torch.Tensor  # fresh preserved keys for measuring disturbance, (d_k, N)
    edit_keys: list[torch.Tensor]  # one (d_k, n) batch per language
    residuals: list[torch.Tensor]  # one (d_v, n) batch per language


def make_world(config: SyntheticConfig | None = None) -> SyntheticWorld:
    """Draw preserved keys, their covariance, and one batch of edit keys and residuals per language."""
    config = (config or SyntheticConfig()).validate()
    generator = torch.Generator().manual_seed(config.seed)

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    rotation, _ = torch.linalg.qr(normal(config.d_k, config.d_k))
    eigenvalues = spectrum(config)

    def keys(count, floor=0.0, shift=None):
        sample = rotation @ (torch.sqrt(eigenvalues + floor)[:, None] * normal(config.d_k, count))
        return sample if shift is None else sample + shift[:, None]

    preserved = keys(config.preserved_samples)
    covariance = preserved @ preserved.T / config.preserved_samples
    held_out = keys(config.preserved_samples)
    shift_norm = config.language_shift * math.sqrt(float(eigenvalues.sum()))
    edit_keys, residuals = [], []
    for _ in range(config.n_languages):
        direction = normal(config.d_k)
        shift = shift_norm * direction / direction.norm()
        edit_keys.append(keys(config.edits_per_language, config.edit_key_floor, shift))
        residuals.append(normal(config.d_v, config.edits_per_language))
    return SyntheticWorld(config, rotation, eigenvalues, preserved, covariance, held_out, edit_keys, residuals)


@dataclass
class SequenceResult:
    method: str
    deltas: list[torch.Tensor]  # the applied update of each batch, (d_v, d_k)
    interference: torch.Tensor  # (T, T), see updates.interference_matrix
    edit_residual: list[float]  # ||Delta_t K_t - R_t|| / ||R_t||: 0 = batch written exactly
    preserved_change: list[float]  # sqrt(mean ||Delta_t k0||^2) over the keys k0 that define C0
    preserved_bound: list[float]  # ||Delta_t||_2 sqrt(mean ||P_t k0||^2): >= preserved_change when P_t is used
    held_out_change: list[float]  # the same change on fresh preserved keys (not used to build C0)
    capacity_left: list[int | None]  # after each committed batch
    stopped_by_capacity: str | None  # the CapacityError message, if the run stopped on it
    seconds: float  # wall time of propose + commit over the run


def run_sequence(rule: UpdateRule, world: SyntheticWorld) -> SequenceResult:
    """Edit the batches one after another with ``rule``; stop (and say why) if capacity runs out."""
    deltas, edit_residual, capacity = [], [], []
    change, bound, held_out_change = [], [], []
    stopped = None
    start = time.perf_counter()
    for keys, residuals in zip(world.edit_keys, world.residuals):
        try:
            delta = rule.propose(residuals, keys)
        except CapacityError as error:
            stopped = str(error)
            break
        projector = rule.projector  # the P_t this batch was solved with (None for MEMIT)
        rule.commit(keys)
        deltas.append(delta)
        edit_residual.append(
            float(torch.linalg.matrix_norm(delta @ keys - residuals) / torch.linalg.matrix_norm(residuals))
        )
        change.append(_rms_column_norm(delta @ world.preserved_keys))
        held_out_change.append(_rms_column_norm(delta @ world.held_out_keys))
        leftover = world.preserved_keys if projector is None else projector.apply(world.preserved_keys)
        bound.append(float(torch.linalg.matrix_norm(delta, ord=2)) * _rms_column_norm(leftover))
        capacity.append(rule.capacity_left)
    seconds = time.perf_counter() - start
    interference = interference_matrix(deltas, world.edit_keys[: len(deltas)])
    return SequenceResult(
        rule.name, deltas, interference, edit_residual, change, bound, held_out_change, capacity, stopped, seconds
    )


def _rms_column_norm(matrix: torch.Tensor) -> float:
    """sqrt(mean over columns of ||column||^2)."""
    return float(((matrix**2).sum(dim=0).mean()).sqrt())


def leftover_check(projector: NullSpaceProjector, world: SyntheticWorld) -> dict:
    """``E ||P k||^2`` against ``trace(P C0)`` = the sum of the discarded eigenvalues.

    On the keys that define ``C0`` the two are equal (an identity); on held-out keys from the
    same distribution they agree in expectation.
    """

    def mean_square_norm(keys):
        return float((projector.apply(keys) ** 2).sum(dim=0).mean())

    return {
        "discarded_eigenvalue_sum": projector.discarded_eigenvalue_sum,
        "mean_leftover_on_C0_keys": mean_square_norm(world.preserved_keys),
        "mean_leftover_on_held_out_keys": mean_square_norm(world.held_out_keys),
        "mean_key_energy": float((world.held_out_keys**2).sum(dim=0).mean()),
        "null_dim": projector.null_dim,
    }
