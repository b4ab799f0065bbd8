"""scripts/diagnose_forgetting.py (where forgetting enters, key by key) and the reader the ablations chapter
uses for its committed result. The script runs at toy size here; the committed result is its full run."""

import json

import pandas as pd
import pytest
from test_runner import ROOT, load_script

from langedit_mini.study.diagnosis import DIAGNOSIS_KINDS
from langedit_mini.study.findings import diagnosis_tables, read_diagnosis


def _script():
    return load_script("diagnose_forgetting")


@pytest.mark.slow
def test_toy_diagnosis_shows_the_guarantee_where_it_is_stated_and_the_keys_it_does_not_cover(tmp_path):
    output = tmp_path / "forgetting.json"
    _script().main(
        [
            "--edits",
            "2",
            "--methods",
            "MEMIT",
            "LangEdit-exact",
            "--covariances",
            "statements+questions",
            "--output",
            str(tmp_path),
        ]
    )
    rows, provenance = read_diagnosis(output)
    assert provenance["parameters"]["batches"] == ["en", "de"] and not provenance["stale"]
    assert set(rows.method) == {"MEMIT", "LangEdit-exact"} and set(rows.key) == set(DIAGNOSIS_KINDS)
    change = rows.set_index(["method", "key"])["change median"]
    share = rows.set_index(["method", "key"])["null share median"]
    # the exact form leaves the committed keys untouched and keeps them out of the null space ...
    assert change["LangEdit-exact", "committed key"] < 1e-6
    assert share["LangEdit-exact", "committed key"] < 1e-6
    # ... but not the keys scoring reads elsewhere, and MEMIT protects none
    assert change["LangEdit-exact", "other prompt keys"] > 1e-3
    assert share["LangEdit-exact", "other prompt keys"] > 1e-3
    assert change["MEMIT", "committed key"] > 1e-3
    assert pd.isna(share["MEMIT", "committed key"])  # MEMIT has no projector
    assert rows["keys measured"].min() >= 2
    for column in ("reliability before", "reliability after", "batch 2 reliability"):
        assert rows[column].between(0, 1).all()
    tables = diagnosis_tables(rows)
    assert list(tables["change"].columns) == list(DIAGNOSIS_KINDS)
    assert list(tables["null share"].index) == [("statements+questions", "LangEdit-exact")]


def test_the_script_refuses_fine_tuning_and_bad_sizes():
    script = _script()
    with pytest.raises(SystemExit):
        script.main(["--methods", "FT"])
    with pytest.raises(SystemExit):
        script.main(["--edits", "0"])


def test_reader_names_what_a_malformed_result_lacks(tmp_path, monkeypatch):
    path = tmp_path / "forgetting.json"
    path.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="lacks .*'parameters'"):
        read_diagnosis(path)
    good = {"parameters": {}, "commit": "abc", "package_hash": "0" * 16, "finished": "now", "wall_s": 1.0}
    path.write_text(json.dumps(good | {"rows": [{"covariance": "statements", "method": "MEMIT"}]}))
    with pytest.raises(ValueError, match="lack the columns .*'change median'"):
        read_diagnosis(path)
    row = {
        "covariance": "statements",
        "method": "MEMIT",
        "key": "elsewhere",
        "change median": 0.1,
        "null share median": None,
        "reliability before": 1.0,
        "reliability after": 0.5,
        "batch 2 reliability": 1.0,
    }
    path.write_text(json.dumps(good | {"rows": [row]}))
    with pytest.raises(ValueError, match="unknown kinds of key \\['elsewhere'\\]"):
        read_diagnosis(path)
    path.write_text(json.dumps(good | {"rows": [row | {"key": "committed key"}]}))
    import langedit_mini.study.findings as findings

    assert diagnosis_tables(read_diagnosis(path)[0])["null share"].empty  # MEMIT alone: no null space to show
    monkeypatch.setattr(findings, "is_current", lambda run_hash: run_hash == "0" * 16)
    assert not read_diagnosis(path)[1]["stale"]
    monkeypatch.setattr(findings, "is_current", lambda run_hash: run_hash == "f" * 16)
    assert read_diagnosis(path)[1]["stale"]  # editing code changed since the diagnosis was made


def test_the_findings_quote_the_committed_numbers_and_compute_their_verdicts(tmp_path):
    from langedit_mini.study.findings import DIAGNOSIS_GLUE, diagnosis_findings

    absent = diagnosis_findings(tmp_path / "none.json")
    assert absent["tables"] is None and set(absent["glue"]) == set(DIAGNOSIS_GLUE)
    assert set(absent["glue"].values()) == {"not measured"}
    committed = diagnosis_findings(ROOT / "results" / "diagnostics" / "pocket" / "forgetting.json")
    glued, change = committed["glue"], committed["tables"]["change"]
    assert glued["diag_exact_prompt"] == f"{change.loc[('statements', 'LangEdit-exact'), 'other prompt keys']:.3f}"
    assert float(glued["diag_exact_committed"]) < 1e-6  # the guarantee, on the committed keys
    assert glued["diag_verdict"].startswith("the guarantee holds where it is stated")
    assert "not measured" not in glued.values() and glued["diag_status"].startswith("scripts/diagnose_forgetting.py")
