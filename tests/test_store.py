"""The store's resumable sweep (``store.Sweep``): what a sweep stopped midway keeps, and what it refuses."""

import pandas as pd
import pytest

from langedit_mini.study import store


def test_a_sweep_keeps_its_units_and_timings_across_resumes_and_refuses_other_settings(tmp_path):
    settings = {"model": "m", "seed": 0}
    sweep = store.Sweep(tmp_path, "sweep.json", settings, tables=["scores", "extra"], unit="size", progress={"n": 0})
    assert store.read_json(tmp_path / "sweep.json") == settings | {"n": 0, "timings_s": {}}  # settings first
    assert not sweep.done(300)
    sweep.add(
        "300",
        12.34,
        {"scores": pd.DataFrame({"size": [300, 300], "x": [1, 2]}), "extra": pd.DataFrame({"a": [1]})},
        n=1,
    )
    resumed = store.Sweep(tmp_path, "sweep.json", settings, tables=["scores", "extra"], unit="size")
    assert resumed.done(300) and not resumed.done(1000)
    assert resumed.timings == {"300": 12.3} and resumed.record["n"] == 1
    assert len(resumed.tables["scores"]) == 2 and len(resumed.tables["extra"]) == 1
    resumed.add("1000", 5.0, {"scores": pd.DataFrame({"size": [1000], "x": [3]}), "extra": pd.DataFrame({"a": [2]})})
    assert list(pd.read_csv(tmp_path / "scores.csv")["size"]) == [300, 300, 1000]
    final = resumed.finish({"sizes": [300, 1000]})
    assert final == settings | {"timings_s": {"300": 12.3, "1000": 5.0}, "sizes": [300, 1000]}
    assert store.read_json(tmp_path / "sweep.json") == final  # the progress fields replaced by the summary
    with pytest.raises(ValueError, match="holds a sweep with other settings"):
        store.Sweep(tmp_path, "sweep.json", settings | {"seed": 1}, tables=["scores"], unit="size")
