"""The sample-size sweep of C0: each size's statistics come from the first texts of each language alone, its
tokens are those C0 averaged, rank(P) is read at the file's cut, sizes resume, and bad input says what was wrong."""

import json

import pandas as pd
import pytest

from langedit_mini.pocket import covariance_texts
from langedit_mini.study.preserved import first_texts, sweep_sample_sizes
from langedit_mini.study.testbeds import load_testbed

LANGUAGES = ("en", "de", "fr", "es", "nl", "zh")


def _by_language(per_language=40):
    texts = covariance_texts()
    return {lang: texts[i * per_language : (i + 1) * per_language] for i, lang in enumerate(LANGUAGES)}


def test_first_texts_takes_the_head_of_every_language_and_refuses_sizes_it_cannot_give():
    texts = _by_language(5)
    assert first_texts(texts, 2) == {lang: texts[lang][:2] for lang in LANGUAGES}
    with pytest.raises(ValueError, match="fewer"):
        first_texts(texts, 6)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="positive"):
            first_texts(texts, bad)


def test_each_size_writes_every_language_with_its_own_statistics_and_the_sweep_resumes(tmp_path, capsys):
    testbed = load_testbed("tiny-random-qwen2")
    texts = _by_language()
    settings = {"batch_size": 1, "tuning_facts": 30, "log": print}
    first = sweep_sample_sizes(testbed, tmp_path, (1,), [2, 40], texts, **settings)
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert set(scores["size"]) == {2, 40} and scores.groupby("size").lang.nunique().tolist() == [6, 6]
    assert set(scores.method) == {"AlphaEdit"}
    null_space = pd.read_csv(tmp_path / "null_space.csv")
    for size in (2, 40):  # the tokens counted are the keys C0 averaged over, and C0's rank cannot exceed them
        row = null_space[null_space["size"] == size].iloc[0]
        tokens = sum(first["tokens"][str(size)].values())
        assert row.n_samples == tokens
        assert row.rank_P >= row.d_k - tokens
    small, large = (null_space[null_space["size"] == s].iloc[0] for s in (2, 40))
    assert small.n_samples < large.n_samples
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["size"].tolist() == [2, 40] and summary.tokens.tolist()[0] < summary.tokens.tolist()[1]
    again = sweep_sample_sizes(testbed, tmp_path, (1,), [2, 40, 10], texts, **settings)
    assert "2 texts per language: already swept" in capsys.readouterr().out
    assert sorted(again["sizes"]) == [2, 10, 40] and set(again["timings_s"]) == {"2", "10", "40"}
    assert json.loads((tmp_path / "preserved.json").read_text())["weights"]["source"] == "random"
    with pytest.raises(ValueError, match="other settings"):
        sweep_sample_sizes(testbed, tmp_path, (0,), [2], texts, **settings)  # another band in the same folder
    with pytest.raises(ValueError, match="fewer"):
        sweep_sample_sizes(testbed, tmp_path / "new", (1,), [2, 41], texts, **settings)  # checked before any run
    assert not (tmp_path / "new" / "scores.csv").exists()
