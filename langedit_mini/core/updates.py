"""The closed-form weight updates of MEMIT, AlphaEdit and LangEdit (reference, section 4).

Shapes: residuals ``R`` (d_v, n), keys ``K`` (d_k, n), covariance ``C0`` (d_k, d_k); every update
``Delta`` is (d_v, d_k) and is *added* to the edited matrix ``W`` (d_v, d_k) with ``out = W k``.

Functions compute one update; the ``UpdateRule`` classes own the sequential state of a method
(the running ``Kp Kp^T``, the blended covariance, the protected basis) and share one interface:

* ``propose(R, K)`` returns the update for a batch and changes nothing;
* ``commit(K)`` records that the batch with keys ``K`` was written into the model;
* ``check_capacity(K)`` raises CapacityError when a batch with keys ``K`` cannot be written (a rule
  without a notion of capacity answers that it fits), before anything is;
* ``capacity_left`` says how many null-space dimensions remain (``None`` when the method has no
  such notion).

Two rules never share state. All solves run in float64 unless float32 is asked for.
"""

from __future__ import annotations

import torch

from langedit_mini.core.projection import DEFAULT_BASIS_RTOL, NullSpaceProjector, ProtectedBasis, key_rank
from langedit_mini.core.validation import (
    SOLVE_DTYPE,
    CapacityError,
    ProjectionError,
    as_covariance,
    as_matrix,
    check_positive,
    check_rows,
    check_solve_dtype,
)


def _check_batch(residuals, keys, d_k: int | None, dtype: torch.dtype, device=None):
    """Validate a batch: R (d_v, n) and K (d_k, n) with the same n, finite, in the solve dtype."""
    keys = as_matrix(keys, "keys", dtype, device)
    residuals = as_matrix(residuals, "residuals", dtype, keys.device)
    if residuals.shape[1] != keys.shape[1]:
        raise ProjectionError(
            f"residuals have {residuals.shape[1]} columns but keys have {keys.shape[1]}: "
            "one residual (d_v,) per key (d_k,) is needed"
        )
    if d_k is not None:
        check_rows(keys, d_k, "keys", "the covariance's d_k")
    return residuals, keys


def memit_delta(
    residuals, keys, covariance, *, mom2_weight: float = 1.0, dtype: torch.dtype = SOLVE_DTYPE
) -> torch.Tensor:
    """MEMIT: ``Delta = R K^T (lambda C0 + K K^T)^-1``.

    The least-squares update that writes ``Delta K ~ R`` while keeping ``Delta C0 Delta^T`` small.
    """
    covariance = as_covariance(covariance, dtype=check_solve_dtype(dtype))
    residuals, keys = _check_batch(residuals, keys, covariance.shape[0], dtype, covariance.device)
    mom2_weight = check_positive(mom2_weight, "mom2_weight")
    system = mom2_weight * covariance + keys @ keys.T  # (d_k, d_k), symmetric
    try:
        solution = torch.linalg.solve(system, keys @ residuals.T)  # (d_k, d_v)
    except RuntimeError as error:  # singular system
        raise ProjectionError(
            "MEMIT system lambda C0 + K K^T is singular; the covariance is rank-deficient along the keys' "
            "complement. Use more covariance samples or a larger mom2_weight"
        ) from error
    return solution.T


def alphaedit_delta_reference(
    residuals, keys, projector: NullSpaceProjector, *, previous_key_moment=None, alpha: float = 10.0
) -> torch.Tensor:
    """The published AlphaEdit formula, literally: ``R K^T P ((Kp Kp^T + K K^T) P + alpha I)^-1``.

    Dense and non-symmetric; kept as the reference that ``alphaedit_delta`` is checked against.
    """
    dtype = projector.dtype
    residuals, keys = _check_batch(residuals, keys, projector.d_k, dtype, projector.device)
    alpha = check_positive(alpha, "alpha")
    p = projector.dense()  # (d_k, d_k)
    moment = keys @ keys.T
    if previous_key_moment is not None:
        moment = moment + as_covariance(previous_key_moment, "previous_key_moment", dtype, projector.device)
    system = moment @ p + alpha * torch.eye(projector.d_k, dtype=dtype, device=projector.device)
    # Delta M = R K^T P  <=>  M^T Delta^T = P K R^T
    return torch.linalg.solve(system.T, p @ keys @ residuals.T).T


