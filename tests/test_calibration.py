"""The calibration gates pass and fail on the numbers they are given, and the two diagnostic measures
measure what they say (synthetic spectra and keys with known answers)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_stats import tiny_model

from langedit_mini.data.datasets import EditRequest
from langedit_mini.model.statistics import SecondMoment
from langedit_mini.study.calibration import covariance_coverage, key_distinctness
from langedit_mini.study.verdicts import mechanism_gate, sequential_gate, write_gate


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


def _load_script(name):
    """A script of ``scripts/`` as a module (the scripts are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_depth_probe_trains_in_chunks_resumes_and_traces_with_the_g3_gate(tmp_path, monkeypatch):
    """``scripts/probe_depth.py`` on a 2-layer variant trained briefly on 300 corpus lines: a chunk stops and a
    rerun resumes; the trace covers every layer of the variant and G3 is judged on the band given."""
    from langedit_mini.data.datasets import load_pocket
    from langedit_mini.data.schedules import split_facts
    from langedit_mini.editing.defaults import load_pocket_editing
    from langedit_mini.study import calibration
    from langedit_mini.study.calibration import known_facts
    from langedit_mini.study.calibration_readings import depth_probes

    probe = _load_script("probe_depth")
    arguments = ["--layers", "2", "--band", "1", "--epochs", "2", "--corpus-lines", "300", "--trace-facts", "1"]
    arguments += ["--checkpoints", str(tmp_path / "ckpt"), "--output", str(tmp_path / "out"), "--threads", "1"]
    assert probe.main(arguments + ["--chunk-epochs", "1"]) is None  # one epoch of two: stopped, checkpointed
    assert (tmp_path / "ckpt" / "depth-2-first300" / "checkpoint.pt").exists()
    assert not (tmp_path / "out").exists()

    # the briefly trained variant knows no fact; trace facts the shipped model knows instead
    model, tokenizer, _ = load_pocket_editing()
    study, _ = split_facts(load_pocket()[0], 200)
    facts = known_facts(model, tokenizer, study, 1, seed=0, languages=["en", "de"])
    assert facts
    monkeypatch.setattr(calibration, "known_facts", lambda *args, **kwargs: facts)
    info = probe.main(arguments)
    assert [h["epoch"] for h in info["history"]] == [1, 2]  # resumed after epoch 1
    assert info["layers"] == 2 and info["band"] == [1] and info["traced_facts"] == len(facts)
    summary = pd.read_csv(tmp_path / "out" / "L2" / "trace_summary.csv")
    assert sorted(summary[summary.site == "mlp"].layer.unique()) == [0, 1]
    assert len(info["G3"]["claims"]) == 2 and isinstance(info["G3"]["passed"], bool)
    saved = json.loads((tmp_path / "out" / "L2" / "probe.json").read_text())
    assert saved["package_hash"] == info["package_hash"] and saved["corpus_lines"] == 300

    # what the density chapter reads of it
    probes, shares = depth_probes(tmp_path / "out")
    assert probes.layers.tolist() == [2] and probes["band"].tolist() == [[1]]
    assert probes["G3 passed"].tolist() == [info["G3"]["passed"]] and probes["peak layer"].iloc[0] in (0, 1)
    assert probes["band share"].iloc[0] == pytest.approx(info["G3"]["claims"][1]["value"])
    assert sorted(shares.layer) == [0, 1] and set(shares.layers) == {2}
    assert depth_probes(tmp_path / "nothing")[0].empty
    (tmp_path / "out" / "L2").rename(tmp_path / "out" / "Lold")
    with pytest.raises(ValueError, match="named L<layers>, not Lold"):
        depth_probes(tmp_path / "out")


def test_the_depth_probe_refuses_a_band_outside_the_model(tmp_path):
    probe = _load_script("probe_depth")
    with pytest.raises(SystemExit):
        probe.main(["--layers", "4", "--band", "4", "--output", str(tmp_path)])
    with pytest.raises(SystemExit):
        probe.main(["--layers", "0", "--output", str(tmp_path)])


def test_trace_mechanism_traces_known_facts_over_every_layer_and_judges_g3_on_the_band(monkeypatch):
    """The one G3 sequence both scripts use: facts the model knows, a trace over every layer, its summary, G3."""
    from langedit_mini.data.datasets import load_pocket
    from langedit_mini.editing.defaults import load_pocket_editing
    from langedit_mini.study import calibration

    model, tokenizer, _ = load_pocket_editing()
    requests = load_pocket()[0]
    traced = calibration.trace_mechanism(model, tokenizer, requests, [1, 2], per_language=1, samples=2)
    assert 1 <= len(traced.facts) <= 6 and len({fact["lang"] for fact in traced.facts}) == len(traced.facts)
    assert sorted(traced.summary[traced.summary.site == "mlp"].layer.unique()) == [0, 1, 2, 3]
    assert "band [1, 2]" in traced.gate.claims[0].claim and len(traced.gate.claims) == 2
    with pytest.raises(ValueError, match="not inside the model's layers"):
        calibration.trace_mechanism(model, tokenizer, requests, [4], per_language=1)
    monkeypatch.setattr(calibration, "known_facts", lambda *args, **kwargs: [])
    with pytest.raises(ValueError, match="none of the sampled facts"):
        calibration.trace_mechanism(model, tokenizer, requests, [0], per_language=1)


def test_the_position_trace_reads_where_the_subject_is_read_from(tmp_path, monkeypatch):
    """``scripts/trace_positions.py`` on the shipped small model (one fact per language, one noise draw): every
    layer at all four positions, with the facts' token counts; the chapter's reader turns it into one row."""
    from langedit_mini.study import calibration
    from langedit_mini.study.calibration_readings import position_traces as read_position_traces

    script = _load_script("trace_positions")
    info = script.main(["--model", "pocket", "--trace-facts", "1", "--samples", "1", "--output", str(tmp_path)])
    assert info["pocket"]["layers"] == 4 and 1 <= info["pocket"]["traced_facts"] <= 6
    assert info["pocket"]["subject_tokens_mean"] >= 1 and "package_hash" in info["pocket"]
    summary = pd.read_csv(tmp_path / "pocket" / "trace_summary.csv")
    assert set(summary.position) == {"subject first", "subject last", "subject span", "last"}
    read = read_position_traces(tmp_path)
    assert read.model.tolist() == ["pocket"] and read.layers.tolist() == [4]
    row = read.iloc[0]
    last = summary[(summary.site == "hidden") & (summary.position == "last")].set_index("layer").share_of_total
    assert row["half at last from"] == min(layer for layer, share in last.items() if share >= 0.5)
    assert row["whole subject"] == pytest.approx(
        summary.query("site == 'hidden' and position == 'subject span' and layer == 0").share_of_total.iloc[0]
    )
    assert read_position_traces(tmp_path / "nothing").empty

    with pytest.raises(SystemExit, match="no checkpoint"):
        script.main(["--model", "--probe", "3", "--checkpoints", str(tmp_path / "none"), "--output", str(tmp_path)])
    with pytest.raises(SystemExit):
        script.main(["--model", "--output", str(tmp_path)])  # nothing to trace
    monkeypatch.setattr(calibration, "known_facts", lambda *args, **kwargs: [])
    with pytest.raises(SystemExit, match="answers none"):
        script.main(["--model", "pocket", "--output", str(tmp_path)])


def test_a_calibration_of_some_parts_keeps_the_parts_measured_before():
    from langedit_mini.study.calibration import merged_calibration

    shared = {"model": "m", "band": [3, 4], "batch_size": 11, "tuning_facts": 200, "seed": 0}
    trace = shared | {"parts": ["trace"], "gates": {"G3": {"passed": False}}, "timings_s": {"G3": 60.0}}
    trace |= {"traced_facts": 12, "noise": 0.3, "samples": 5, "window": 6, "commit": "aaa", "package_hash": "h1"}
    trace |= {"uncommitted_changes": False, "finished": "then"}
    write = shared | {"parts": ["write"], "gates": {"G1": {"passed": True}}, "timings_s": {"G1": 30.0}}
    write |= {"commit": "bbb", "package_hash": "h2", "uncommitted_changes": False, "finished": "now"}
    merged = merged_calibration(trace, write)
    assert merged["parts"] == ["write", "trace"] and set(merged["gates"]) == {"G1", "G3"}
    assert merged["gates"]["G3"] == {"passed": False} and merged["timings_s"] == {"G1": 30.0, "G3": 60.0}
    assert merged["traced_facts"] == 12 and merged["window"] == 6  # the trace's own fields stay
    assert merged["made"]["trace"]["commit"] == "aaa" and merged["made"]["write"]["commit"] == "bbb"
    assert merged["commit"] == "bbb"  # the record's own provenance is the last run's
    again = merged_calibration(merged, write | {"commit": "ccc"})  # G1 measured again: the trace still kept
    assert again["made"]["trace"]["commit"] == "aaa" and again["made"]["write"]["commit"] == "ccc"
    assert merged_calibration(None, write)["made"] == {"write": {k: write[k] for k in again["made"]["write"]}}
    everything = merged_calibration(trace, trace | {"commit": "ddd"})  # every part again: nothing of before
    assert everything["made"] == {"trace": {**everything["made"]["trace"], "commit": "ddd"}}
    with pytest.raises(ValueError, match=r"band: \[3, 4\] then, \[5, 6\] now"):
        merged_calibration(trace, write | {"band": [5, 6]})
    moved = merged_calibration(trace, trace | {"band": [5, 6], "commit": "eee"})  # every part again, other band
    assert moved["band"] == [5, 6] and moved["made"]["trace"]["commit"] == "eee"
    older = {k: v for k, v in trace.items() if k != "parts"} | {"gates": {"G1": {}, "G3": {"passed": False}}}
    kept = merged_calibration(older, write)  # a record from before parts were recorded measured every part
    assert kept["parts"] == ["write", "trace", "keys"] and kept["made"]["keys"]["commit"] == "aaa"


def test_g1_records_what_each_method_wrote_with_and_keeps_it_beside_a_later_trace(tmp_path):
    """A calibration's G1 says the settings it wrote with (the hyperparameter file can change after the run, or
    be one outside the repository), and a later trace alone keeps them."""
    import json

    from langedit_mini.editing.defaults import HPARAMS_DIRECTORY
    from langedit_mini.study.calibration import merged_calibration, written_with

    shipped = json.loads((HPARAMS_DIRECTORY / "smollm2-135m.json").read_text())
    own = shipped | {"methods": {"MEMIT": {"mom2_weight": 7.0}}, "values": shipped["values"] | {"steps": 60}}
    path = tmp_path / "own.json"
    path.write_text(json.dumps(own))
    written = written_with(str(path))
    assert set(written) == {"MEMIT", "AlphaEdit"}
    assert written["MEMIT"]["settings"]["mom2_weight"] == 7.0
    assert written["AlphaEdit"]["settings"]["alpha"] == own["settings"]["alpha"]  # no override: the shared value
    assert written["MEMIT"]["values"]["steps"] == written["AlphaEdit"]["values"]["steps"] == 60
    assert written["MEMIT"]["layers"] == own["layers"]
    shared = {"model": "m", "band": own["layers"], "batch_size": 11, "tuning_facts": 200, "seed": 0}
    provenance = {"commit": "aaa", "package_hash": "h", "uncommitted_changes": False, "finished": "then"}
    write = shared | provenance | {"parts": ["write"], "gates": {"G1": {}}, "timings_s": {}, "written_with": written}
    write |= {"probe": {"value_site": "residual"}}  # what a probe of G1's batches changed stays with them too
    trace = shared | provenance | {"parts": ["trace"], "gates": {"G3": {}}, "timings_s": {}, "commit": "bbb"}
    assert merged_calibration(write, trace)["written_with"] == written
    assert merged_calibration(write, trace)["probe"] == {"value_site": "residual"}
