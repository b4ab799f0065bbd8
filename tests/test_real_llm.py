"""The real-LLM path: the checksummed MzsRE cache, the few-shot general-ability tasks, model names,
and the Colab chapter executed in smoke mode (tiny random model, local fixtures)."""

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from test_notebooks import run_notebook

from langedit_mini.data import downloads
from langedit_mini.editing.defaults import default_config, reference_name
from langedit_mini.evaluation import general_tasks as general
from langedit_mini.model.hub import resolve_dtype, resolve_run_mode, tiny_random_model

ROOT = Path(__file__).resolve().parents[1]
MZSRE = ROOT.parent / "shared" / "datasets" / "MzsRE"
FIXTURES = ROOT / "data" / "fixtures" / "general"
needs_mzsre = pytest.mark.skipif(not MZSRE.exists(), reason=f"no shared MzsRE at {MZSRE}")


# ---------------------------------------------------------------------------------- MzsRE download


@needs_mzsre
def test_mzsre_comes_from_the_mirror_then_from_the_cache(tmp_path):
    first = downloads.fetch_mzsre(tmp_path, mirror=MZSRE, download=False)
    assert set(first.sources.values()) == {"mirror"} and len(first.sources) == 5
    second = downloads.fetch_mzsre(tmp_path, download=False)
    assert set(second.sources.values()) == {"cache"}
    assert "5 from cache" in str(second)


@needs_mzsre
def test_a_corrupted_cached_file_is_reported_and_replaced(tmp_path):
    downloads.fetch_mzsre(tmp_path, mirror=MZSRE, download=False)
    broken = tmp_path / "data/MzsRE/mzsre_test_duplicate_enfr.json"
    broken.write_text(broken.read_text()[:-100])
    report = downloads.fetch_mzsre(tmp_path, mirror=MZSRE, download=False)
    assert report.replaced == ["data/MzsRE/mzsre_test_duplicate_enfr.json"]
    assert report.sources["data/MzsRE/mzsre_test_duplicate_enfr.json"] == "mirror"
    assert downloads.sha256(broken) == downloads.MZSRE_FILES["data/MzsRE/mzsre_test_duplicate_enfr.json"]


@needs_mzsre
def test_a_mirror_file_with_another_checksum_is_refused_and_not_cached(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(MZSRE / "data", mirror / "data")
    (mirror / "data/MzsRE/mzsre_test_duplicate_ende.json").write_text("[]")
    with pytest.raises(downloads.ChecksumError, match="mzsre_test_duplicate_ende.json: SHA-256 .* is not the pinned"):
        downloads.fetch_mzsre(tmp_path / "cache", mirror=mirror, download=False)
    assert not list((tmp_path / "cache").rglob("*ende*"))


def test_without_cache_mirror_or_download_the_error_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="mzsre_test_duplicate_ende.json is neither cached"):
        downloads.fetch_mzsre(tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        downloads.fetch_mzsre(tmp_path, mirror=tmp_path / "nowhere")


@needs_mzsre
def test_download_verifies_what_it_receives(tmp_path, monkeypatch):
    requested = []

    def serve(url, timeout):
        requested.append(url)
        relative = url.split(downloads.MZSRE_COMMIT + "/")[1]
        return io.BytesIO((MZSRE / relative).read_bytes())

    monkeypatch.setattr(downloads.urllib.request, "urlopen", serve)
    report = downloads.fetch_mzsre(tmp_path)
    assert set(report.sources.values()) == {"download"} and len(requested) == 5
    assert all(url.startswith("https://raw.githubusercontent.com/weixuan-wang123/ReMaKE/975a9e9") for url in requested)

    monkeypatch.setattr(downloads.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"<html>rate limited"))
    with pytest.raises(downloads.ChecksumError):
        downloads.fetch_mzsre(tmp_path / "other")

    def offline(url, timeout):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(downloads.urllib.request, "urlopen", offline)
    with pytest.raises(RuntimeError, match="could not download .* Offline\\? Pass mirror="):
        downloads.fetch_mzsre(tmp_path / "third")


# ---------------------------------------------------------------------------------- general ability


