"""``scripts/verify_runs.py``: the run hash a checkout's code records for a model, asked of that checkout."""

import pytest
from test_runner import ROOT, load_script

from langedit_mini.study.testbeds import run_hash


def _script():
    return load_script("verify_runs")


def test_a_checkout_gives_the_run_hash_it_records_for_the_model():
    script = _script()
    # today's tree: the real LLM's hash covers its own hyperparameter file and differs from the pocket model's
    assert script.checkout_run_hash(ROOT, "smollm2-135m") == run_hash("smollm2-135m") != run_hash("pocket")


def test_a_checkout_from_before_run_hash_gives_its_package_hash(tmp_path):
    """Before ``testbeds.run_hash`` every run recorded ``provenance.package_hash()``, whatever its model."""
    study = tmp_path / "langedit_mini" / "study"
    study.mkdir(parents=True)
    (tmp_path / "langedit_mini" / "__init__.py").write_text("")
    (study / "__init__.py").write_text("")
    (study / "testbeds.py").write_text("def load_testbed(name):\n    raise NotImplementedError\n")
    (study / "provenance.py").write_text("def package_hash():\n    return 'old-pocket-hash'\n")
    assert _script().checkout_run_hash(tmp_path, "smollm2-135m") == "old-pocket-hash"


def test_against_and_another_hyperparameter_file_are_refused(capsys):
    with pytest.raises(SystemExit):
        _script().main(["--model", "pocket", "--study", "density/pocket/e007", "--against", "HEAD", "--hparams", "x"])
    assert "--hparams cannot be compared with it" in capsys.readouterr().err
