"""The per-model hyperparameter files: listed, readable, copyable, and checked when read."""

import json

import pytest

from langedit_mini.editing.defaults import MODEL_NAMES, default_config, list_hparams, load_hparams
from langedit_mini.pocket import POCKET_EDIT_LAYERS, POCKET_LEFTOVER_FRACTION, POCKET_WIDE_EDIT_LAYERS


def test_every_model_has_a_file_with_a_note():
    table = list_hparams()
    assert set(table.index) == set(MODEL_NAMES) >= {"pocket", "pocket-wide", "llama-3-8b", "qwen2.5-7b", "gpt-j-6b"}
    assert (table.note.str.len() > 40).all()
    assert load_hparams("llama-3-8b")[0]["layers"] == (4, 5, 6, 7, 8)
    # the constants the chapters cite agree with the files
    assert load_hparams("pocket")[0]["layers"] == POCKET_EDIT_LAYERS
    assert load_hparams("pocket")[1]["leftover_fraction"] == POCKET_LEFTOVER_FRACTION
    assert load_hparams("pocket-wide")[0]["layers"] == POCKET_WIDE_EDIT_LAYERS


def test_a_copied_and_changed_file_is_what_the_config_uses(tmp_path):
    data = json.loads(open(list_hparams().loc["llama-3-8b", "path"]).read())
    data["layers"], data["settings"]["alpha"], data["values"]["steps"] = [5, 6], 3.0, 7
    path = tmp_path / "my-model.json"
    path.write_text(json.dumps(data))
    config = default_config("AlphaEdit", hparams=path)
    assert config.layers == (5, 6) and config.settings.alpha == 3.0 and config.values.steps == 7
    assert default_config("MEMIT", hparams=path).settings.mom2_weight == 15000.0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"layers": []}, "layers must be a non-empty list"),
        ({"values": {"lr": 1}}, "unknown value settings"),
        ({"values": {"site": "after the block"}}, "bad.json: ValueSettings.site must be one of residual, mlp"),
        ({"extra": 1}, "unknown"),
    ],
)
def test_a_bad_file_is_refused_naming_it(tmp_path, change, message):
    data = json.loads(open(list_hparams().loc["pocket", "path"]).read()) | change
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        load_hparams(path)
    with pytest.raises(ValueError, match="no defaults for model 'mistral-7b'"):
        load_hparams("mistral-7b")


def test_a_file_can_tune_one_method_apart_from_the_others(tmp_path):
    data = json.loads(open(list_hparams().loc["pocket", "path"]).read())
    data["methods"] = {"AlphaEdit": {"alpha": 7.0, "tau": 0.5}, "MEMIT": {"mom2_weight": 42.0}}
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(data))
    alphaedit = default_config("AlphaEdit", hparams=path).settings
    assert alphaedit.alpha == 7.0 and alphaedit.tau == 0.5 and alphaedit.leftover_fraction is None
    exact = default_config("LangEdit-exact", hparams=path).settings  # the file's shared settings
    assert exact.alpha == data["settings"]["alpha"] and exact.leftover_fraction == data["settings"]["leftover_fraction"]
    assert default_config("MEMIT", hparams=path).settings.mom2_weight == 42.0
    assert default_config("AlphaEdit", hparams=path, alpha=3.0).settings.alpha == 3.0  # the caller's word is last
    data["methods"] = {"ROME": {"alpha": 1.0}}
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="unknown methods \\['ROME'\\]"):
        load_hparams(path)


def test_a_cut_given_replaces_the_files_cut_of_the_other_kind():
    # SmolLM2's file cuts at an absolute tau; a tuning grid gives leftover fractions (and the pocket file the reverse)
    by_fraction = default_config("AlphaEdit", "smollm2-135m", leftover_fraction=0.05, alpha=30.0).validate().settings
    assert by_fraction.tau is None and by_fraction.leftover_fraction == 0.05 and by_fraction.alpha == 30.0
    absolute = default_config("AlphaEdit", "pocket", tau=0.3).validate().settings
    assert absolute.tau == 0.3 and absolute.leftover_fraction is None
    both = default_config("AlphaEdit", "smollm2-135m", tau=None, leftover_fraction=0.1).validate().settings
    assert both.tau is None and both.leftover_fraction == 0.1