def alphaedit_delta(
    residuals, keys, projector: NullSpaceProjector, *, previous_key_moment=None, alpha: float = 10.0
) -> torch.Tensor:
    """AlphaEdit's update in its symmetric form: ``Delta = R K^T (P A P + alpha I)^-1 P``.

    ``A = Kp Kp^T + K K^T``. It equals the published formula (``P (A P + alpha I)^-1 =
    (P A P + alpha I)^-1 P``, chapter 1) but ends in the factor ``P``, so ``Delta k0 = 0``
    holds to rounding for every ``k0`` with ``P k0 = 0``. When the projector carries a thin
    null basis ``U`` (``P = U U^T``) the solve runs in the ``null_dim``-dimensional null space.
    """
    dtype = projector.dtype
    residuals, keys = _check_batch(residuals, keys, projector.d_k, dtype, projector.device)
    alpha = check_positive(alpha, "alpha")
    moment = None
    if previous_key_moment is not None:
        moment = as_covariance(previous_key_moment, "previous_key_moment", dtype, projector.device)
    if projector.uses_null_factor:
        basis = projector.null_basis  # (d_k, r0)
        keys_null = basis.T @ keys  # (r0, n)
        system = keys_null @ keys_null.T  # (r0, r0)
        if moment is not None:
            system = system + basis.T @ moment @ basis
        system = system + alpha * torch.eye(basis.shape[1], dtype=dtype, device=basis.device)
        return (basis @ torch.linalg.solve(system, keys_null @ residuals.T)).T
    projected_keys = projector.apply(keys)  # (d_k, n)
    system = projected_keys @ projected_keys.T  # P K K^T P
    if moment is not None:
        system = system + projector.apply(projector.apply(moment).T)  # P (Kp Kp^T) P
    system = system + alpha * torch.eye(projector.d_k, dtype=dtype, device=projector.device)
    return projector.apply(torch.linalg.solve(system, keys @ residuals.T)).T


def projected_ridge_delta(residuals, keys, projector: NullSpaceProjector, *, alpha: float = 10.0) -> torch.Tensor:
    """``R K^T (P K K^T P + alpha I)^-1 P`` without any d_k x d_k matrix (Woodbury identity).

    The AlphaEdit solve when the earlier keys lie in the protected subspace (``P Kp = 0``), as
    they do for LangEdit's exact basis: the ``Kp Kp^T`` term then vanishes and, with ``G = P K``,
    ``(G G^T + alpha I)^-1 = (I - G (alpha I + G^T G)^-1 G^T) / alpha``. Cost ``O(d_k n^2 + d_k r n)``.
    """
    dtype = projector.dtype
    residuals, keys = _check_batch(residuals, keys, projector.d_k, dtype, projector.device)
    alpha = check_positive(alpha, "alpha")
    projected_keys = projector.apply(keys)  # G = P K, (d_k, n)
    gram = projected_keys.T @ projected_keys  # (n, n)
    inner = gram + alpha * torch.eye(gram.shape[0], dtype=dtype, device=gram.device)
    # Delta^T = P S^-1 K R^T with S = G G^T + alpha I; P G = G, so P S^-1 = S^-1 P on these vectors.
    right = projector.apply(keys @ residuals.T)  # P K R^T, (d_k, d_v)
    solved = (right - projected_keys @ torch.linalg.solve(inner, projected_keys.T @ right)) / alpha
    return solved.T


