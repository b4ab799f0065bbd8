"""How a model is asked: the question as it stands, after "Q: ... A:", after two answered examples, or in the
model's chat template.

The reference code of AlphaEdit and LangEdit poses the raw MzsRE question (the subject as ``{}``) and appends the
target after a space, with no chat template even for Llama-3-8B-Instruct; EasyEdit applies a chat template only
at evaluation, behind a flag. A real LLM answers some forms better than others, so the form is measured per model
(``study.knowledge``), chosen once before any tuning, and then used for every method alike
(``with_prompt_format``, applied by ``study.testbeds`` from the model's hyperparameter file):

* ``raw``: the question as it stands ("When was the inception of IAAF Combined Events Challenge?");
* ``qa``: "Q: <question> A:";
* ``few-shot``: two answered questions in the question's own language before it, "Q: ... A: ..." each (the
  pocket world's capital of Italy and currency of Mexico, ``FEW_SHOT_FACTS``, which no measurement or trace then
  uses): a small model told by example to answer with the answer alone;
* ``chat``: the model's own chat template around the question as the user's turn, ready for the assistant's
  (SmolLM2-Instruct's template adds its default system prompt when none is given); the answer then starts the
  assistant's turn, without a joining space.

``bare_question`` takes the pocket world's localised "Q: ... A:" markers off a prompt, so its real facts can be
asked in every form too.
"""

from __future__ import annotations

import re
from dataclasses import replace

from langedit_mini.data.datasets import EditRequest

PROMPT_FORMATS = ("raw", "qa", "few-shot", "chat")
#: the pocket world's facts the few-shot form answers before the question (its examples, in every language)
FEW_SHOT_FACTS = ("capital:IT", "currency:MX")
#: the pocket world's question and answer markers, in its six languages ("Q: ... A:", "F: ... A:", "问：…答：")
_LEADING = re.compile(r"^\s*(?:Q|F|V|P|问)\s*[:：]\s*")
_TRAILING = re.compile(r"\s*(?:A|R|答)\s*[:：]\s*$")
#: what MzsRE puts before its English locality questions
_NQ_PREFIX = "nq question: "


def check_format(form: str) -> str:
    if form not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {form!r}; choose one of {', '.join(PROMPT_FORMATS)}")
    return form


def bare_question(text: str) -> str:
    """``text`` without a leading question marker and a trailing answer marker (the pocket world's), or
    MzsRE's "nq question: " prefix."""
    text = text.removeprefix(_NQ_PREFIX)
    return _TRAILING.sub("", _LEADING.sub("", text))


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def few_shot_examples(language: str) -> str:
    """The few-shot form's examples in ``language``: "Q: <question> A: <answer>" per ``FEW_SHOT_FACTS``, one a
    line (the pocket world's facts, without their own markers)."""
    from langedit_mini.data.datasets import load_pocket

    found = {r.fact_id: r for r in load_pocket(languages=[language])[0] if r.fact_id in FEW_SHOT_FACTS}
    missing = [fact for fact in FEW_SHOT_FACTS if fact not in found]
    if missing:
        raise ValueError(f"the pocket world has no {missing} in {language}: the few-shot examples are missing")
    lines = [
        f"Q: {bare_question(found[fact].question)} A:{found[fact].joiner}{found[fact].true_answers[0]}"
        for fact in FEW_SHOT_FACTS
    ]
    return "\n".join(lines) + "\n"


def _frame(form: str, tokenizer, language: str = "en") -> tuple[str, str]:
    """The text before and after a question in ``form`` (for ``chat``, from ``tokenizer``'s chat template; for
    ``few-shot``, with the examples in ``language``)."""
    if form == "raw":
        return "", ""
    if form == "qa":
        return "Q: ", " A:"
    if form == "few-shot":
        return few_shot_examples(language) + "Q: ", " A:"
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError("the chat format needs a tokenizer with a chat template")
    marker = "\u2063QUESTION\u2063"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True
    )
    if rendered.count(marker) != 1:
        raise ValueError("the tokenizer's chat template does not put the user's turn in once")
    before, after = rendered.split(marker)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and before.startswith(bos):  # the tokenizer adds it again when it encodes the prompt
        before = before[len(bos) :]
    return before, after


def format_text(text: str | None, form: str, tokenizer=None, language: str = "en") -> str | None:
    """One full question (no placeholder) in ``language`` asked in ``form``."""
    if text is None:
        return None
    before, after = _frame(check_format(form), tokenizer, language)
    return f"{before}{text}{after}"


#: the questions of an ``EditRequest`` besides its edit prompt (None when a request has none)
_QUESTIONS = ("paraphrase", "locality_prompt", "portability_prompt", "held_out")


def _with_questions(request: EditRequest, change, **fields) -> EditRequest:
    """``request`` with ``change`` applied to each of its other questions that it has, and ``fields`` set."""
    asked = {name: None if getattr(request, name) is None else change(getattr(request, name)) for name in _QUESTIONS}
    return replace(request, **asked, **fields)


def with_prompt_format(requests: list[EditRequest], form: str, tokenizer=None) -> list[EditRequest]:
    """``requests`` with every prompt (the edit prompt, its paraphrase, the locality, portability and held-out
    questions) asked in ``form``; ``chat`` answers without a joining space. ``raw`` returns them unchanged."""
    form = check_format(form)
    if form == "raw":
        return list(requests)
    frames = {language: _frame(form, tokenizer, language) for language in {r.lang for r in requests}}
    changed = []
    for request in requests:
        before, after = frames[request.lang]
        fields = {"prompt": f"{_escaped(before)}{request.prompt}{_escaped(after)}"}  # the subject stays "{}"
        if form == "chat":
            fields["joiner"] = ""
        changed.append(_with_questions(request, lambda text, b=before, a=after: f"{b}{text}{a}", **fields))
    return changed


def bare_requests(requests: list[EditRequest]) -> list[EditRequest]:
    """``requests`` with the pocket world's question markers taken off every prompt (``bare_question``): the raw
    form of its real facts."""
    return [_with_questions(request, bare_question, prompt=bare_question(request.prompt)) for request in requests]
