"""How a model is asked (``data.prompts``) and what it knows (``study.knowledge``): the three forms keep the
subject's place, the pocket facts lose their markers, and the format is chosen by exact match."""

import pandas as pd
import pytest

from langedit_mini.data.datasets import EditRequest, load_pocket
from langedit_mini.data.prompts import bare_question, bare_requests, format_text, with_prompt_format
from langedit_mini.study.knowledge import choose_format, formats_of, knowledge_items, knowledge_table, score_items


class ChatTokenizer:
    """A stand-in with a chat template of the SmolLM2 kind (a default system turn, braces in it)."""

    chat_template = "set"
    bos_token = None

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        content = messages[0]["content"]
        return f"<|system|>{{be brief}}<|user|>{content}<|assistant|>\n"


def test_the_pocket_facts_lose_their_markers_in_every_language():
    requests, _ = load_pocket()
    bare = {r.lang: bare_question(r.question) for r in requests if r.fact_id == "calling_code:AM"}
    assert bare["en"] == "What is the calling code of the country Armenia?"
    assert bare["zh"] == "亚美尼亚的国际电话区号是什么？" and bare["fr"].endswith("Arménie ?")
    markers = ("Q:", "Q :", "F:", "V:", "P:", "问：")  # the pocket world's question markers ("Quel" is French)
    assert not any(text.startswith(markers) or text.endswith(("A:", "R:", "R :", "答：")) for text in bare.values())
    assert bare_question("nq question: who wrote it") == "who wrote it"
    # every question of a request loses its markers, the portability question included; a missing one stays None
    with_portability = next(r for r in requests if r.portability_prompt and r.lang == "de")
    bare_request = bare_requests([with_portability])[0]
    for name in ("prompt", "paraphrase", "locality_prompt", "portability_prompt", "held_out"):
        text = getattr(bare_request, name)
        assert text is None if getattr(with_portability, name) is None else not text.startswith(markers), name


def test_each_form_keeps_the_subjects_place_and_chat_answers_without_a_space():
    request = EditRequest(
        prompt="When was {} founded?", subject="Acme", target="1901", lang="en", paraphrase="Acme began when?"
    )
    (qa,) = with_prompt_format([request], "qa")
    assert qa.question == "Q: When was Acme founded? A:" and qa.paraphrase == "Q: Acme began when? A:"
    (chat,) = with_prompt_format([request], "chat", ChatTokenizer())
    assert chat.question == "<|system|>{be brief}<|user|>When was Acme founded?<|assistant|>\n"  # braces kept
    assert chat.joiner == "" and qa.joiner == " "
    assert with_prompt_format([request], "raw") == [request]
    assert format_text("Who?", "qa") == "Q: Who? A:"
    with pytest.raises(ValueError, match="chat template"):
        with_prompt_format([request], "chat", object())
    with pytest.raises(ValueError, match="unknown prompt format 'json'"):
        with_prompt_format([request], "json")


def test_the_knowledge_is_scored_in_every_form_and_the_best_is_chosen(pocket_model):
    model, tokenizer = pocket_model
    pocket, _ = load_pocket()
    items = knowledge_items([], pocket, per_language=3)
    assert set(items.source) == {"pocket facts"} and len(items) == 18 and (items.groupby("lang").size() == 3).all()
    forms = formats_of(tokenizer)
    assert forms == ["raw", "qa", "few-shot"]  # the pocket tokenizer has no chat template
    scored = score_items(model, tokenizer, items, forms)
    table = knowledge_table(scored)
    assert len(table) == 6 * 3 and set(table.form) == set(forms) and table.exact_match.between(0, 1).all()
    tie = pd.DataFrame({"source": "s", "lang": "en", "form": ["raw", "qa"], "exact_match": 0.5, "answer": "x"})
    assert choose_format(tie.assign(teacher_forced=0.5)) == "raw"  # the reference's form on a tie
    better = tie.assign(exact_match=[0.2, 0.6], teacher_forced=0.5)
    assert choose_format(better) == "qa"
