"""The Wikipedia corpus for real models, exercised offline through a stand-in ``datasets`` module."""

import sys
import types

import pytest

from langedit_mini.data.corpora import wikipedia_texts


def fake_datasets(articles, calls):
    module = types.ModuleType("datasets")

    def load_dataset(name, config, split, streaming):
        calls.append((name, config, split, streaming))
        return iter(articles)

    module.load_dataset = load_dataset
    return module


def test_streams_the_first_articles_cuts_them_and_caches(tmp_path, monkeypatch):
    calls = []
    articles = [{"text": ""}, {"text": "Berlin ist die Hauptstadt. " * 10}, {"text": "Köln"}, {"text": "Bonn"}]
    monkeypatch.setitem(sys.modules, "datasets", fake_datasets(articles, calls))
    texts = wikipedia_texts(["de"], per_language=2, max_chars=12, cache_dir=tmp_path)
    assert texts == {"de": ["Berlin ist d", "Köln"]}
    assert calls == [("wikimedia/wikipedia", "20231101.de", "train", True)]
    monkeypatch.setitem(sys.modules, "datasets", fake_datasets([], calls))  # a second call is a cache hit
    assert wikipedia_texts(["de"], per_language=2, max_chars=12, cache_dir=tmp_path) == texts
    assert len(calls) == 1


def test_too_few_articles_unknown_language_and_no_network(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", fake_datasets([{"text": "a"}, {"text": " "}], []))
    with pytest.raises(RuntimeError, match=r"gave only 1 non-empty articles \(1 empty skipped\), 5 asked"):
        wikipedia_texts(["fr"], per_language=5, cache_dir=None)
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        wikipedia_texts(["xx"])
    offline = types.ModuleType("datasets")

    def refuse(*args, **kwargs):
        raise ConnectionError("no route to host")

    offline.load_dataset = refuse
    monkeypatch.setitem(sys.modules, "datasets", offline)
    with pytest.raises(RuntimeError, match="could not stream .* no route to host. Offline"):
        wikipedia_texts(["zh"], cache_dir=tmp_path)
