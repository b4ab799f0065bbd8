"""The closed-form updates: the identities of chapter 1, the sequential rules, and their errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from langedit_mini import (
    AlphaEditRule,
    LangEditExactRule,
    LangEditPublishedRule,
    MemitRule,
    NullSpaceProjector,
    ProjectionError,
    alphaedit_delta,
    alphaedit_delta_reference,
    interference_matrix,
    memit_delta,
    projected_ridge_delta,
)
from langedit_mini.core.synthetic import SyntheticConfig, make_world, run_sequence
from langedit_mini.core.updates import BLENDS

SETTINGS = settings(max_examples=30, deadline=None)


def problem(d_k, d_v, n, n_previous, seed, null_fraction=0.5):
    """A covariance with a clear gap, a batch (R, K) and earlier keys Kp."""
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    rotation, _ = torch.linalg.qr(normal(d_k, d_k))
    null_dim = max(1, int(d_k * null_fraction))
    eigenvalues = torch.cat(
        [
            torch.linspace(1.0, 0.5, d_k - null_dim, dtype=torch.float64),
            torch.full((null_dim,), 1e-4, dtype=torch.float64),
        ]
    )
    covariance = rotation @ torch.diag(eigenvalues) @ rotation.T
    return covariance, normal(d_v, n), normal(d_k, n), normal(d_k, n_previous)


@SETTINGS
@given(
    st.integers(3, 20),
    st.integers(1, 6),
    st.integers(1, 5),
    st.integers(0, 6),
    st.integers(0, 2**16),
    st.sampled_from([0.2, 0.5, 0.8]),
    st.floats(0.1, 50),
)
def test_symmetric_form_equals_the_published_formula(d_k, d_v, n, n_previous, seed, null_fraction, alpha):
    covariance, residuals, keys, previous = problem(d_k, d_v, n, n_previous, seed, null_fraction)
    projector = NullSpaceProjector.from_covariance(covariance, 1e-2)
    moment = previous @ previous.T if n_previous else None
    reference = alphaedit_delta_reference(residuals, keys, projector, previous_key_moment=moment, alpha=alpha)
    for candidate in (projector, NullSpaceProjector(projector.protected_basis)):  # both factor paths
        delta = alphaedit_delta(residuals, keys, candidate, previous_key_moment=moment, alpha=alpha)
        assert torch.allclose(delta, reference, atol=1e-9 * (1 + reference.abs().max()))


@SETTINGS
@given(st.integers(3, 20), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**16), st.floats(0.1, 50))
def test_exact_identity_delta_k0_is_zero_when_p_k0_is_zero(d_k, d_v, n, seed, alpha):
    covariance, residuals, keys, previous = problem(d_k, d_v, n, 3, seed)
    projector = NullSpaceProjector.from_covariance(covariance, 1e-2)
    protected = projector.protected_basis  # P k0 = 0 for these k0
    moment = previous @ previous.T
    # M k0 = alpha k0 with M = (Kp Kp^T + K K^T) P + alpha I
    m = (moment + keys @ keys.T) @ projector.dense() + alpha * torch.eye(d_k, dtype=torch.float64)
    assert torch.allclose(m @ protected, alpha * protected, atol=1e-10 * (1 + m.abs().max()))
    delta = alphaedit_delta(residuals, keys, projector, previous_key_moment=moment, alpha=alpha)
    scale = torch.linalg.matrix_norm(delta) + 1e-300
    assert torch.linalg.matrix_norm(delta @ protected) <= 1e-12 * scale
    reference = alphaedit_delta_reference(residuals, keys, projector, previous_key_moment=moment, alpha=alpha)
    assert torch.linalg.matrix_norm(reference @ protected) <= 1e-9 * scale


@SETTINGS
@given(st.integers(3, 20), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**16), st.floats(0.1, 50))
def test_woodbury_form_equals_the_dense_solve(d_k, d_v, n, seed, alpha):
    covariance, residuals, keys, _ = problem(d_k, d_v, n, 0, seed)
    projector = NullSpaceProjector(NullSpaceProjector.from_covariance(covariance, 1e-2).protected_basis)
    dense = alphaedit_delta(residuals, keys, projector, alpha=alpha)
    assert torch.allclose(
        projected_ridge_delta(residuals, keys, projector, alpha=alpha), dense, atol=1e-9 * (1 + dense.abs().max())
    )


@SETTINGS
@given(st.integers(2, 16), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**16), st.floats(0.01, 10))
def test_memit_solves_its_normal_equations(d_k, d_v, n, seed, weight):
    covariance, residuals, keys, _ = problem(d_k, d_v, n, 0, seed)
    delta = memit_delta(residuals, keys, covariance, mom2_weight=weight)
    left = delta @ (weight * covariance + keys @ keys.T)
    assert torch.allclose(left, residuals @ keys.T, atol=1e-8 * (1 + left.abs().max()))


def test_langedit_exact_updates_are_invisible_to_every_earlier_batch():
    world = make_world(SyntheticConfig(d_k=128, d_v=16, edits_per_language=8, n_languages=6, seed=5))
    result = run_sequence(LangEditExactRule(world.covariance, alpha=1.0), world)
    assert len(result.deltas) == 6 and result.stopped_by_capacity is None
    earlier = torch.tril(torch.ones(6, 6, dtype=torch.bool), -1)
    assert result.interference[earlier].max() <= 1e-8
    memit = run_sequence(MemitRule(world.covariance), world)
    assert memit.interference[earlier].min() > 1e3 * result.interference[earlier].max()
    assert max(result.edit_residual) < 0.5  # the edits were written (a zero update scores 1)


@pytest.mark.parametrize("blend", BLENDS)
def test_published_recompute_follows_its_blend(blend):
    world = make_world(
        SyntheticConfig(d_k=48, d_v=4, edits_per_language=5, n_languages=3, seed=2, preserved_samples=200)
    )
    rule = LangEditPublishedRule(world.covariance, n_samples=200, blend=blend, tau=2e-2, alpha=1.0)
    expected_covariance = world.covariance.clone()
    running = torch.zeros_like(expected_covariance)
    for t, keys in enumerate(world.edit_keys, start=1):
        before = rule.projector.dense()
        rule.propose(world.residuals[t - 1], keys)
        assert torch.equal(rule.projector.dense(), before)  # propose changes nothing
        rule.commit(keys)
        running += keys @ keys.T
        if blend == "reference":  # the reference code's constants, whatever N and n are here
            a_t, b_t = 100_000 / (100_000 + 100 * t), 100 / (100_000 + 100 * t)
            expected_covariance = a_t * expected_covariance + b_t * running
        elif blend == "counted":
            a_t, b_t = 200 / (200 + 5 * t), 5 / (200 + 5 * t)
            expected_covariance = a_t * expected_covariance + b_t * running
        else:  # every key once, in a mean over the 200 samples and the 5 t keys
            expected_covariance = (200 * world.covariance + running) / (200 + 5 * t)
        assert torch.allclose(rule.blended_covariance, expected_covariance, atol=1e-12)
        fresh = NullSpaceProjector.from_covariance(expected_covariance, 2e-2)
        assert rule.capacity_left == fresh.null_dim
        assert torch.allclose(rule.projector.dense(), fresh.dense(), atol=1e-8)


def test_the_reference_blend_counts_early_keys_again_at_every_batch():
    # the arithmetic: after 8 batches of 100 a first-batch key weighs about 786 times its pooled share
    d_k, batches = 4, 8
    covariance = torch.diag(torch.tensor([1.0, 1.0, 1e-6, 1e-6], dtype=torch.float64))  # a null space under the cut
    rules = {blend: LangEditPublishedRule(covariance, n_samples=100_000, blend=blend, tau=1e-3) for blend in BLENDS}
    first = torch.zeros(d_k, 100, dtype=torch.float64)
    first[0] = 1.0  # batch 1's keys: e_0; the later batches' keys: zero (only the first batch's weight matters)
    for rule in rules.values():
        rule.commit(first)
        for _ in range(batches - 1):
            rule.commit(torch.zeros(d_k, 100, dtype=torch.float64))
    weight = {
        blend: float(rule.blended_covariance[0, 0] - rule.blended_covariance[1, 1]) for blend, rule in rules.items()
    }
    pooled_share = 100 / (100_000 + 100 * batches)
    assert weight["pooled"] == pytest.approx(pooled_share, rel=1e-12)
    assert weight["reference"] / pooled_share == pytest.approx(786.2, rel=1e-3)


def test_alphaedit_rule_accumulates_previous_keys():
    world = make_world(SyntheticConfig(d_k=64, d_v=4, edits_per_language=3, n_languages=2, seed=1))
    rule = AlphaEditRule(world.covariance, alpha=1.0)
    for keys in world.edit_keys:
        rule.commit(keys)
    expected = sum(k @ k.T for k in world.edit_keys)
    assert torch.allclose(rule.previous_key_moment, expected)


def test_exact_rule_refuses_a_batch_that_does_not_fit_before_writing():
    world = make_world(SyntheticConfig(d_k=64, d_v=4, edits_per_language=20, n_languages=6, seed=0))
    result = run_sequence(LangEditExactRule(world.covariance, alpha=1.0), world)
    assert result.stopped_by_capacity is not None and "null space exhausted" in result.stopped_by_capacity
    assert len(result.deltas) < 6
    assert result.capacity_left == sorted(result.capacity_left, reverse=True)


def test_interference_matrix_definition():
    delta = [torch.eye(2, dtype=torch.float64), torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)]
    keys = [torch.tensor([[0.0], [1.0]], dtype=torch.float64), torch.tensor([[1.0], [1.0]], dtype=torch.float64)]
    matrix = interference_matrix(delta, keys)
    assert matrix[1, 0] == 0.0
    assert torch.isnan(matrix[0, 0]) and torch.isnan(matrix[0, 1])
    with pytest.raises(ProjectionError, match="one key batch per update"):
        interference_matrix(delta, keys[:1])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c, r, k, p: memit_delta(r, k[:-1], c), "keys has 7 rows but the covariance's d_k is 8"),
        (lambda c, r, k, p: memit_delta(r[:, :1], k, c), "residuals have 1 columns but keys have 3"),
        (lambda c, r, k, p: memit_delta(r, k, c, mom2_weight=0), "mom2_weight must be a finite number > 0"),
        (lambda c, r, k, p: alphaedit_delta(r, k, p, alpha=-1), "alpha must be a finite number > 0"),
        (lambda c, r, k, p: alphaedit_delta(r, k * float("nan"), p), "keys contains .* NaN or Inf"),
        (lambda c, r, k, p: alphaedit_delta(r * float("inf"), k, p), "residuals contains .* NaN or Inf"),
        (lambda c, r, k, p: alphaedit_delta(r, k, p, previous_key_moment=torch.ones(3, 3)), "rows|square|d_k"),
        (lambda c, r, k, p: LangEditPublishedRule(c, n_samples=0), "n_samples"),
        (lambda c, r, k, p: LangEditPublishedRule(c, n_samples=5, blend="mean"), "unknown blend 'mean'"),
        (lambda c, r, k, p: LangEditExactRule(None), "give a covariance, or d_k"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    covariance, residuals, keys, _ = problem(8, 2, 3, 0, 0)
    projector = NullSpaceProjector.from_covariance(covariance, 1e-2)
    with pytest.raises(ProjectionError, match=message):
        call(covariance, residuals, keys, projector)


def test_published_rule_refuses_a_batch_when_the_blend_fills_the_null_space():
    world = make_world(SyntheticConfig(d_k=96, d_v=4, edits_per_language=20, n_languages=6, seed=0))
    rule = LangEditPublishedRule(world.covariance, n_samples=2048, tau=2e-2, alpha=1.0)
    result = run_sequence(rule, world)
    assert result.stopped_by_capacity is not None
    assert "recomputed projector" in result.stopped_by_capacity and "needs 20" in result.stopped_by_capacity
    assert rule.capacity_left < 20 and len(result.deltas) < 6