def interference_matrix(deltas: list[torch.Tensor], keys: list[torch.Tensor]) -> torch.Tensor:
    """``I[t, s] = ||Delta_t K_s|| / (||Delta_t|| ||K_s||)`` for ``s < t`` (Frobenius norms), NaN elsewhere.

    0 means the update of batch t is invisible to the keys of batch s; the Cauchy-Schwarz bound
    makes every entry at most 1.
    """
    if len(deltas) != len(keys):
        raise ProjectionError(f"need one key batch per update, got {len(deltas)} updates and {len(keys)} key batches")
    size = len(deltas)
    result = torch.full((size, size), float("nan"), dtype=torch.float64)
    for t, delta in enumerate(deltas):
        delta_norm = torch.linalg.matrix_norm(delta.double())
        for s in range(t):
            key_batch = keys[s].to(delta.device).double()
            numerator = torch.linalg.matrix_norm(delta.double() @ key_batch)
            denominator = delta_norm * torch.linalg.matrix_norm(key_batch)
            result[t, s] = float(numerator / denominator) if denominator > 0 else 0.0
    return result


class UpdateRule:
    """One editing method's closed-form update and its sequential state (for one edited layer)."""

    name = "rule"

    def propose(self, residuals, keys) -> torch.Tensor:  # pragma: no cover - interface
        """The update (d_v, d_k) for a batch; the rule's state is unchanged."""
        raise NotImplementedError

    def commit(self, keys) -> None:
        """Record that a batch with these keys (d_k, n) has been written into the model."""

    def check_capacity(self, keys) -> None:
        """Raise CapacityError if a batch with these keys (d_k, n) does not fit; changes nothing."""

    @property
    def capacity_left(self) -> int | None:
        """Null-space dimensions still free, or None when the method has no such limit."""
        return None

    @property
    def projector(self) -> NullSpaceProjector | None:
        """The projector the next ``propose`` uses, or None for unconstrained methods."""
        return None


class MemitRule(UpdateRule):
    """MEMIT: every batch solved against ``C0`` alone; earlier edits are not protected."""

    name = "MEMIT"

    def __init__(self, covariance, *, mom2_weight: float = 1.0, dtype: torch.dtype = SOLVE_DTYPE):
        self.covariance = as_covariance(covariance, dtype=check_solve_dtype(dtype))
        self.mom2_weight = check_positive(mom2_weight, "mom2_weight")

    def propose(self, residuals, keys) -> torch.Tensor:
        return memit_delta(residuals, keys, self.covariance, mom2_weight=self.mom2_weight, dtype=self.covariance.dtype)


class AlphaEditRule(UpdateRule):
    """AlphaEdit: a fixed projector from ``C0`` plus the running ``Kp Kp^T`` of committed keys."""

    name = "AlphaEdit"

    def __init__(
        self,
        covariance,
        *,
        tau: float = 2e-2,
        relative: bool = False,
        alpha: float = 10.0,
        dtype: torch.dtype = SOLVE_DTYPE,
        eigendecomposition: tuple | None = None,
    ):
        """``eigendecomposition``: ``(eigenvalues, eigenvectors)`` of ``covariance`` when already known
        (``torch.linalg.eigh``'s order, in ``dtype``); skips computing it."""
        if eigendecomposition is None:
            self._projector = NullSpaceProjector.from_covariance(covariance, tau, relative=relative, dtype=dtype)
        else:
            values, vectors = (torch.as_tensor(x).to(dtype) for x in eigendecomposition)
            self._projector = NullSpaceProjector.from_eigendecomposition(values, vectors, tau, relative=relative)
        self.alpha = check_positive(alpha, "alpha")
        d_k = self.projector.d_k
        self.previous_key_moment = torch.zeros(d_k, d_k, dtype=dtype, device=self.projector.device)

    @property
    def projector(self) -> NullSpaceProjector:
        return self._projector

    def propose(self, residuals, keys) -> torch.Tensor:
        return alphaedit_delta(
            residuals, keys, self.projector, previous_key_moment=self.previous_key_moment, alpha=self.alpha
        )

    def commit(self, keys) -> None:
        keys = as_matrix(keys, "keys", self.projector.dtype, self.projector.device)
        check_rows(keys, self.projector.d_k, "keys", "the projector's d_k")
        self.previous_key_moment += keys @ keys.T


