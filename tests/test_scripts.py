"""Every study script takes the model by name: the pocket models and a random model of another family run
through the same runner (``study.testbeds``), and what cannot run on a model says why."""

import json

import pandas as pd
import pytest
from test_runner import load_script

TINY = "tiny-random-qwen2"
SMALL = ["--languages", "en", "de", "--edits-per-language", "1", "--batch-size", "1", "--threads", "1"]


def test_the_study_runs_on_a_random_model_of_another_family_and_records_it(tmp_path):
    made = load_script("run_study").main(
        ["--model", TINY, *SMALL, "--seeds", "0", "--methods", "MEMIT", "LangEdit-exact", "--output", str(tmp_path)]
    )
    assert made == 2
    record = json.loads((tmp_path / "parts" / "seed0-MEMIT" / "part.json").read_text())
    assert record["parameters"]["model"] == TINY and record["parameters"]["dataset"] == "pocket"
    assert record["parameters"]["weights"] == {"source": "random", "model": TINY}
    assert json.loads((tmp_path / "provenance.json").read_text())["complete"]


def test_the_density_plan_comes_from_the_models_own_key_dimension(capsys):
    assert load_script("run_density").main(["--model", TINY, "--dry-run", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    from langedit_mini.study.density import grid_for, point_name

    # the tiny model's d_k is 64: a batch of round(64 * 100 / 14336) = 0, at least 1; the paper's point first,
    # with every seed, then seed 0 at every other point, then the other seeds
    grid = grid_for(64)
    assert grid["batch_size"] == 1
    paper = point_name(grid["paper"])
    steps = [line for line in printed.splitlines() if line.startswith("== ")]
    assert steps[0] == f"== {paper} (delta), seeds [0, 1, 2]" and steps[1] == f"== {paper}-mt (mt), seeds [0, 1, 2]"
    for edits in grid["edits_per_language"]:
        if edits != grid["paper"]:
            assert f"== {point_name(edits)} (delta), seeds [0]" in steps
            assert f"== {point_name(edits)} (delta), seeds [1, 2]" in steps


def test_tuning_and_the_one_batch_yardstick_run_on_it(tmp_path):
    tuned = load_script("tune").main(
        ["--model", TINY, *SMALL, "--tuning-facts", "20", "--methods", "MEMIT", "--configs", "1"]
        + ["--output", str(tmp_path)]
    )
    assert tuned["model"] == TINY and tuned["chosen"] == {}  # one configuration: no choice from part of a grid
    assert tuned["stage"] == 2 and len(tuned["grids"]["MEMIT"]) == 12  # both stages by default
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 1
    # beside the row, every request's final score of the objective's metrics: their means are the row's
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert set(scores.config) == set(runs.config) and set(scores.package_hash) == set(runs.package_hash)
    for metric, part in scores.groupby("metric"):
        assert part.teacher_forced.mean() == pytest.approx(runs[f"{metric} TF"].iloc[0], abs=1e-12)
        assert part.exact_match.mean() == pytest.approx(runs[f"{metric} EM"].iloc[0], abs=1e-12)
    # before it, the unedited model scored on the same requests: locality 1 by construction, and its row the
    # mean of its scores; a second tuning in the folder reads it and does not score it again
    unedited = json.loads((tmp_path / "unedited.json").read_text())
    floor = pd.read_csv(tmp_path / "unedited_scores.csv")
    keys = ["lang", "fact_id", "metric"]
    assert sorted(map(tuple, floor[keys].values)) == sorted(map(tuple, scores[keys].values))
    assert (floor[floor.metric == "locality"].teacher_forced == 1.0).all() and unedited["locality TF"] == 1.0
    assert unedited["reliability TF"] == pytest.approx(floor[floor.metric == "reliability"].teacher_forced.mean())
    assert unedited["written TF"] == unedited["reliability TF"] and unedited["package_hash"] == runs.package_hash[0]
    again = load_script("tune").main(
        ["--model", TINY, *SMALL, "--tuning-facts", "20", "--unedited", "--output", str(tmp_path)]
    )
    assert again == {"unedited": unedited}
    alone = load_script("tune").main(
        ["--model", TINY, *SMALL, "--tuning-facts", "20", "--unedited", "--output", str(tmp_path / "alone")]
    )
    assert alone["unedited"]["objective"] == pytest.approx(unedited["objective"], abs=1e-12)
    assert sorted(path.name for path in (tmp_path / "alone").iterdir()) == ["unedited.json", "unedited_scores.csv"]
    table = load_script("batch_of_100").main(["--model", TINY, "--edits", "2", "--methods", "MEMIT", "--threads", "1"])
    assert list(table.index) == ["MEMIT"]


def test_what_cannot_run_says_why(tmp_path, capsys):
    # a random model knows no fact: the causal trace of G3 has nothing to trace
    with pytest.raises(SystemExit):
        load_script("calibrate").main(["--model", TINY, "--batch-size", "1", "--output", str(tmp_path)])
    assert "answers none of the sampled facts" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_script("run_study").main(["--model", "no-such-model", "--output", str(tmp_path)])
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_script("run_study").main(["--model", "pocket", "--set", "no_such_setting=1", "--output", str(tmp_path)])
    assert "unknown setting 'no_such_setting'" in capsys.readouterr().err
    # a batch of none is refused by every script that takes one, never replaced by the density grid's default
    for script, flag in (("calibrate", "--batch-size"), ("sweep_value_steps", "--tuning-facts")):
        with pytest.raises(SystemExit):
            load_script(script).main(["--model", TINY, flag, "0", "--output", str(tmp_path)])
        assert f"{flag} must be at least 1, got 0" in capsys.readouterr().err


def test_batch_defaults_are_the_density_grids():
    from langedit_mini.interface.arguments import add_batch, batch_from, study_parser
    from langedit_mini.study.density import density_grid
    from langedit_mini.study.testbeds import load_testbed

    parser = study_parser("")
    add_batch(parser)
    testbed = load_testbed(TINY)
    grid = density_grid(testbed)
    chosen = batch_from(parser, parser.parse_args(["--model", TINY]), testbed)
    assert chosen == {"batch_size": grid["batch_size"], "tuning_facts": grid["tuning_facts"]}
    chosen = batch_from(parser, parser.parse_args(["--model", TINY, "--batch-size", "3"]), testbed)
    assert chosen == {"batch_size": 3, "tuning_facts": grid["tuning_facts"]}


def test_the_value_site_probe_writes_g1_with_delta_after_the_block(tmp_path, capsys):
    """The probe of where a normalised model's value step adds delta: given a hyperparameter file whose value step
    adds it to the MLP output before the norm, it writes G1's batches from a copy of that file with the residual
    site (kept beside the results), whose target values differ from the MLP site's; the batches are written and
    scored in every language by the methods asked, and what it cannot probe is refused."""
    import json
    from dataclasses import replace

    import torch

    from langedit_mini.data.languages import LANGUAGES
    from langedit_mini.editing.defaults import HPARAMS_DIRECTORY, default_config, load_hparams
    from langedit_mini.model.architecture import detect_architecture
    from langedit_mini.model.values import compute_target_values
    from langedit_mini.study.testbeds import load_testbed

    gemma = "tiny-random-gemma3_text"
    probe = load_script("probe_value_site")
    testbed = load_testbed(gemma)
    config = default_config("MEMIT", testbed.hparams)
    arguments = (testbed.model, testbed.tokenizer, detect_architecture(testbed.model), testbed.requests[:1])
    mlp_site = compute_target_values(*arguments, config.layers[-1], replace(config.values, site="mlp"))
    residual = compute_target_values(*arguments, config.layers[-1], replace(config.values, site="residual"))
    assert torch.allclose(mlp_site.hidden, residual.hidden) and not torch.allclose(mlp_site.z, residual.z, atol=1e-6)
    data = json.loads((HPARAMS_DIRECTORY / "tiny-random.json").read_text())
    data["values"]["site"] = "mlp"
    mlp_file = tmp_path / "mlp.json"
    mlp_file.write_text(json.dumps(data))
    flags = ["--model", gemma, "--batch-size", "1", "--tuning-facts", "20", "--threads", "1", "--methods", "MEMIT"]
    output = tmp_path / "probe"
    info = probe.main([*flags, "--hparams", str(mlp_file), "--output", str(output)])
    shared, _ = load_hparams(output / "hparams.json")
    assert shared["values"] == replace(load_hparams(mlp_file)[0]["values"], site="residual")
    assert info["probe"]["value_site"] == "residual" and list(info["written_with"]) == ["MEMIT"]
    assert info["written_with"]["MEMIT"]["values"]["site"] == "residual"
    assert [claim["claim"].split()[0] for claim in info["gates"]["G1"]["claims"]] == ["MEMIT"] * 3
    assert set(pd.read_csv(output / "write.csv").lang) == set(LANGUAGES)
    with pytest.raises(SystemExit):  # the shipped file already adds delta after the block: nothing to probe
        probe.main([*flags, "--output", str(tmp_path / "again")])
    assert "already adds delta to the residual stream" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        probe.main(["--model", TINY, "--threads", "1", "--output", str(tmp_path / "llama-like")])
    assert "has no norm after its MLP output" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        probe.main(["--model", gemma, "--threads", "1"])
    assert "--output is required" in capsys.readouterr().err
