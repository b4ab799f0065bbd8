"""Edit requests from what users already have: EasyEdit's inputs, MzsRE / BMIKE-53 records, or a prompt
and a subject.

``as_requests(items, lang="en")`` accepts, one by one or in a list:

* ``EditRequest`` objects, as they are;
* EasyEdit's fields (``BaseEditor.edit``): ``prompts``, ``subject``, ``target_new`` (strings, or lists
  of one length for several requests), optional ``rephrase_prompts``, ``locality_inputs`` and
  ``portability_inputs`` (``{"neighborhood": {"prompt": [...], "ground_truth": [...]}}``: the first
  entry of each is used), optional ``lang``;
* an MzsRE record (``subject``, ``src``, ``alt``, ``rephrase``, ``loc``, ``loc_ans``, ``portability``)
  or a BMIKE-53 one (``port``, ``port_ans``), with ``lang``;
* ``{"prompt", "subject", "target"}``: the prompt with ``{}`` where the subject goes, or containing
  the subject as written (found exact, then ignoring case and accents).

The prompt is the text the answer follows (``The capital of France is``); the answer is joined to it
by the language's joiner (a space; nothing in Chinese). A malformed item raises ``DatasetError``
naming the item and what is wrong; nothing is skipped.
"""

from __future__ import annotations

from langedit_mini.data.datasets import DatasetError, EditRequest, locate_subject
from langedit_mini.data.languages import ANSWER_JOINER, check_language

EASYEDIT_FIELDS = ("prompts", "subject", "target_new", "rephrase_prompts", "locality_inputs", "portability_inputs")


def _text(item: dict, name: str, where: str, optional: bool = False):
    value = item.get(name)
    if value is None:
        if optional:
            return None
        raise DatasetError(f"{where}: missing field {name!r} (fields present: {sorted(item)})")
    if not isinstance(value, str):
        raise DatasetError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    return value


def _template(prompt: str, subject: str, where: str) -> tuple[str, str]:
    if "{}" in prompt:
        if prompt.count("{}") != 1:
            raise DatasetError(f"{where}: prompt {prompt!r} must contain '{{}}' at most once")
        return prompt, subject
    found = locate_subject(prompt, subject)
    if found is None:
        raise DatasetError(f"{where}: subject {subject!r} does not occur in the prompt {prompt!r}")
    return found


def _first_pair(inputs, name: str, where: str) -> tuple[str | None, str | None]:
    """EasyEdit's ``{"kind": {"prompt": ..., "ground_truth": ...}}``: the first kind's first pair."""
    if inputs is None:
        return None, None
    if not isinstance(inputs, dict) or not inputs:
        raise DatasetError(
            f"{where}: {name} must be a dict like {{'neighborhood': {{'prompt': ..., 'ground_truth': ...}}}}"
        )
    kind, pair = next(iter(inputs.items()))
    if not isinstance(pair, dict) or "prompt" not in pair or "ground_truth" not in pair:
        raise DatasetError(f"{where}: {name}[{kind!r}] needs 'prompt' and 'ground_truth'")
    prompt, answer = pair["prompt"], pair["ground_truth"]
    prompt = prompt[0] if isinstance(prompt, list) else prompt
    answer = answer[0] if isinstance(answer, list) else answer
    answer = answer[0] if isinstance(answer, list) else answer  # EasyEdit nests answers one level deeper
    if not isinstance(prompt, str) or not isinstance(answer, str):
        raise DatasetError(f"{where}: {name}[{kind!r}] prompt and ground_truth must be strings")
    return prompt, answer


def _request(prompt, subject, target, lang, where, **extra) -> EditRequest:
    template, written = _template(prompt, subject, where)
    try:
        return EditRequest(
            prompt=template, subject=written, target=target, lang=lang, joiner=ANSWER_JOINER[lang], **extra
        )
    except DatasetError as error:
        raise DatasetError(f"{where}: {error}") from None


