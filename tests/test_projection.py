"""The projector and the protected basis: algebraic properties, the exact form, errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from langedit_mini import CapacityError, NullSpaceProjector, ProjectionError, ProtectedBasis, projector_from_span

SETTINGS = settings(max_examples=40, deadline=None)


def covariance_with_spectrum(eigenvalues: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """C = Q diag(eigenvalues) Q^T with a seeded random rotation Q."""
    generator = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(
        torch.randn(len(eigenvalues), len(eigenvalues), generator=generator, dtype=torch.float64)
    )
    return rotation @ torch.diag(eigenvalues) @ rotation.T, rotation


@st.composite
def spectra(draw, min_d=2, max_d=24):
    """A random spectrum spanning up to twelve orders of magnitude, with possible exact zeros."""
    d = draw(st.integers(min_d, max_d))
    exponents = draw(st.lists(st.floats(-10, 2), min_size=d, max_size=d))
    zeros = draw(st.integers(0, d // 2))
    values = torch.tensor([10.0**e for e in exponents], dtype=torch.float64)
    values[:zeros] = 0.0
    return values.sort(descending=True).values


@SETTINGS
@given(spectra(), st.integers(0, 2**16))
def test_projector_is_symmetric_idempotent_and_kills_protected_directions(eigenvalues, seed):
    covariance, _ = covariance_with_spectrum(eigenvalues, seed)
    tau = float(eigenvalues.max()) * 1.0001  # at least one eigenvalue below: never empty
    projector = NullSpaceProjector.from_covariance(covariance, tau)
    p = projector.dense()
    assert torch.allclose(p, p.T, atol=1e-12)
    assert torch.allclose(p @ p, p, atol=1e-10)
    assert projector.null_dim + projector.protected_dim == len(eigenvalues)
    if projector.protected_dim:
        assert projector.apply(projector.protected_basis).abs().max() < 1e-10


@SETTINGS
@given(spectra(min_d=3), st.integers(0, 2**16), st.integers(1, 6))
def test_apply_matches_dense_through_either_factor(eigenvalues, seed, n):
    covariance, _ = covariance_with_spectrum(eigenvalues, seed)
    tau = float(eigenvalues[len(eigenvalues) // 2]) * 1.0001 + 1e-300
    projector = NullSpaceProjector.from_covariance(covariance, tau, allow_empty_null_space=True)
    keys = torch.randn(len(eigenvalues), n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    thin_protected = NullSpaceProjector(projector.protected_basis)  # forced through k - B B^T k
    expected = projector.dense() @ keys
    assert torch.allclose(projector.apply(keys), expected, atol=1e-10)
    assert torch.allclose(thin_protected.apply(keys), expected, atol=1e-10)
    assert torch.allclose(projector.apply(keys[:, 0]), expected[:, 0], atol=1e-10)


def test_threshold_absolute_and_relative_count_the_null_space():
    eigenvalues = torch.tensor([10.0, 1.0, 0.1, 0.01, 0.001], dtype=torch.float64)
    covariance, _ = covariance_with_spectrum(eigenvalues, 0)
    assert NullSpaceProjector.from_covariance(covariance, 0.05).null_dim == 2
    assert NullSpaceProjector.from_covariance(covariance, 0.5).null_dim == 3
    assert NullSpaceProjector.from_covariance(covariance, 0.005, relative=True).null_dim == 2  # cut 0.05
    projector = NullSpaceProjector.from_covariance(covariance, 0.05)
    assert projector.discarded_eigenvalue_sum == pytest.approx(0.011, rel=1e-9)


def test_uses_the_thinner_factor():
    eigenvalues = torch.tensor([1.0] * 7 + [1e-6] * 3, dtype=torch.float64)
    covariance, _ = covariance_with_spectrum(eigenvalues, 1)
    projector = NullSpaceProjector.from_covariance(covariance, 1e-3)
    assert projector.null_dim == 3 and projector.uses_null_factor
    assert not NullSpaceProjector.from_covariance(torch.diag(eigenvalues.flip(0) * 0 + 1e-6), 1e-3).uses_null_factor


@SETTINGS
@given(spectra(), st.integers(1, 400))
def test_leftover_identity_on_the_keys_that_define_the_covariance(eigenvalues, n_samples):
    """mean ||P k||^2 over the columns of K0 equals trace(P C0) = the sum of the discarded eigenvalues."""
    generator = torch.Generator().manual_seed(n_samples)
    keys = torch.sqrt(eigenvalues)[:, None] * torch.randn(
        len(eigenvalues), n_samples, generator=generator, dtype=torch.float64
    )
    covariance = keys @ keys.T / n_samples
    tau = float(torch.linalg.eigvalsh(covariance).max()) * 0.5 + 1e-300
    projector = NullSpaceProjector.from_covariance(covariance, tau, allow_empty_null_space=True)
    leftover = float((projector.apply(keys) ** 2).sum(dim=0).mean())
    expected = float(projector.eigenvalues[: projector.null_dim].sum())
    assert leftover == pytest.approx(expected, rel=1e-8, abs=1e-12 * float(covariance.abs().max()))


@SETTINGS
@given(
    st.integers(4, 30), st.lists(st.integers(1, 5), min_size=1, max_size=5), st.integers(0, 2**16), st.integers(0, 3)
)
def test_incremental_basis_equals_a_fresh_projector_of_the_stacked_span(d_k, batch_sizes, seed, initial_rank):
    generator = torch.Generator().manual_seed(seed)
    initial_rank = min(initial_rank, d_k - 1)
    start, _ = torch.linalg.qr(torch.randn(d_k, max(initial_rank, 1), generator=generator, dtype=torch.float64))
    basis = ProtectedBasis(start[:, :initial_rank].clone())
    stacked = [start[:, :initial_rank]]
    for size in batch_sizes:
        keys = 3.0 * torch.randn(d_k, size, generator=generator, dtype=torch.float64)
        if basis.directions_needed(keys) > basis.capacity_left:
            with pytest.raises(CapacityError):
                basis.add_keys(keys)
            break
        basis.add_keys(keys)
        stacked.append(keys)
    incremental = basis.projector().dense()
    fresh = (
        projector_from_span(torch.cat(stacked, dim=1)).dense() if basis.rank else torch.eye(d_k, dtype=torch.float64)
    )
    assert torch.allclose(incremental, fresh, atol=1e-8)
    assert torch.allclose(basis.basis.T @ basis.basis, torch.eye(basis.rank, dtype=torch.float64), atol=1e-10)


def test_keys_already_protected_add_no_direction_and_repeats_count_once():
    basis = ProtectedBasis.empty(6)
    keys = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert basis.add_keys(torch.cat([keys, keys[:, :1] * 2.0], dim=1)) == 2  # the repeat is in the span
    assert basis.add_keys(keys @ torch.tensor([[1.0], [-0.5]], dtype=torch.float64)) == 0
    assert basis.capacity_left == 4


def test_capacity_error_says_so_before_changing_anything():
    basis = ProtectedBasis.empty(5)
    generator = torch.Generator().manual_seed(3)
    basis.add_keys(torch.randn(5, 3, generator=generator, dtype=torch.float64))
    before = basis.basis.clone()
    with pytest.raises(CapacityError, match="needs 3 dimensions .* only 2 of d_k=5") as caught:
        basis.add_keys(torch.randn(5, 3, generator=generator, dtype=torch.float64))
    assert caught.value.needed == 3 and caught.value.available == 2
    assert torch.equal(basis.basis, before)


@pytest.mark.parametrize(
    "matrix, message",
    [
        (torch.ones(3, 4), "square"),
        (torch.tensor([[1.0, 2.0], [0.0, 1.0]]), "not symmetric"),
        (torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]), "NaN or Inf"),
        (torch.tensor([[float("inf"), 0.0], [0.0, 1.0]]), "NaN or Inf"),
        (torch.ones(3), "2-D"),
        (torch.zeros(0, 0), "empty"),
        ("not a matrix", "must be a matrix"),
    ],
)
def test_bad_covariances_get_clear_errors(matrix, message):
    with pytest.raises(ProjectionError, match=message):
        NullSpaceProjector.from_covariance(matrix, 1e-2)


def test_tau_that_leaves_no_null_space_is_refused_with_the_smallest_eigenvalue():
    covariance = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
    with pytest.raises(ProjectionError, match=r"leaves no null space.*smallest eigenvalue .* is 1"):
        NullSpaceProjector.from_covariance(covariance, 0.5)
    with pytest.raises(ProjectionError, match="relative tau must lie in"):
        NullSpaceProjector.from_covariance(covariance, 1.5, relative=True)
    for tau in (0.0, -1.0, float("nan"), "x"):
        with pytest.raises(ProjectionError, match="tau"):
            NullSpaceProjector.from_covariance(covariance, tau)


def test_dtype_policy_float64_default_float32_on_request_half_refused():
    covariance = torch.diag(torch.tensor([1.0, 1e-4], dtype=torch.float16))
    assert NullSpaceProjector.from_covariance(covariance, 1e-2).dtype == torch.float64
    assert NullSpaceProjector.from_covariance(covariance, 1e-2, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ProjectionError, match="solve dtype"):
        NullSpaceProjector.from_covariance(covariance, 1e-2, dtype=torch.bfloat16)


def test_key_shape_mismatch_is_named():
    projector = NullSpaceProjector.from_covariance(torch.eye(4, dtype=torch.float64) * 1e-3, 1e-2)
    with pytest.raises(ProjectionError, match="keys has 3 rows but the projector's d_k is 4"):
        projector.apply(torch.ones(3, 2))
    with pytest.raises(ProjectionError, match="keys has 3 rows but the basis's d_k is 4"):
        ProtectedBasis.empty(4).add_keys(torch.ones(3, 2))


@SETTINGS
@given(spectra(min_d=3), st.integers(0, 2**16), st.floats(0.001, 0.9))
def test_tau_for_leftover_bounds_the_discarded_share(eigenvalues, seed, fraction):
    from langedit_mini import tau_for_leftover

    eigenvalues = eigenvalues + 1e-3  # strictly positive spectrum
    covariance, _ = covariance_with_spectrum(eigenvalues, seed)
    try:
        tau = tau_for_leftover(covariance, fraction)
    except ProjectionError as error:
        assert "leaves no null space" in str(error)
        smallest = eigenvalues.min()
        tied = eigenvalues[(eigenvalues - smallest).abs() <= 1e-8 * eigenvalues.max()]
        assert float(tied.sum()) > fraction * float(eigenvalues.sum()) * (1 - 1e-9)
        return
    projector = NullSpaceProjector.from_covariance(covariance, tau)
    trace = float(eigenvalues.sum())
    assert projector.discarded_eigenvalue_sum <= fraction * trace * (1 + 1e-9)
    assert projector.null_dim >= 1
    # maximal up to ties: discarding the next distinct group of eigenvalues would exceed the budget
    if projector.null_dim < len(eigenvalues):
        kept = projector.eigenvalues[projector.null_dim :]
        next_group = kept[(kept - kept[0]).abs() <= 1e-8 * eigenvalues.max()]
        assert projector.discarded_eigenvalue_sum + float(next_group.sum()) > fraction * trace * (1 - 1e-9)


def test_a_known_eigendecomposition_gives_the_projector_and_the_rules_of_the_covariance():
    from langedit_mini.core.updates import AlphaEditRule, LangEditExactRule, LangEditPublishedRule

    eigenvalues = torch.logspace(-6, 1, 12, dtype=torch.float64)
    covariance, rotation = covariance_with_spectrum(eigenvalues.flip(0), seed=3)
    known = (eigenvalues, rotation.flip(1))  # ascending, with their eigenvectors as columns
    direct = NullSpaceProjector.from_covariance(covariance, 1e-2)
    given_ = NullSpaceProjector.from_eigendecomposition(*known, 1e-2)
    assert given_.null_dim == direct.null_dim == 7  # the eigenvalues below 1e-2
    assert torch.allclose(given_.dense(), direct.dense(), atol=1e-10)
    keys = torch.randn(12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    residuals = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for rule_type, options in (
        (AlphaEditRule, {}),
        (LangEditPublishedRule, {"n_samples": 50}),
        (LangEditExactRule, {}),
    ):
        plain = rule_type(covariance, tau=1e-2, **options)
        fast = rule_type(covariance, tau=1e-2, eigendecomposition=known, **options)
        assert torch.allclose(plain.propose(residuals, keys), fast.propose(residuals, keys), atol=1e-9)
    exact = LangEditExactRule(None, tau=1e-2, eigendecomposition=known)  # no covariance needed
    assert exact.capacity_left == 7
    with pytest.raises(ProjectionError, match="ascending"):
        NullSpaceProjector.from_eigendecomposition(eigenvalues.flip(0), rotation, 1e-2)
    with pytest.raises(ProjectionError, match="shapes"):
        NullSpaceProjector.from_eigendecomposition(eigenvalues[:5], rotation, 1e-2)
