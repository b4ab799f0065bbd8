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
import projector_large  # noqa: E402
import real_llm_batch  # noqa: E402
import scaling  # noqa: E402
import scoring  # noqa: E402
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


def test_large_projector_benchmark_runs_both_forms_from_the_known_spectrum(results_dir):
    result = projector_large.main(["--dk", "64", "--batches", "3", "--published-batches", "2", "--keys", "4"])
    runs = {run["form"]: run for run in result["runs"]}
    assert len(runs["exact"]["batches"]) == 3 and len(runs["published"]["batches"]) == 2
    assert max(b["leak"] for b in runs["exact"]["batches"]) < 1e-9  # the exact form never touches old keys
    assert runs["exact"]["dense_mb"] == 64 * 64 * 8 / 2**20 and result["speedup"] > 0
    assert result["svd_against_eigh"]["svd_s"] > 0
    assert (results_dir / "projector_large.json").exists()


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


def test_values_benchmark_compares_the_three_recipes_and_their_edits(results_dir):
    values.main(["--requests", "2", "--texts", "400"])
    saved = json.loads((results_dir / "values.json").read_text())
    assert saved["settings"]["texts"] == 400  # C0 from the corpus's first 400 texts, and the file says so
    recipes = saved["recipes"]
    assert set(recipes) == {"suffix only, batched", "every token, batched", "every token, one at a time"}
    assert saved["speedup_vs_one_at_a_time"] > 0 and recipes["suffix only, batched"]["request_steps"] >= 2
    # neither batching nor the suffix-only steps may change the answer: the same z, request by request
    assert all(r["same_steps"] and r["max_relative_z_difference"] < 1e-3 for r in recipes.values())
    edits = saved["batch_of_100"]
    assert set(edits) == {"suffix only", "every token"}
    assert set(edits["suffix only"]["metrics"]) == {"reliability", "generality", "locality"}
    assert saved["largest_metric_difference"] <= 0.01
    assert saved["steps_per_request"]["max"] <= saved["steps_per_request"]["limit"]


@pytest.mark.slow
def test_end_to_end_benchmark_accounts_for_every_stage(results_dir):
    end_to_end.main(["--edits-per-language", "1", "--batch-size", "1", "--texts", "400"])
    saved = json.loads((results_dir / "end_to_end.json").read_text())
    assert saved["edits"] == 6 and len(saved["batches"]) == 6
    assert {"statistics", "values", "evaluation"} <= set(saved["stages_s"])
    assert sum(saved["stages_s"].values()) <= saved["wall_s"] * 1.01


def test_real_llm_batch_benchmark_times_every_stage_and_the_reference_recipe(results_dir):
    """On a tiny random model (the real LLMs' run is ``make benchmarks``' job): every stage timed, the cost per edit
    is the stages' sum, and the reference recipe's values agree with the package's."""
    (row,) = real_llm_batch.main(["--models", "tiny-random-llama", "--edits", "2", "--threads", "1"])
    saved = json.loads((results_dir / "real_llm_batch.json").read_text())
    assert saved["rows"][0]["model"] == "tiny-random-llama" and row["edits"] == 2
    stages = (*real_llm_batch.STAGES, "evaluation")
    assert all(row[stage] >= 0 for stage in stages)
    assert row["per edit"] == pytest.approx(sum(row[stage] for stage in stages) / 2)
    assert row["reference values"] > 0 and row["values speed-up"] > 0 and row["z apart"] < 1e-3
    assert row["value steps"] >= 1 and row["value site"] == "residual"
    # the reference recipe only for the models named: the others' rows say nothing of it
    args = ["--models", "tiny-random-llama", "--edits", "2", "--threads", "1", "--reference-models", "another"]
    (row,) = real_llm_batch.main(args)
    assert "reference values" not in row and "values speed-up" not in row and row["per edit"] > 0


def test_scoring_benchmark_groups_few_shot_prompts_and_every_score_stays(results_dir):
    """On a tiny random model asked in the few-shot form (whose examples every question of a language shares): the
    edit prompts fall into groups that save prompt tokens, and the grouped scores equal the plain ones."""
    result = scoring.main(
        ["--model", "tiny-random-llama", "--per-language", "2", "--form", "few-shot", "--threads", "1"]
    )
    saved = json.loads((results_dir / "scoring.json").read_text())
    assert saved["requests"] == 12 and saved["items"] >= 12 and set(saved["seconds"]) == set(scoring.MODES)
    groups = saved["edit_prompt_groups"]
    assert groups["grouped_prompts"] >= 2 and 0 < groups["prompt_tokens_saved"] < groups["prompt_tokens"]
    for mode in ("grouped", "grouped again"):
        check = result["agreement"][mode]
        assert check["same_items"] and check["exact_match_equal"] and check["max_teacher_forced_difference"] < 1e-5
    assert scoring.scoring.SHARED_PREFIX_MIN == saved["settings"]["shared_prefix_min"]  # restored after "plain"
    # in the raw form nothing is shared: no group, nothing saved
    scoring.main(["--model", "tiny-random-llama", "--per-language", "1", "--form", "raw", "--threads", "1"])
    saved = json.loads((results_dir / "scoring.json").read_text())
    assert (
        saved["edit_prompt_groups"]["grouped_prompts"] == 0 and saved["edit_prompt_groups"]["prompt_tokens_saved"] == 0
    )
    with pytest.raises(SystemExit):
        scoring.main(["--model", "tiny-random-llama", "--per-language", "0"])


@pytest.mark.slow
def test_covariance_benchmark_measures_growth_and_a_cache_hit(results_dir):
    covariance.main(["--sizes", "1", "2", "--texts", "100"])
    saved = json.loads((results_dir / "covariance.json").read_text())
    assert [run["size"] for run in saved["runs"]] == [1, 2] and saved["runs"][0]["texts"] == 100
    assert saved["runs"][1]["tokens"] == 2 * saved["runs"][0]["tokens"]
    assert saved["cache_miss"]["from_cache"] is False and saved["cache_hit"]["from_cache"] is True


@pytest.mark.slow
def test_scaling_benchmark_fits_exponents(results_dir):
    # 100 keys a batch: a smaller d_k runs out of null space
    scaling.main(["--edits", "2", "4", "--dk", "512", "1024", "--texts", "400"])
    saved = json.loads((results_dir / "scaling.json").read_text())
    assert [row["edits"] for row in saved["edits"]] == [2, 4] and [row["d_k"] for row in saved["dk"]] == [512, 1024]
    assert set(saved["exponents"]) == {"edits", "dk_exact", "dk_published"}
