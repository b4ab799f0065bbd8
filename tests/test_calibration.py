"""The calibration gates pass and fail on the numbers they are given, and the two diagnostic measures
measure what they say (synthetic spectra and keys with known answers)."""

import pandas as pd
import pytest
import torch
from test_stats import tiny_model

from langedit_mini.data.datasets import EditRequest
from langedit_mini.model.statistics import SecondMoment
from langedit_mini.study.calibration import (
    covariance_coverage,
    key_distinctness,
    mechanism_gate,
    sequential_gate,
    write_gate,
)


def one_batch(memit, alphaedit):
    rows = []
    for method, (reliability, generality, locality) in (("MEMIT", memit), ("AlphaEdit", alphaedit)):
        for metric, value in (("reliability", reliability), ("generality", generality), ("locality", locality)):
            rows += [{"method": method, "metric": metric, "teacher_forced": value}] * 3
    return pd.DataFrame(rows)


def test_write_gate_needs_every_metric_of_both_methods_over_its_bound():
    assert write_gate(one_batch((0.97, 0.9, 0.95), (0.96, 0.86, 0.91)), 25).passed
    failing = write_gate(one_batch((0.97, 0.9, 0.95), (0.94, 0.86, 0.91)), 25)
    assert not failing.passed
    assert failing.table().holds.tolist().count(False) == 1
    with pytest.raises(ValueError, match="needs the scores of AlphaEdit"):
        write_gate(one_batch((1, 1, 1), (1, 1, 1)).query("method == 'MEMIT'"), 25)


def finals(alphaedit, memit, locality=(0.9, 0.9)):
    rows = []
    for seed, (a, m) in enumerate(zip(alphaedit, memit)):
        rows += [
            {"method": "AlphaEdit", "seed": seed, "metric": "reliability", "teacher_forced": a},
            {"method": "MEMIT", "seed": seed, "metric": "reliability", "teacher_forced": m},
            {"method": "AlphaEdit", "seed": seed, "metric": "locality", "teacher_forced": locality[0]},
            {"method": "MEMIT", "seed": seed, "metric": "locality", "teacher_forced": locality[1]},
        ]
    return pd.DataFrame(rows)


def test_sequential_gate_asks_for_an_interval_that_excludes_zero():
    assert sequential_gate(finals([0.8, 0.82, 0.79], [0.5, 0.55, 0.52]), 0.17).passed
    # the mean difference is positive, but the seeds disagree: the interval includes 0
    assert not sequential_gate(finals([0.8, 0.5, 0.9], [0.5, 0.6, 0.52]), 0.17).passed
    # better reliability bought with clearly worse locality fails
    assert not sequential_gate(finals([0.8, 0.82, 0.79], [0.5, 0.55, 0.52], locality=(0.5, 0.9)), 0.17).passed
    # one seed gives no interval: never a pass
    assert not sequential_gate(finals([0.9], [0.1]), 0.17).passed


def summary(peak_layer, band_share):
    rows = [
        {
            "site": "mlp",
            "position": "subject last",
            "layer": layer,
            "indirect_effect": 0.3 if layer == peak_layer else 0.05,
            "total_effect": 0.8,
            "share_of_total": 0.0,
        }
        for layer in range(5)
    ]
    rows.append(
        {
            "site": "mlp band",
            "position": "subject last",
            "layer": -1,
            "indirect_effect": band_share * 0.8,
            "total_effect": 0.8,
            "share_of_total": band_share,
        }
    )
    return pd.DataFrame(rows)


def test_mechanism_gate_wants_the_peak_in_the_band_and_a_third_of_the_effect_through_it():
    assert mechanism_gate(summary(2, 0.5), [1, 2, 3]).passed
    assert not mechanism_gate(summary(0, 0.5), [1, 2, 3]).passed
    assert not mechanism_gate(summary(2, 0.2), [1, 2, 3]).passed


def test_covariance_coverage_of_keys_inside_and_outside_the_preserved_directions():
    torch.manual_seed(0)
    d = 16
    basis = torch.linalg.qr(torch.randn(d, d))[0]
    values = torch.cat([torch.full((8,), 1e-4), torch.linspace(1, 2, 8)])  # 8 directions carry ~all the energy
    covariance = basis @ torch.diag(values) @ basis.T
    statistics = {3: SecondMoment(3, covariance, 1000)}
    inside = basis[:, 8:] @ torch.randn(8, 5)  # keys in the preserved directions
    outside = basis[:, :8] @ torch.randn(8, 5)  # keys in the null space
    low = covariance_coverage(statistics, {3: inside}, leftovers=(0.01,)).iloc[0]
    high = covariance_coverage(statistics, {3: outside}, leftovers=(0.01,)).iloc[0]
    assert low.null_dim == 8 and low.null_share < 1e-10
    assert high.null_share == pytest.approx(1.0)
    assert high.preserved_null_share < 0.01


def test_key_distinctness_on_a_model(tokenizer):
    model = tiny_model("llama", tokenizer)
    requests = [
        EditRequest(prompt="The capital of {} is", subject=s, target="Paris", lang="en")
        for s in ("Chile", "Peru", "Chile", "Japan", "Kenya")
    ]
    frame = key_distinctness(model, tokenizer, requests, [0, 1])
    assert frame.subjects.tolist() == [4, 4]  # the repeated subject is counted once
    assert ((frame.mean_cosine > -1) & (frame.mean_cosine <= 1)).all()
    assert ((frame.effective_dimension >= 1) & (frame.effective_dimension <= 4)).all()
    with pytest.raises(ValueError, match="two subjects"):
        key_distinctness(model, tokenizer, requests[:1], [0])
