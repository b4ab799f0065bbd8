"""The pocket world: regeneration is byte-identical, the policies hold, the model knows its facts."""

import json
import random
import re
from collections import Counter, defaultdict
from importlib import metadata

import pytest
import torch

from langedit_mini.data.datasets import POCKET_DIRECTORY, load_pocket
from langedit_mini.evaluation.pocket_probes import fact_table, score_table
from langedit_mini.evaluation.scoring import greedy_continuations, score
from langedit_mini.model.tokens import encode_pairs, evaluation_mode, pad_token_id
from langedit_mini.pocket import MODEL_DIRECTORY, load_facts
from langedit_mini.pocket.build.corpus import build_world, sha256, write_world
from langedit_mini.pocket.build.facts import CITIES_PER_COUNTRY, LANGUAGES, RELATIONS, build_facts

REPORT = json.loads((POCKET_DIRECTORY / "build_report.json").read_text())
EDITS = json.loads((POCKET_DIRECTORY / "edits.json").read_text())
FACTS = load_facts()


def test_regeneration_is_byte_identical(tmp_path):
    for package, version in REPORT["package_versions"].items():
        assert metadata.version(package) == version, (
            f"{package} {metadata.version(package)} is installed but the shipped files were built with {version}; "
            "install the pinned versions (pip install -e .[pocket])"
        )
    facts, report = build_facts()
    summary = report.to_json() | {"package_versions": REPORT["package_versions"]}
    hashes = write_world(facts, summary, build_world(facts), tmp_path)
    for name, digest in hashes.items():
        assert digest == sha256(POCKET_DIRECTORY / name), f"{name} differs from the shipped file"


def test_every_relation_has_facts_and_every_exclusion_is_counted():
    kept = Counter(fact["relation"] for fact in FACTS)
    assert set(kept) == set(RELATIONS)
    assert kept == Counter(REPORT["kept"])
    assert all(count > 0 for count in REPORT["dropped"].values())
    assert len(FACTS) >= 1400


def test_names_exist_in_six_languages_and_zh_has_no_latin_letters():
    for fact in FACTS:
        for side in ("subject", "answer"):
            assert set(fact[side]) == set(LANGUAGES)
            assert all(name.strip() for name in fact[side].values())
            assert not re.search(r"[A-Za-z]", fact[side]["zh"]), (fact["fact_id"], fact[side]["zh"])
            assert not re.search(r"[&()（）]", fact[side]["en"] + fact[side]["zh"])


def test_subjects_are_unambiguous_and_cities_are_capped_per_country():
    for relation in RELATIONS:
        for language in LANGUAGES:
            names = [f["subject"][language] for f in FACTS if f["relation"] == relation]
            assert len(names) == len(set(names)), (relation, language)
    per_country = Counter(f["answer_key"] for f in FACTS if f["relation"] == "city_country")
    assert max(per_country.values()) <= CITIES_PER_COUNTRY


def test_counterfactual_targets_are_never_true_and_aligned_across_languages():
    by_fact = defaultdict(list)
    for record in EDITS:
        assert record["alt"] not in record["true_answers"]
        assert record["alt"] != record["answer"]
        by_fact[record["fact_id"]].append(record)
    for records in by_fact.values():
        assert sorted(r["lang"] for r in records) == sorted(LANGUAGES)
        assert len({r["alt_key"] for r in records}) == 1  # the same new answer entity in every language
    per_language = Counter(record["lang"] for record in EDITS)
    assert min(per_language.values()) >= 100
    assert any(record["portability"] for record in EDITS)


def test_editing_facts_never_saw_their_paraphrase_or_held_out_form():
    corpus = set((POCKET_DIRECTORY / "corpus.txt").read_text(encoding="utf-8").splitlines())
    for record in random.Random(0).sample(EDITS, 600):
        joined = lambda prompt, record=record: f"{prompt}{record['joiner']}{record['answer']}"  # noqa: E731
        assert joined(record["src"]) in corpus
        assert joined(record["rephrase"]) not in corpus
        assert joined(record["held_out"]) not in corpus


def test_model_files_are_small_safetensors_and_load_offline():
    from transformers import AutoModelForCausalLM

    files = {path.name: path.stat().st_size for path in MODEL_DIRECTORY.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= set(files)
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert sum(files.values()) <= 25 * 2**20
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIRECTORY, use_safetensors=True)
    assert model.config.model_type == "llama"


@pytest.fixture(scope="module")
def pocket(pocket_model):
    return pocket_model