def _easyedit(item: dict, lang: str, where: str, index: int) -> list[EditRequest]:
    unknown = sorted(set(item) - set(EASYEDIT_FIELDS) - {"lang"})
    if unknown:
        raise DatasetError(f"{where}: unknown EasyEdit fields {unknown}; known: {', '.join(EASYEDIT_FIELDS)}")
    fields = {}
    for name in ("prompts", "subject", "target_new", "rephrase_prompts"):
        value = item.get(name)
        fields[name] = [value] if isinstance(value, str) or value is None else list(value)
    count = len(fields["prompts"])
    for name, values in fields.items():
        if values == [None]:
            if name != "rephrase_prompts":
                raise DatasetError(f"{where}: missing field {name!r} (EasyEdit needs prompts, subject, target_new)")
            fields[name] = [None] * count
        elif len(values) != count:
            raise DatasetError(f"{where}: {name} has {len(values)} entries but prompts has {count}")
    locality = _first_pair(item.get("locality_inputs"), "locality_inputs", where)
    portability = _first_pair(item.get("portability_inputs"), "portability_inputs", where)
    requests = []
    for i in range(count):
        place = f"{where} [{i}]" if count > 1 else where
        for name in ("prompts", "subject", "target_new"):
            if not isinstance(fields[name][i], str):
                raise DatasetError(f"{place}: {name} must be a string, got {type(fields[name][i]).__name__}")
        requests.append(
            _request(
                fields["prompts"][i],
                fields["subject"][i],
                fields["target_new"][i],
                lang,
                place,
                paraphrase=fields["rephrase_prompts"][i],
                locality_prompt=locality[0],
                locality_answer=locality[1],
                portability_prompt=portability[0],
                portability_answer=portability[1],
                fact_id=f"{index}.{i}" if count > 1 else str(index),
            )
        )
    return requests


def _zsre_record(item: dict, lang: str, where: str, index: int) -> EditRequest:
    portability = item.get("portability")
    question, answer = (None, None)
    if isinstance(portability, dict):
        question, answer = portability.get("New Question"), portability.get("New Answer")
    elif "port" in item:
        question, answer = _text(item, "port", where, True), _text(item, "port_ans", where, True)
    return _request(
        _text(item, "src", where),
        _text(item, "subject", where),
        _text(item, "alt", where),
        lang,
        where,
        paraphrase=_text(item, "rephrase", where, True),
        locality_prompt=_text(item, "loc", where, True),
        locality_answer=_text(item, "loc_ans", where, True),
        portability_prompt=question,
        portability_answer=answer,
        fact_id=str(item.get("case_id", index)),
    )


def as_requests(items, *, lang: str = "en", skipped: list | None = None) -> list[EditRequest]:
    """``EditRequest`` objects from any of the accepted forms (module docstring); ``lang`` for items that
    do not name their language.

    A record that cannot be an edit request (e.g. an MzsRE record whose translated question does not
    contain its subject) is an error, unless ``skipped`` is a list: then it is left out and
    ``(index, reason)`` is appended to ``skipped``, so the caller can count and report it."""
    check_language(lang)
    if skipped is not None:
        if isinstance(items, (EditRequest, dict)):
            items = [items]
        kept = []
        for index, item in enumerate(items):
            try:
                kept += as_requests([item], lang=lang)
            except DatasetError as error:
                skipped.append((index, str(error).replace("request 0", f"request {index}", 1)))
        if not kept:
            raise DatasetError(f"no usable edit request: all {len(skipped)} were skipped ({skipped[0][1]})")
        return kept
    if isinstance(items, (EditRequest, dict)):
        items = [items]
    if isinstance(items, str) or not hasattr(items, "__iter__"):
        raise TypeError(f"expected edit requests (EditRequest objects or dicts), got {type(items).__name__}")
    requests = []
    for index, item in enumerate(items):
        where = f"request {index}"
        if isinstance(item, EditRequest):
            requests.append(item)
            continue
        if not isinstance(item, dict):
            raise TypeError(f"{where}: expected an EditRequest or a dict, got {type(item).__name__}")
        language = check_language(item.get("lang", lang))
        if "prompts" in item or "target_new" in item:
            requests += _easyedit(item, language, where, index)
        elif "src" in item and "alt" in item:
            requests.append(_zsre_record(item, language, where, index))
        elif "prompt" in item and "target" in item:
            requests.append(
                _request(
                    _text(item, "prompt", where),
                    _text(item, "subject", where),
                    _text(item, "target", where),
                    language,
                    where,
                    paraphrase=_text(item, "paraphrase", where, True),
                    locality_prompt=_text(item, "locality_prompt", where, True),
                    locality_answer=_text(item, "locality_answer", where, True),
                    fact_id=str(item.get("fact_id", index)),
                )
            )
        else:
            raise DatasetError(
                f"{where}: unknown request format (fields {sorted(item)}); expected EasyEdit's (prompts, subject, "
                "target_new), an MzsRE / BMIKE-53 record (subject, src, alt) or (prompt, subject, target)"
            )
    if not requests:
        raise DatasetError("no edit requests given")
    return requests