def test_fixtures_load_in_every_task_and_missing_languages_are_reported():
    data, unavailable = general.load_all(general.TASKS, ["en", "nl"], shots=2, items=3, root=FIXTURES)
    assert set(data) == {(task, "en") for task in general.TASKS}
    assert all(len(d["shots"]) == 2 and len(d["test"]) == 3 for d in data.values())
    assert sorted(task for task, language, _ in unavailable) == sorted(general.TASKS)
    assert all(language == "nl" and "does not exist" in why for _, language, why in unavailable)


def test_a_language_the_hub_dataset_lacks_is_unavailable_without_network(tmp_path):
    _, unavailable = general.load_all(["xnli"], ["en", "nl"], root=FIXTURES)
    assert [u[:2] for u in unavailable] == [("xnli", "nl")]
    with pytest.raises(LookupError, match="facebook/xnli has no nl"):
        general.load_task("xnli", "nl", cache_dir=tmp_path)


@pytest.mark.parametrize(
    "task, item, message",
    [
        ("xnli", {"premise": "a", "hypothesis": "b"}, "missing field 'label'"),
        ("xnli", {"premise": "a", "hypothesis": "b", "label": 3}, "label 3 is not one of 0..2"),
        ("mlqa", {"context": "c", "question": "q", "answers": []}, "answers must be a non-empty list"),
        ("wikiann", {"tokens": ["x"], "entities": [["x", "MISC"]]}, "entity \\['x', 'MISC'\\] must be"),
    ],
)
def test_malformed_items_are_refused_naming_file_item_and_field(tmp_path, task, item, message):
    (tmp_path / f"{task}_en.json").write_text(json.dumps({"shots": [], "test": [item]}))
    with pytest.raises(ValueError, match=f"{task}_en.json test item 0: {message}"):
        general.load_task(task, "en", root=tmp_path)


def test_bad_task_and_counts_are_refused():
    with pytest.raises(ValueError, match="unknown general-ability task 'squad'"):
        general.load_task("squad", "en", root=FIXTURES)
    with pytest.raises(ValueError, match="items must be an integer >= 1"):
        general.load_task("xnli", "en", items=0, root=FIXTURES)


def test_wikiann_bio_tags_become_typed_spans():
    tokens = ["Angela", "Merkel", "visited", "New", "York", "and", "Siemens", "."]
    tags = [1, 2, 0, 5, 6, 0, 3, 0]
    assert general.wikiann_entities(tokens, tags, "en") == [
        ["Angela Merkel", "PER"],
        ["New York", "LOC"],
        ["Siemens", "ORG"],
    ]
    assert general.wikiann_entities(list("毕加索在巴黎"), [1, 2, 2, 0, 5, 6], "zh") == [
        ["毕加索", "PER"],
        ["巴黎", "LOC"],
    ]


def test_answer_scoring_and_entity_parsing():
    assert general.answer_f1("the North Sea", "North Sea", "en") == 1.0
    assert general.answer_f1("Sea of Japan", "North Sea", "en") == pytest.approx(0.4)
    assert general.answer_f1("北海", "北海道", "zh") == pytest.approx(0.8)
    assert general.parse_entities("Obama (PER); Paris (LOC); nonsense; Siemens (XYZ)") == {
        ("Obama", "PER"),
        ("Paris", "LOC"),
    }


def test_choice_scores_do_not_depend_on_padding(tokenizer):
    """A batch of prompts of different lengths scores each choice as it would alone."""
    model = tiny_random_model(tokenizer, "llama")
    prompts = ["Premise: a\nAnswer:", "Premise: a much longer premise with many more words in it\nAnswer:"]
    together = general.choice_log_likelihoods(model, tokenizer, prompts, (" yes", " maybe", " no"), batch_size=6)
    alone = torch.cat(
        [
            general.choice_log_likelihoods(model, tokenizer, [p], (" yes", " maybe", " no"), batch_size=1)
            for p in prompts
        ]
    )
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)
    assert together.shape == (2, 3) and bool((together < 0).all())


def test_evaluation_scores_lie_in_range_and_count_items(tokenizer):
    model = tiny_random_model(tokenizer)
    data, _ = general.load_all(general.TASKS, ["de"], shots=1, items=3, root=FIXTURES)
    frame = general.evaluate_tasks(model, tokenizer, data, max_tokens=256, max_new_tokens=8)
    assert set(frame.metric) == {"accuracy", "f1", "exact_match", "entity_f1"}
    assert frame.value.between(0, 1).all() and (frame.n == 3).all()
    with pytest.raises(ValueError, match="max_tokens must be an integer above max_new_tokens"):
        general.evaluate_tasks(model, tokenizer, data, max_tokens=8, max_new_tokens=8)