@pytest.mark.slow
def test_model_knows_its_facts_in_every_language(pocket):
    """Measured live on 150 random facts: teacher-forced >= 0.95 and greedy exact match >= 0.90 per language."""
    model, tokenizer = pocket
    sample = random.Random(1).sample(FACTS, 150)
    scored = score_table(model, tokenizer, fact_table(sample, forms=("edit prompt",)))
    per_language = scored.groupby("lang")[["teacher_forced", "exact_match"]].mean()
    assert (per_language["teacher_forced"] >= 0.95).all(), per_language
    assert (per_language["exact_match"] >= 0.90).all(), per_language


def test_scoring_leaves_the_model_unchanged(pocket):
    model, tokenizer = pocket
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train()
    score_table(model, tokenizer, fact_table(FACTS[:5], forms=("edit prompt",)))
    assert model.training  # mode restored
    model.eval()
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())


def test_model_card_reports_measured_numbers():
    card = json.loads((MODEL_DIRECTORY / "card.json").read_text())
    text = (MODEL_DIRECTORY / "README.md").read_text()
    edit_prompt = {k.split("|")[1]: v for k, v in card["by_form_and_language"].items() if k.startswith("edit prompt")}
    assert set(edit_prompt) == set(LANGUAGES)
    assert f"{edit_prompt['en']['exact_match']:.3f}" in text
    assert "null-space dimension per layer" in text
    assert {row["layer"] for row in card["null_space"]} == {0, 1, 2, 3}


def test_answer_log_probs_sum_the_answer_tokens_and_ignore_padding(pocket):
    """The likelihood helper the probes and few-shot tasks share: batched rows of different lengths give
    what one unpadded forward pass gives, token by token."""
    from langedit_mini.evaluation.pocket_probes import answer_log_probs

    model, tokenizer = pocket
    prompts = ["The capital of France is", "Die Hauptstadt von Deutschland, einem Land in Europa, ist"]
    answers, joiners = ["Paris", "Berlin"], [" ", " "]
    batched = answer_log_probs(model, tokenizer, prompts, answers, joiners, batch_size=2)
    for prompt, answer, value in zip(prompts, answers, batched):
        prompt_ids = tokenizer(prompt)["input_ids"]
        answer_ids = tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            log_probs = model(input_ids=torch.tensor([prompt_ids + answer_ids])).logits[0].log_softmax(-1)
        expected = sum(float(log_probs[len(prompt_ids) - 1 + i, token]) for i, token in enumerate(answer_ids))
        assert value == pytest.approx(expected, abs=1e-4)
        assert value < 0
    assert batched != pytest.approx(answer_log_probs(model, tokenizer, prompts, answers[::-1], joiners), abs=1e-3)


def test_greedy_exact_match_from_teacher_forcing_equals_decoding(pocket):
    """Exact match is read off the teacher-forced pass (scoring's docstring); it must be what greedy
    decoding gives, on answers the model gets right, wrong and partly right."""
    model, tokenizer = pocket
    requests, _ = load_pocket()
    sample = random.Random(2).sample(requests, 60)
    prompts = [r.question for r in sample] * 2
    answers = [r.true_answers[0] for r in sample] + [r.target for r in sample]
    joiners = [r.joiner for r in sample] * 2
    scores = score(model, tokenizer, prompts, answers, joiners, predictions=False)
    assert scores.predictions == []
    prompt_ids, answer_ids = encode_pairs(tokenizer, prompts, answers, joiners)
    with evaluation_mode(model):
        decoded = greedy_continuations(model, prompt_ids, [len(a) for a in answer_ids], pad_token_id(tokenizer))
    assert scores.exact_match == [c == a for c, a in zip(decoded, answer_ids)]
    assert 0 < sum(scores.exact_match) < len(answers)
    assert any(0 < tf < 1 for tf in scores.teacher_forced)  # partly right answers are among them


def test_training_resumed_from_a_checkpoint_equals_one_uninterrupted_run(tmp_path):
    from dataclasses import replace

    from transformers import AutoTokenizer

    from langedit_mini.pocket.build.train import PRESETS, train_model

    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIRECTORY)
    lines = (POCKET_DIRECTORY / "corpus.txt").read_text(encoding="utf-8").splitlines()[:96]
    config = replace(
        PRESETS["pocket"],
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        epochs=3,
        batch_size=16,
        warmup_steps=4,
        threads=1,
    )
    whole, whole_history, finished = train_model(lines, tokenizer, config, log=lambda _: None)
    assert finished and len(whole_history) == 3
    _, first, done = train_model(
        lines, tokenizer, config, log=lambda _: None, checkpoint_dir=tmp_path, stop_after_epochs=2
    )
    assert not done and len(first) == 2
    resumed, history, done = train_model(lines, tokenizer, config, log=lambda _: None, checkpoint_dir=tmp_path)
    assert done and [h["step"] for h in history] == [h["step"] for h in whole_history]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="another training config"):
        train_model(lines, tokenizer, replace(config, seed=1), log=lambda _: None, checkpoint_dir=tmp_path)