#: The constants of the reference code's blend (VRCMF/LangEdit, ``AlphaEdit_main.get_project``): N = 100000
#: (the number of covariance *texts*) and n = 100 (the batch size), written into the code, whatever the run.
REFERENCE_BLEND_SAMPLES, REFERENCE_BLEND_BATCH = 100_000, 100

#: How ``LangEditPublishedRule`` mixes the committed keys into the covariance (see its docstring).
BLENDS = ("reference", "counted", "pooled")


class LangEditPublishedRule(AlphaEditRule):
    """LangEdit as published: before batch t the projector is recomputed from a blended covariance.

    ``C_t = a_t C_{t-1} + b_t S_t`` with ``S_t = sum K K^T`` the raw running sum of every committed
    batch's keys and ``t`` the number of batches committed, then ``P_t`` from the eigenvectors of
    ``C_t`` below the cut: a full ``d_k x d_k`` eigendecomposition per batch, as the reference code does.
    ``blend`` says where ``a_t`` and ``b_t`` come from:

    * ``"reference"`` (the default, the reference code literally): ``a_t = N / (N + n t)``,
      ``b_t = n / (N + n t)`` with its constants ``N = 100000``, ``n = 100``. ``C0`` is a per-token
      mean while ``S_t`` is a sum, and ``S_t`` (which already holds every earlier batch) is added again
      at every batch, so an early key ends up weighing far more than its share of a pooled mean.
    * ``"counted"``: the same recursion with ``N = n_samples`` (the covariance's sample count) and
      ``n`` the last batch's size (this project's reading before; an ablation).
    * ``"pooled"``: a correctly pooled mean, every key counted once:
      ``C_t = (N C0 + S_t) / (N + m_t)``, ``m_t`` keys committed, ``N = n_samples`` (an ablation).

    A deviation from the reference, kept on purpose (the project's rule for capacity): a batch whose
    keys need more dimensions than the recomputed null space has is refused before anything is
    written (``CapacityError``); the reference solves anyway, and with an empty null space writes nothing.
    """

    name = "LangEdit-published"

    def __init__(
        self,
        covariance,
        *,
        n_samples: int,
        blend: str = "reference",
        tau: float = 2e-2,
        relative: bool = False,
        alpha: float = 10.0,
        dtype: torch.dtype = SOLVE_DTYPE,
        eigendecomposition: tuple | None = None,
    ):
        super().__init__(
            covariance, tau=tau, relative=relative, alpha=alpha, dtype=dtype, eigendecomposition=eigendecomposition
        )
        if int(n_samples) < 1:
            raise ProjectionError(f"n_samples (N, the covariance's sample count) must be >= 1, got {n_samples!r}")
        if blend not in BLENDS:
            raise ProjectionError(f"unknown blend {blend!r}; choose one of {', '.join(BLENDS)}")
        self.n_samples, self.blend = int(n_samples), blend
        self.tau, self.relative = tau, relative
        self.initial_covariance = as_covariance(covariance, dtype=dtype)
        self.blended_covariance = self.initial_covariance
        self.batches_committed = 0
        self.keys_committed = 0

    def commit(self, keys) -> None:
        super().commit(keys)  # S_t = Kp Kp^T += K K^T
        self.batches_committed += 1
        batch_size = torch.as_tensor(keys).shape[1]
        self.keys_committed += batch_size
        t = self.batches_committed
        if self.blend == "pooled":
            total = self.n_samples + self.keys_committed
            self.blended_covariance = (
                self.n_samples / total * self.initial_covariance + self.previous_key_moment / total
            )
        else:
            samples, batch = (
                (REFERENCE_BLEND_SAMPLES, REFERENCE_BLEND_BATCH)
                if self.blend == "reference"
                else (self.n_samples, batch_size)
            )
            a_t, b_t = samples / (samples + batch * t), batch / (samples + batch * t)
            self.blended_covariance = a_t * self.blended_covariance + b_t * self.previous_key_moment
        # The blend can lift every eigenvalue above the cut; then P_t = 0 and propose refuses.
        self._projector = NullSpaceProjector.from_covariance(
            self.blended_covariance,
            self.tau,
            relative=self.relative,
            dtype=self.projector.dtype,
            allow_empty_null_space=True,
        )

    def check_capacity(self, keys) -> None:
        dtype = self.projector.dtype
        needed = key_rank(as_matrix(keys, "keys", dtype), rtol=DEFAULT_BASIS_RTOL[dtype])
        if needed > self.projector.null_dim:
            raise CapacityError(
                f"null space exhausted: the recomputed projector after {self.batches_committed} batches leaves "
                f"{self.projector.null_dim} of d_k={self.projector.d_k} dimensions below the cut, but this batch "
                f"needs {needed} (the rank of its keys)",
                needed=needed,
                available=self.projector.null_dim,
            )

    def propose(self, residuals, keys) -> torch.Tensor:
        self.check_capacity(keys)
        return super().propose(residuals, keys)

    @property
    def capacity_left(self) -> int:
        return self.projector.null_dim


