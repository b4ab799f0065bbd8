"""The band sweep: bands parsed and named, every band written and scored in every language, a resumed sweep runs
only the bands it lacks, the choice is the best objective, and bad input says what was wrong."""

import json

import pandas as pd
import pytest
from test_runner import load_script

from langedit_mini.study.bands import band_name, band_summary, choose_band, parse_band

TINY = "tiny-random-qwen2"


def test_a_band_is_parsed_and_named_both_ways():
    assert parse_band("3-7") == (3, 4, 5, 6, 7) and band_name((3, 4, 5, 6, 7)) == "3-7"
    assert parse_band("7,3,5") == (3, 5, 7) and band_name((3, 5, 7)) == "3,5,7"
    assert parse_band("4") == (4,) and band_name((4,)) == "4"
    for bad in ("3-x", "", "7-3", "-1", "2,2"):
        with pytest.raises(ValueError, match="band"):
            parse_band(bad)


def _scores(objective_by_band, unreached=None):
    """Two requests per batch (method and band), in English; ``unreached``: band -> the count per batch."""
    rows = []
    for band, (memit, alpha) in objective_by_band.items():
        for method, value in (("MEMIT", memit), ("AlphaEdit", alpha)):
            for metric in ("reliability", "generality", "locality", "portability"):
                rows += 2 * [
                    {"band": band, "method": method, "metric": metric, "lang": "en"}
                    | {"teacher_forced": value if metric != "portability" else 0.0}
                    | {"unreached": (unreached or {}).get(band, 0)}
                ]
    return pd.DataFrame(rows)


def test_the_summary_averages_the_objective_over_methods_and_the_best_band_is_chosen():
    summary = band_summary(_scores({"1-2": (0.2, 0.6), "2-3": (0.5, 0.5), "3-4": (0.9, 0.1)}, {"2-3": 1}))
    assert list(summary.band) == ["1-2", "2-3", "3-4"]
    assert summary.objective.round(6).tolist() == [0.4, 0.5, 0.5]  # portability is not in the objective
    assert summary["objective MEMIT"].round(6).tolist() == [0.2, 0.5, 0.9]
    assert summary.unreached.tolist() == [0.0, 0.5, 0.0]  # one of each batch's two requests
    assert choose_band(summary) == "2-3"  # the first of equals
    with pytest.raises(ValueError, match="lack the columns"):
        band_summary(_scores({"1-2": (0.2, 0.6)}).drop(columns="unreached"))


def _interrupt_after_first_band(line):
    if line.startswith("band ") and line.endswith(" s"):
        raise KeyboardInterrupt


def test_the_sweep_writes_every_band_in_every_language_and_resumes(tmp_path, capsys, monkeypatch):
    script = load_script("sweep_bands")
    arguments = ["--model", TINY, "--batch-size", "1", "--tuning-facts", "30", "--threads", "1"]
    arguments += ["--output", str(tmp_path)]
    assert script.main([*arguments, "--bands", "0"])["chosen"] is None  # one band measured, nothing chosen
    first = script.main([*arguments, "--bands", "0", "1"])
    scores = pd.read_csv(tmp_path / "scores.csv", dtype={"band": str})
    assert set(scores.band) == {"0", "1"} and set(scores.method) == {"MEMIT", "AlphaEdit"}
    assert scores.groupby("band").lang.nunique().tolist() == [6, 6]
    assert first["chosen"] in {"0", "1"} and set(first["timings_s"]) == {"0", "1"}
    margin = first["margin"]  # the best band against the other, paired over 2 methods x 6 languages x 1 fact
    assert margin["over"] == ({"0", "1"} - {first["chosen"]}).pop() and margin["pairs"] == 12
    assert margin["mean"] >= 0 and margin["separated"] == (margin["mean"] - margin["half_width_95"] > 0)
    again = script.main([*arguments, "--bands", "0", "0,1"])
    assert set(again["timings_s"]) == {"0", "1", "0-1"}  # band 0 was not run again; the earlier timings kept
    assert "band 0: already swept" in capsys.readouterr().out
    record = json.loads((tmp_path / "bands.json").read_text())
    assert record["bands"] == ["0", "1", "0-1"] and record["weights"]["source"] == "random"
    assert len(pd.read_csv(tmp_path / "summary.csv")) == 3
    with pytest.raises(SystemExit):
        script.main([*arguments, "--bands", "0", "--seed", "1"])  # another sweep in the same folder
    assert "holds a sweep with other settings" in capsys.readouterr().err
    stopped = tmp_path / "stopped"  # a sweep stopped after its first band keeps its settings and timings
    stopped_arguments = [*arguments[:-1], str(stopped)]
    sweep_bands = script.sweep_bands
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(script, "sweep_bands", lambda *a, **k: sweep_bands(*a, **k, log=_interrupt_after_first_band))
        script.main([*stopped_arguments, "--bands", "0", "1"])
    assert set(json.loads((stopped / "bands.json").read_text())["timings_s"]) == {"0"}
    with pytest.raises(SystemExit):
        script.main([*stopped_arguments, "--bands", "1", "--seed", "1"])
    assert "holds a sweep with other settings" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([*arguments, "--bands", "9"])  # the tiny model has 2 layers
    assert "layer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([*arguments, "--bands", "1-x"])
    assert "a band is written" in capsys.readouterr().err


def _paired(values_by_band):
    """One request per (method, language): ``values_by_band`` band -> {(method, lang): objective value}."""
    rows = []
    for band, values in values_by_band.items():
        for (method, lang), value in values.items():
            for metric in ("reliability", "generality", "locality"):
                rows.append({"band": band, "method": method, "lang": lang, "fact_id": f"f-{lang}"})
                rows[-1] |= {"metric": metric, "teacher_forced": value, "unreached": 0}
    return pd.DataFrame(rows)


def test_the_margin_between_bands_is_paired_by_request_and_its_interval_says_whether_it_separates():
    from langedit_mini.study.bands import band_margin

    keys = [(method, lang) for method in ("MEMIT", "AlphaEdit") for lang in ("en", "de", "fr")]
    steady = _paired({"a": dict.fromkeys(keys, 0.9), "b": {k: 0.9 - 0.1 - 0.001 * i for i, k in enumerate(keys)}})
    mean, half, pairs = band_margin(steady, "a", "b")
    assert pairs == 6 and mean == pytest.approx(0.1025) and 0 < half < 0.01  # separated: the interval excludes 0
    noisy = _paired(
        {"a": dict.fromkeys(keys, 0.5), "b": {k: 0.5 + (0.3 if i % 2 else -0.29) for i, k in enumerate(keys)}}
    )
    mean, half, _ = band_margin(noisy, "a", "b")
    assert mean - half < 0 < mean + half  # a small mean difference inside a wide interval: not separated
    with pytest.raises(ValueError, match="the same requests"):
        band_margin(steady[~((steady.band == "b") & (steady.lang == "fr"))], "a", "b")
    with pytest.raises(ValueError, match="needs bands"):
        band_margin(steady, "a", "c")
