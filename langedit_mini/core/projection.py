"""Null-space projectors and the protected subspace (reference, sections 2 and 4).

Two objects:

* ``NullSpaceProjector``: ``P = I - B B^T`` for an orthonormal basis ``B`` (d_k, r) of the
  *protected* subspace. Built from a covariance ``C0`` (AlphaEdit: ``B`` = eigenvectors whose
  eigenvalue is at or above ``tau``) or from any orthonormal basis. It keeps only the smaller of
  the two factors (the protected basis ``B`` or the null basis ``U`` with ``P = U U^T``) and
  applies ``P`` to keys in ``O(d_k r n)`` without forming the dense ``d_k x d_k`` matrix.
* ``ProtectedBasis``: LangEdit's exact subspace form. It grows ``B`` batch by batch with the
  keys of committed edits (``Q, S = svd((I - B B^T) K_t)``, keep ``S > rtol * ||K_t||_2``),
  so that every later update is exactly orthogonal to every earlier key. It always knows its
  capacity: ``d_k - r`` dimensions are left.

All linear algebra runs in float64 unless float32 is asked for (see ``validation``).
"""

from __future__ import annotations

import warnings

import torch

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

#: Default relative tolerance for accepting a new direction into the protected basis.
DEFAULT_BASIS_RTOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def eigen_threshold(eigenvalues: torch.Tensor, tau: float, relative: bool) -> float:
    """The absolute cut: ``tau`` itself, or ``tau * max eigenvalue`` when ``relative``."""
    tau = check_positive(tau, "tau")
    if relative:
        if tau >= 1:
            raise ProjectionError(f"a relative tau must lie in (0, 1), got {tau}")
        return tau * float(eigenvalues.max().clamp_min(0))
    return tau


def tau_for_leftover(covariance, fraction: float, *, dtype: torch.dtype = SOLVE_DTYPE) -> float:
    """The absolute cut whose discarded eigenvalues hold at most ``fraction`` of ``trace(C0)``.

    By chapter 1's leftover identity, ``E ||P k||^2 = trace(P C0)``: this cut bounds the mean
    share of a preserved key's energy that leaks into the null space by ``fraction``. Layers whose
    spectra have different scales get cuts of different sizes but the same guarantee.
    """
    fraction = check_positive(fraction, "fraction")
    if fraction >= 1:
        raise ProjectionError(f"fraction must lie in (0, 1), got {fraction}")
    eigenvalues = torch.linalg.eigvalsh(as_covariance(covariance, dtype=check_solve_dtype(dtype)))  # ascending
    cumulative = torch.cumsum(eigenvalues.clamp_min(0), dim=0)
    allowed = fraction * float(cumulative[-1])
    count = int((cumulative <= allowed).sum())  # the smallest `count` eigenvalues fit in the budget
    if count == eigenvalues.numel():
        return float(eigenvalues[-1]) * 2 + 1e-300
    # A cut cannot split (numerically) equal eigenvalues: move it below the whole tied group.
    gap = 1e-9 * float(eigenvalues.abs().max())
    while count > 0 and float(eigenvalues[count] - eigenvalues[count - 1]) <= gap:
        count -= 1
    if count == 0:
        raise ProjectionError(
            f"fraction={fraction:g} leaves no null space: the smallest eigenvalue (or a group of "
            f"equal smallest eigenvalues) alone exceeds {fraction:g} of the trace"
        )
    return float((eigenvalues[count - 1] + eigenvalues[count]) / 2)


def key_rank(keys: torch.Tensor, *, rtol: float) -> int:
    """Numerical rank of a key batch (d_k, n): singular values above ``rtol`` times the largest."""
    singular_values = torch.linalg.svdvals(keys)
    return int((singular_values > rtol * float(singular_values.max())).sum())


class ProtectsNothingWarning(UserWarning):
    """A null-space cut above every eigenvalue of the covariance: nothing is protected."""


