"""``evaluation.offline_ability``: a real LLM's general-ability proxies, checked on the pocket model (which knows its
world's facts) and a tiny random model (whose padding must not change a perplexity)."""

import copy
import math

import pytest
import torch

from langedit_mini.data.datasets import EditRequest, load_pocket
from langedit_mini.data.languages import LANGUAGES
from langedit_mini.evaluation.offline_ability import (
    OfflineAbility,
    fact_sample,
    held_out_texts,
    text_perplexity,
)
from langedit_mini.pocket import load_pocket_model


@pytest.fixture(scope="module")
def pocket():
    model, tokenizer = load_pocket_model()
    requests, _ = load_pocket()
    return model, tokenizer, requests


def _request(lang, locality, answer, joiner=" "):
    return EditRequest(
        prompt="{} ?",
        subject="s",
        target="t",
        lang=lang,
        joiner=joiner,
        locality_prompt=locality,
        locality_answer=answer,
    )


def test_held_out_texts_take_each_languages_first_questions_with_their_answers():
    requests = [
        _request("en", "nq question: who sang nice day for a white wedding", "Billy Idol"),
        _request("en", "nq question: where is the eiffel tower", "Paris"),
        _request("en", "nq question: a third", "c"),
        _request("zh", "海绵宝宝的最后一集叫什么名字", "The String", joiner=""),
        _request("zh", "2018年冬奥会中的滑雪类型", "速降滑雪", joiner=""),
        _request("de", None, None),  # no locality question: not counted
    ]
    texts = held_out_texts(requests, 2)
    assert texts == {
        "en": ["who sang nice day for a white wedding Billy Idol", "where is the eiffel tower Paris"],
        "zh": ["海绵宝宝的最后一集叫什么名字The String", "2018年冬奥会中的滑雪类型速降滑雪"],
    }
    with pytest.raises(ValueError, match=r"fewer than 3 held-out texts in \{'zh': 2\}"):
        held_out_texts(requests, 3)


def test_a_perplexity_does_not_depend_on_how_the_texts_are_batched_or_padded():
    from langedit_mini.study.testbeds import load_testbed

    testbed = load_testbed("tiny-random-llama")
    model, tokenizer = testbed.model, testbed.tokenizer
    texts = ["the capital of France is Paris", "a", "Berlin liegt in Deutschland und ist groß und alt"]
    texts = [t for t in texts if len(tokenizer(t)["input_ids"]) >= 2]
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for text in texts:  # one at a time, no padding
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            logits = model(input_ids=ids).logits[0, :-1].float()
            nll += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
            tokens += ids.shape[1] - 1
    assert text_perplexity(model, tokenizer, texts) == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    with pytest.raises(ValueError, match="needs two tokens"):
        text_perplexity(model, tokenizer, [""])


def test_the_proxies_keep_the_facts_known_at_the_first_measure_and_see_a_damaged_model(pocket):
    model, tokenizer, requests = pocket
    facts = fact_sample(requests, 12, seed=0)
    assert set(facts) == set(LANGUAGES) and all(len(f) == 12 for f in facts.values())
    texts = {
        lang: [r.locality_prompt + " " + r.locality_answer for r in requests if r.lang == lang][:8] for lang in facts
    }
    proxies = OfflineAbility(tokenizer, texts, facts)
    before = proxies(model)
    assert set(before.probe) == {"held-out text", "real facts", "known facts"} and set(before.lang) == set(LANGUAGES)
    known = before[before.probe == "known facts"]
    assert (known.n > 0).all() and (known.value == 1.0).all()  # what it knew, it knows: by construction
    exact = before[(before.probe == "real facts") & (before.metric == "exact match")].set_index("lang")
    assert (known.set_index("lang").n == (exact.value * exact.n).round().astype(int)).all()
    assert before.equals(proxies(model))  # the same model measures the same; the known set stays
    damaged = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in damaged.model.layers[2].mlp.parameters():
            parameter.add_(torch.randn_like(parameter, generator=torch.Generator().manual_seed(0)) * 0.5)
    after = proxies(damaged)
    assert (after[after.probe == "known facts"].n.values == known.n.values).all()  # the known set is the first's
    assert after[after.probe == "known facts"].value.mean() < 1.0
    perplexity = before[before.probe == "held-out text"].value.mean()
    assert after[after.probe == "held-out text"].value.mean() > perplexity


def test_what_the_proxies_cannot_measure_is_refused_or_shown_as_unknown(pocket):
    model, tokenizer, requests = pocket
    with pytest.raises(ValueError, match="need their true answers"):
        fact_sample([EditRequest(prompt="{}", subject="s", target="t", lang="en")], 1)
    with pytest.raises(ValueError, match="no held-out texts or facts in"):
        OfflineAbility(tokenizer, {"en": []}, {})
    with pytest.raises(ValueError, match="unknown language"):
        OfflineAbility(tokenizer, {"xx": ["some text"]}, {})
    unknown = EditRequest(prompt="Q: {} A:", subject="zzzz", target="t", lang="en", true_answers=("qqqq qqqq",))
    frame = OfflineAbility(tokenizer, {"en": ["some text here"]}, {"en": [unknown]})(model)
    kept = frame[frame.probe == "known facts"].iloc[0]
    assert kept.n == 0 and math.isnan(kept.value)  # it knew none: no share, not a zero