# ---------------------------------------------------------------------------------- models


def test_hub_names_map_to_editing_defaults():
    assert reference_name("Qwen/Qwen2.5-0.5B-Instruct") == "qwen2.5-0.5b"
    assert reference_name("Qwen/Qwen2.5-7B-Instruct") == "qwen2.5-7b"
    assert reference_name("meta-llama/Meta-Llama-3-8B-Instruct") == "llama-3-8b"
    assert default_config("LangEdit-exact", reference_name("Qwen/Qwen2.5-0.5B")).layers == (4, 5, 6, 7, 8)
    with pytest.raises(ValueError, match="no editing defaults for 'google/gemma-2b'.*Pass edit_layers"):
        reference_name("google/gemma-2b")


def test_run_mode_and_dtype_are_checked():
    assert resolve_run_mode("auto") == ("full" if torch.cuda.is_available() else "smoke")
    with pytest.raises(ValueError, match="run_mode must be one of auto, full, smoke"):
        resolve_run_mode("gpu")
    assert resolve_dtype("auto", "cuda") == torch.float16 and resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ValueError, match="dtype must be 'auto' or one of"):
        resolve_dtype("half", "cpu")


# ---------------------------------------------------------------------------------- the chapter


@needs_mzsre
def test_real_llm_chapter_runs_in_smoke_mode_through_the_checksummed_cache(tmp_path):
    corpus = tmp_path / "corpus.json"
    corpus.write_text(
        json.dumps(
            {"en": ["The capital of Chile is Santiago."] * 20, "zh": ["智利的首都是圣地亚哥。"] * 20},
            ensure_ascii=False,
        )
    )
    text = run_notebook(
        "08_real_llms.ipynb",
        tmp_path,
        languages=["en", "zh"],
        methods=["MEMIT", "LangEdit-exact"],
        mzsre_cache=str(tmp_path / "cache"),
        mzsre_mirror=str(MZSRE),
        corpus_root=str(corpus),
        general_tasks=["xnli", "wikiann"],
        model_name="meta-llama/Meta-Llama-3-8B-Instruct",
    )
    assert "run mode: smoke (asked: auto); device: cpu" in text
    assert f"MzsRE in {tmp_path / 'cache'}: 5 from mirror" in text
    assert "from 40 texts" in text
    assert "seed 0, MEMIT: 2 batches" in text and "seed 0, LangEdit-exact: 2 batches" in text
    assert text.count("holds: ") == 3 and "claim failed" not in text
    assert (tmp_path / "cache" / "data" / "MzsRE" / "mzsre_test_duplicate_enzh.json").exists()


def test_the_smoke_plan_names_every_stand_in_and_the_full_plan_keeps_what_was_asked(tmp_path):
    from langedit_mini.model.hub import run_plan

    asked = dict(edits_per_language=10, batch_size=10, max_tokens=1024)
    full = run_plan("full", "Qwen/Qwen2.5-0.5B-Instruct", **asked)
    assert full["used"] == full["asked"] and full["edits_per_language"] == 10 and full["max_tokens"] == 1024
    (tmp_path / "MzsRE").mkdir()
    smoke = run_plan("smoke", "Qwen/Qwen2.5-0.5B-Instruct", local_mzsre=tmp_path / "MzsRE", **asked)
    assert smoke["used"]["model"] == "tiny random qwen2 (pocket tokenizer)"
    assert smoke["used"]["MzsRE"] == f"local mirror {tmp_path / 'MzsRE'}" and smoke["used"]["corpus"] == "pocket corpus"
    assert (smoke["edits_per_language"], smoke["batch_size"], smoke["max_tokens"]) == (2, 2, 512)
    assert run_plan("smoke", "x/llama", local_mzsre=tmp_path / "none", **asked)["mzsre_mirror"] is None
    with pytest.raises(ValueError, match="mode must be 'full' or 'smoke'"):
        run_plan("auto", "x", **asked)