class NullSpaceProjector:
    """The orthogonal projector ``P = I - B B^T`` onto the complement of a protected subspace.

    Parameters
    ----------
    protected_basis:
        (d_k, r) matrix with orthonormal columns spanning the protected subspace (r may be 0).
    null_basis:
        optional (d_k, d_k - r) orthonormal basis of the complement; when given and smaller than
        ``protected_basis`` it is used to apply ``P = U U^T``.
    eigenvalues, threshold:
        the covariance spectrum and the cut it was thresholded at, when built from a covariance.
    """

    def __init__(
        self,
        protected_basis: torch.Tensor,
        null_basis: torch.Tensor | None = None,
        *,
        eigenvalues: torch.Tensor | None = None,
        threshold: float | None = None,
    ):
        if protected_basis.dim() != 2:
            raise ProjectionError(f"protected_basis must be 2-D (d_k, r), got shape {tuple(protected_basis.shape)}")
        self.d_k = protected_basis.shape[0]
        self.protected_dim = protected_basis.shape[1]
        self.null_dim = self.d_k - self.protected_dim
        if null_basis is not None and null_basis.shape != (self.d_k, self.null_dim):
            raise ProjectionError(
                f"null_basis must have shape ({self.d_k}, {self.null_dim}), got {tuple(null_basis.shape)}"
            )
        self.protected_basis = protected_basis
        self.null_basis = null_basis
        self.eigenvalues = eigenvalues
        self.threshold = threshold
        # Apply through whichever factor is thinner: U U^T k, or k - B B^T k.
        self.uses_null_factor = null_basis is not None and self.null_dim < self.protected_dim

    @classmethod
    def from_covariance(
        cls,
        covariance,
        tau: float,
        *,
        relative: bool = False,
        dtype: torch.dtype = SOLVE_DTYPE,
        allow_empty_null_space: bool = False,
    ) -> NullSpaceProjector:
        """AlphaEdit's projector: the null space is spanned by eigenvectors of ``C0`` below the cut.

        The cut is ``tau`` (absolute) or ``tau * lambda_max`` (``relative=True``). Raises
        ProjectionError when the cut leaves no null space (every eigenvalue is at or above it),
        unless ``allow_empty_null_space``.
        """
        covariance = as_covariance(covariance, dtype=check_solve_dtype(dtype))
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending, (d_k,), (d_k, d_k)
        return cls.from_eigendecomposition(
            eigenvalues, eigenvectors, tau, relative=relative, allow_empty_null_space=allow_empty_null_space
        )

    @classmethod
    def from_eigendecomposition(
        cls, eigenvalues, eigenvectors, tau: float, *, relative: bool = False, allow_empty_null_space: bool = False
    ) -> NullSpaceProjector:
        """``from_covariance`` for a covariance whose eigendecomposition is already known (it saves the
        ``O(d_k^3)`` step): ``eigenvalues`` ascending (d_k,) and orthonormal ``eigenvectors`` (d_k, d_k)
        as ``torch.linalg.eigh`` returns them, in float64 or float32. Orthonormality is not checked."""
        check_solve_dtype(eigenvectors.dtype)
        if eigenvalues.dim() != 1 or eigenvectors.shape != (len(eigenvalues), len(eigenvalues)):
            raise ProjectionError(
                f"eigenvalues (d_k,) and eigenvectors (d_k, d_k) expected, got shapes {tuple(eigenvalues.shape)} "
                f"and {tuple(eigenvectors.shape)}"
            )
        if not bool((eigenvalues[1:] >= eigenvalues[:-1]).all()):
            raise ProjectionError("eigenvalues must be in ascending order, as torch.linalg.eigh returns them")
        if not (torch.isfinite(eigenvalues).all() and torch.isfinite(eigenvectors).all()):
            raise ProjectionError("the eigendecomposition contains NaN or Inf entries")
        threshold = eigen_threshold(eigenvalues, tau, relative)
        null_dim = int((eigenvalues < threshold).sum())
        if null_dim == 0 and not allow_empty_null_space:
            kind = f"relative tau={tau:g} (cut {threshold:.3g})" if relative else f"tau={tau:g}"
            raise ProjectionError(
                f"{kind} leaves no null space: the smallest eigenvalue of the covariance is "
                f"{float(eigenvalues[0]):.3g}, at or above the cut; choose a cut above it"
            )
        if null_dim == len(eigenvalues):
            warnings.warn(
                f"tau={tau:g} (cut {threshold:.3g}) is above every eigenvalue of the covariance (the largest is "
                f"{float(eigenvalues[-1]):.3g}): the null space is the whole key space ({null_dim} of {null_dim} "
                "dimensions), so the projection protects nothing; choose a cut below the largest eigenvalue",
                ProtectsNothingWarning,
                stacklevel=3,
            )
        return cls(eigenvectors[:, null_dim:], eigenvectors[:, :null_dim], eigenvalues=eigenvalues, threshold=threshold)

    @property
    def dtype(self) -> torch.dtype:
        return self.protected_basis.dtype

    @property
    def device(self) -> torch.device:
        return self.protected_basis.device

    @property
    def discarded_eigenvalue_sum(self) -> float:
        """``trace(P C0)``: the sum of the eigenvalues below the cut (the leftover bound's right side)."""
        if self.eigenvalues is None:
            raise ProjectionError("this projector was not built from a covariance; it has no spectrum")
        return float(self.eigenvalues[: self.null_dim].sum())

    def apply(self, keys) -> torch.Tensor:
        """``P K`` for keys (d_k, n) or a single key (d_k,), without forming ``P``."""
        keys = torch.as_tensor(keys)
        vector = keys.dim() == 1
        matrix = as_matrix(keys[:, None] if vector else keys, "keys", self.dtype, self.device)
        check_rows(matrix, self.d_k, "keys", "the projector's d_k")
        if self.uses_null_factor:
            projected = self.null_basis @ (self.null_basis.T @ matrix)  # (d_k, n)
        else:
            projected = matrix - self.protected_basis @ (self.protected_basis.T @ matrix)  # (d_k, n)
        return projected[:, 0] if vector else projected

    def dense(self) -> torch.Tensor:
        """The dense (d_k, d_k) matrix ``P``. Costs ``d_k^2`` memory: for checks and small d_k."""
        if self.uses_null_factor:
            return self.null_basis @ self.null_basis.T
        eye = torch.eye(self.d_k, dtype=self.dtype, device=self.device)
        return eye - self.protected_basis @ self.protected_basis.T

    def __repr__(self) -> str:
        return (
            f"NullSpaceProjector(d_k={self.d_k}, null_dim={self.null_dim}, "
            f"protected_dim={self.protected_dim}, dtype={self.dtype})"
        )


