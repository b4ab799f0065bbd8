"""Input checks shared by the projection math and the closed-form updates.

Every public function of the core validates what enters it here, so that a bad
matrix fails at the door with a message that names the argument, says what was
wrong and what would be right, instead of producing a silent NaN three solves later.

Dtype policy (stated once, used everywhere): the linear algebra of this package
(eigendecompositions, solves, Gram-Schmidt) runs in ``SOLVE_DTYPE`` (float64) by
default, whatever the dtype of the inputs. float32 may be asked for explicitly
(``dtype=torch.float32``) when memory matters more than the last digits; half
precision (float16 / bfloat16) is refused for solves. Results come back in the
solve dtype; whoever writes an update into a model casts it to the model's dtype.
"""

from __future__ import annotations

import torch

#: The dtype every solve and eigendecomposition runs in unless the caller asks otherwise.
SOLVE_DTYPE = torch.float64
#: Dtypes a caller may ask solves to run in.
ALLOWED_SOLVE_DTYPES = (torch.float64, torch.float32)


class ProjectionError(ValueError):
    """A matrix or parameter handed to the projection math is unusable."""


class CapacityError(RuntimeError):
    """The null space has no room left for a batch of keys.

    Raised *before* anything is changed, with the numbers: how many dimensions the
    batch needs and how many are left.
    """

    def __init__(self, message: str, *, needed: int, available: int):
        super().__init__(message)
        self.needed = needed
        self.available = available


def check_solve_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return ``dtype`` if solves may run in it, else raise with the allowed choices."""
    if dtype not in ALLOWED_SOLVE_DTYPES:
        raise ProjectionError(f"solve dtype {dtype} is not supported; use torch.float64 (default) or torch.float32")
    return dtype


def as_matrix(x, name: str, dtype: torch.dtype = SOLVE_DTYPE, device=None) -> torch.Tensor:
    """Convert ``x`` (tensor or array-like) to a finite 2-D tensor of ``dtype``.

    Raises ProjectionError naming ``name`` when ``x`` is not 2-D, is empty, or holds NaN/Inf.
    """
    check_solve_dtype(dtype)
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ProjectionError(f"{name} must be a matrix (tensor or array), got {type(x).__name__}") from error
    if x.dim() != 2:
        raise ProjectionError(f"{name} must be 2-D, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ProjectionError(f"{name} is empty (shape {tuple(x.shape)})")
    if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64, torch.bool)):
        raise ProjectionError(f"{name} must hold real numbers, got dtype {x.dtype}")
    x = x.to(dtype=dtype, device=device if device is not None else x.device)
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ProjectionError(f"{name} contains {bad} NaN or Inf entries")
    return x


def as_covariance(
    c, name: str = "covariance", dtype: torch.dtype = SOLVE_DTYPE, device=None, symmetry_rtol: float = 1e-6
) -> torch.Tensor:
    """A finite, square, symmetric matrix; symmetrised exactly on return.

    Symmetry is checked relative to the largest entry: ``max|C - C^T| <= symmetry_rtol * max|C|``.
    Accumulated second moments are symmetric only up to rounding, hence the tolerance.
    """
    c = as_matrix(c, name, dtype, device)
    if c.shape[0] != c.shape[1]:
        raise ProjectionError(f"{name} must be square (d_k x d_k), got shape {tuple(c.shape)}")
    scale = float(c.abs().max())
    asymmetry = float((c - c.T).abs().max())
    if asymmetry > symmetry_rtol * max(scale, 1e-300):
        raise ProjectionError(
            f"{name} is not symmetric: max|C - C^T| = {asymmetry:.3g} exceeds {symmetry_rtol:g} x max|C| "
            f"= {symmetry_rtol * scale:.3g}; a second moment K K^T / N is symmetric"
        )
    return (c + c.T) / 2


def check_rows(matrix: torch.Tensor, expected: int, name: str, what: str) -> None:
    """Raise if ``matrix`` does not have ``expected`` rows (``what`` says where that number comes from)."""
    if matrix.shape[0] != expected:
        raise ProjectionError(
            f"{name} has {matrix.shape[0]} rows but {what} is {expected} (shape {tuple(matrix.shape)})"
        )


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0 when ``allow_zero``)."""
    try:
        value = float(value)
    except (TypeError, ValueError) as error:
        raise ProjectionError(f"{name} must be a number, got {value!r}") from error
    if not torch.isfinite(torch.tensor(value)) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ProjectionError(f"{name} must be a finite number {bound}, got {value!r}")
    return value