class LangEditExactRule(UpdateRule):
    """LangEdit, exact subspace form: ``P = I - B B^T`` with ``B`` protecting ``C0`` and every committed key.

    Because ``P Kp = 0`` the running ``Kp Kp^T`` term vanishes and the solve needs no
    ``d_k x d_k`` matrix (``projected_ridge_delta``). ``propose`` raises CapacityError, before
    anything is written, when the batch's keys no longer fit in what is left of the null space.
    """

    name = "LangEdit-exact"

    def __init__(
        self,
        covariance=None,
        *,
        tau: float = 2e-2,
        relative: bool = False,
        alpha: float = 10.0,
        rtol: float | None = None,
        d_k: int | None = None,
        dtype: torch.dtype = SOLVE_DTYPE,
        eigendecomposition: tuple | None = None,
    ):
        """``eigendecomposition``: ``(eigenvalues, eigenvectors)`` of ``C0`` when already known (then
        ``covariance`` may be None); skips computing it."""
        if eigendecomposition is not None:
            values, vectors = (torch.as_tensor(x).to(dtype) for x in eigendecomposition)
            self.basis = ProtectedBasis.from_eigendecomposition(values, vectors, tau, relative=relative, rtol=rtol)
        elif covariance is None:
            if d_k is None:
                raise ProjectionError("give a covariance, or d_k to start from an empty protected basis")
            self.basis = ProtectedBasis.empty(d_k, dtype=dtype, rtol=rtol)
        else:
            self.basis = ProtectedBasis.from_covariance(covariance, tau, relative=relative, dtype=dtype, rtol=rtol)
        self.alpha = check_positive(alpha, "alpha")

    @property
    def projector(self) -> NullSpaceProjector:
        return self.basis.projector()

    def check_capacity(self, keys) -> None:
        self.basis.check_capacity(keys)

    def propose(self, residuals, keys) -> torch.Tensor:
        self.check_capacity(keys)
        return projected_ridge_delta(residuals, keys, self.projector, alpha=self.alpha)

    def commit(self, keys) -> None:
        self.basis.add_keys(keys)

    @property
    def capacity_left(self) -> int:
        return self.basis.capacity_left


__all__ = [
    "memit_delta",
    "alphaedit_delta",
    "alphaedit_delta_reference",
    "projected_ridge_delta",
    "interference_matrix",
    "UpdateRule",
    "MemitRule",
    "AlphaEditRule",
    "LangEditPublishedRule",
    "LangEditExactRule",
]
