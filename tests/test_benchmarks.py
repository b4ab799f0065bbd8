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
import gpu_projector  # noqa: E402
import projector  # noqa: E402


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
