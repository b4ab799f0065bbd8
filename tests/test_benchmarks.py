"""The benchmark scripts run and write what the performance chapter reads (tiny sizes; no timing asserted).

The numbers themselves come from ``make benchmarks``; here the scripts' code paths run at toy sizes,
writing into a temporary folder instead of ``benchmarks/results/``.
"""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
import covariance  # noqa: E402
import end_to_end  # noqa: E402
import gpu_projector  # noqa: E402
import projector  # noqa: E402
import scaling  # noqa: E402
import values  # noqa: E402


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    return tmp_path


def test_projector_benchmark_writes_both_forms_and_the_exact_form_does_not_leak(results_dir):
    projector.main(["--dk", "96", "--batches", "3", "--keys", "8", "--leftover", "0.05"])
    saved = json.loads((results_dir / "projector.json").read_text())
    assert {run["form"] for run in saved["runs"]} == {"exact", "published"}
    assert saved["machine"]["cores"] >= 1 and saved["commit"]
    rows = saved["comparison"]["96"]
    assert len(rows) == 3
    # the exact form never touches earlier batches' keys; the published blend does
    assert max(row["leak_exact"] for row in rows) < 1e-9
    assert max(row["leak_published"] for row in rows) > 1e-6
    assert saved["summary"]["96"]["speedup"] > 0


def test_gpu_projector_refuses_without_cuda_and_dry_runs_on_cpu(results_dir, capsys):
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA device"):
            gpu_projector.main([])
    result = gpu_projector.main(["--device", "cpu", "--dk", "64", "--batches", "2", "--keys", "4"])
    assert [run["form"] for run in result["runs"]] == ["exact", "published"]
    assert all(len(run["batch_s"]) == 2 for run in result["runs"])
    assert (results_dir / "gpu_projector.json").exists()
    with pytest.raises(SystemExit, match="--dk >= 2"):
        gpu_projector.main(["--device", "cpu", "--dk", "1"])


def test_values_benchmark_compares_batched_and_single_target_values(results_dir):
    values.main(["--requests", "2"])
    saved = json.loads((results_dir / "values.json").read_text())
    assert saved["speedup"] > 0 and saved["request_steps"]["batched"] >= 2
    # batching must not change the answer: the same z, request by request
    assert saved["max_relative_z_difference"] < 1e-3


@pytest.mark.slow
def test_end_to_end_benchmark_accounts_for_every_stage(results_dir):
    end_to_end.main(["--edits-per-language", "1", "--batch-size", "1"])
    saved = json.loads((results_dir / "end_to_end.json").read_text())
    assert saved["edits"] == 6 and len(saved["batches"]) == 6
    assert {"statistics", "values", "evaluation"} <= set(saved["stages_s"])
    assert sum(saved["stages_s"].values()) <= saved["wall_s"] * 1.01


@pytest.mark.slow
def test_covariance_benchmark_measures_growth_and_a_cache_hit(results_dir):
    covariance.main(["--sizes", "1", "2", "--texts", "100"])
    saved = json.loads((results_dir / "covariance.json").read_text())
    assert [run["size"] for run in saved["runs"]] == [1, 2] and saved["runs"][0]["texts"] == 100
    assert saved["runs"][1]["tokens"] == 2 * saved["runs"][0]["tokens"]
    assert saved["cache_miss"]["from_cache"] is False and saved["cache_hit"]["from_cache"] is True


@pytest.mark.slow
def test_scaling_benchmark_fits_exponents(results_dir):
    scaling.main(["--edits", "2", "4", "--dk", "512", "1024"])  # 100 keys a batch: smaller d_k run out
    saved = json.loads((results_dir / "scaling.json").read_text())
    assert [row["edits"] for row in saved["edits"]] == [2, 4] and [row["d_k"] for row in saved["dk"]] == [512, 1024]
    assert set(saved["exponents"]) == {"edits", "dk_exact", "dk_published"}