class ProtectedBasis:
    """An orthonormal basis ``B`` (d_k, r) of everything that later updates must not touch.

    It starts as the span of the covariance's eigenvectors at or above ``tau`` (preserved
    knowledge) and grows with the keys of every committed edit batch. ``projector()`` returns
    ``P = I - B B^T``; ``capacity_left`` is ``d_k - r``.

    ``rtol``: a new direction is accepted when its singular value, after removing the part
    already in span(B), exceeds ``rtol * ||K_t||_2``. Smaller components are dropped: they are
    what is left of the guarantee (``||P K_s|| <= rtol * ||K_s||_2`` up to rounding).
    """

    def __init__(self, basis: torch.Tensor, *, rtol: float | None = None):
        if not isinstance(basis, torch.Tensor) or basis.dim() != 2:
            raise ProjectionError(f"basis must be a 2-D tensor (d_k, r), got {getattr(basis, 'shape', type(basis))}")
        check_solve_dtype(basis.dtype)
        if not torch.isfinite(basis).all():
            raise ProjectionError("basis contains NaN or Inf entries")
        self.basis = basis
        self.rtol = DEFAULT_BASIS_RTOL[basis.dtype] if rtol is None else check_positive(rtol, "rtol")
        if self.rtol >= 1:
            raise ProjectionError(f"rtol must be below 1, got {self.rtol}")
        self.committed_keys = 0  # keys added through add_keys, for reports

    @classmethod
    def from_covariance(
        cls,
        covariance,
        tau: float,
        *,
        relative: bool = False,
        dtype: torch.dtype = SOLVE_DTYPE,
        rtol: float | None = None,
    ) -> ProtectedBasis:
        """Start from the eigenvectors of ``C0`` at or above the cut (what AlphaEdit protects)."""
        projector = NullSpaceProjector.from_covariance(covariance, tau, relative=relative, dtype=dtype)
        return cls(projector.protected_basis.clone(), rtol=rtol)

    @classmethod
    def from_eigendecomposition(
        cls, eigenvalues, eigenvectors, tau: float, *, relative: bool = False, rtol: float | None = None
    ) -> ProtectedBasis:
        """``from_covariance`` for a known eigendecomposition of ``C0`` (see ``NullSpaceProjector``)."""
        projector = NullSpaceProjector.from_eigendecomposition(eigenvalues, eigenvectors, tau, relative=relative)
        return cls(projector.protected_basis.clone(), rtol=rtol)

    @classmethod
    def empty(
        cls, d_k: int, *, dtype: torch.dtype = SOLVE_DTYPE, device=None, rtol: float | None = None
    ) -> ProtectedBasis:
        """Protect nothing yet (pure sequential independence, no preserved-knowledge term)."""
        if int(d_k) < 1:
            raise ProjectionError(f"d_k must be a positive integer, got {d_k!r}")
        return cls(torch.zeros(int(d_k), 0, dtype=check_solve_dtype(dtype), device=device), rtol=rtol)

    @property
    def d_k(self) -> int:
        return self.basis.shape[0]

    @property
    def rank(self) -> int:
        return self.basis.shape[1]

    @property
    def capacity_left(self) -> int:
        """Dimensions still free for updates: ``d_k - rank``."""
        return self.d_k - self.rank

    def projector(self) -> NullSpaceProjector:
        """``P = I - B B^T`` for the current basis."""
        return NullSpaceProjector(self.basis)

    def new_directions(self, keys) -> torch.Tensor:
        """The orthonormal directions (d_k, m) that ``keys`` (d_k, n) would add, without adding them."""
        keys = as_matrix(keys, "keys", self.basis.dtype, self.basis.device)
        check_rows(keys, self.d_k, "keys", "the basis's d_k")
        residual = keys
        for _ in range(2):  # Gram-Schmidt twice: one pass loses orthogonality when keys lie near span(B)
            residual = residual - self.basis @ (self.basis.T @ residual)  # (d_k, n)
        left, singular_values, _ = torch.linalg.svd(residual, full_matrices=False)
        scale = float(torch.linalg.matrix_norm(keys, ord=2))
        keep = singular_values > self.rtol * scale
        return left[:, keep]

    def directions_needed(self, keys) -> int:
        """How many dimensions the batch claims: the numerical rank of ``keys`` (d_k, n).

        Each independent key uses one dimension of the null space (a key repeated in a batch
        uses one). A batch whose keys partly lie in span(B) still claims its full rank: an update
        cannot be both invisible to the protected keys and effective on keys inside their span.
        """
        keys = as_matrix(keys, "keys", self.basis.dtype, self.basis.device)
        check_rows(keys, self.d_k, "keys", "the basis's d_k")
        return key_rank(keys, rtol=self.rtol)

    def _check_room(self, needed: int) -> None:
        if needed > self.capacity_left:
            raise CapacityError(
                f"null space exhausted: this batch needs {needed} dimensions (the rank of its keys) but only "
                f"{self.capacity_left} of d_k={self.d_k} are left ({self.rank} protected)",
                needed=needed,
                available=self.capacity_left,
            )

    def check_capacity(self, keys) -> int:
        """Raise CapacityError (changing nothing) if ``keys`` do not fit; else return the dimensions needed."""
        needed = self.directions_needed(keys)
        self._check_room(needed)
        return needed

    def add_keys(self, keys) -> int:
        """Append the new directions of a committed batch; returns how many were added.

        Raises CapacityError before changing anything when they do not fit.
        """
        self.check_capacity(keys)
        directions = self.new_directions(keys)
        self.basis = torch.cat([self.basis, directions], dim=1)
        self.committed_keys += torch.as_tensor(keys).shape[1]
        return directions.shape[1]

    def __repr__(self) -> str:
        return f"ProtectedBasis(d_k={self.d_k}, rank={self.rank}, capacity_left={self.capacity_left})"


def projector_from_span(
    matrix, *, rtol: float = DEFAULT_BASIS_RTOL[torch.float64], dtype: torch.dtype = SOLVE_DTYPE
) -> NullSpaceProjector:
    """A projector built fresh from the column span of ``matrix`` (d_k, m), by one SVD.

    The reference against which the incremental ``ProtectedBasis`` is checked.
    """
    matrix = as_matrix(matrix, "matrix", dtype)
    left, singular_values, _ = torch.linalg.svd(matrix, full_matrices=False)
    keep = singular_values > rtol * float(singular_values.max())
    return NullSpaceProjector(left[:, keep])
