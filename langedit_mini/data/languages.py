"""The six languages of the study, and everything that differs between them, in one table.

The reference LangEdit code had six copy-pasted per-language branches; here each per-language
datum is one entry of a dictionary keyed by language code.

To add a language: add its code to ``LANGUAGES`` and one entry to each table below
(``ANSWER_JOINER``, ``CONTEXT_PREFIXES``, ``KL_PROMPTS``, ``PREFIX_SEPARATOR``; and ``UPSTREAM_CODES``
when a dataset spells the code differently). ``tests/test_languages.py`` checks that every table
covers every language. The pocket model knows only the six; a hub model may know more.
"""

from __future__ import annotations

LANGUAGES = ("en", "de", "nl", "es", "fr", "zh")

#: What joins a prompt and its answer: a space, or nothing in Chinese.
ANSWER_JOINER = {"en": " ", "de": " ", "nl": " ", "es": " ", "fr": " ", "zh": ""}

#: Upstream dataset codes that differ from ours (MzsRE calls Dutch "du").
UPSTREAM_CODES = {"nl": "du"}


def check_language(language: str) -> str:
    """Return ``language`` if it is one of the six, else raise naming the valid codes."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language code {language!r}; expected one of {', '.join(LANGUAGES)}")
    return language


def check_languages(languages, *, default=LANGUAGES) -> tuple[str, ...]:
    """A sequence of language codes (None or empty: ``default``), each one of the six, none twice.

    A single string is refused: ``languages="de"`` would otherwise be read as the codes 'd' and 'e'.
    """
    if isinstance(languages, str):
        raise ValueError(
            f"languages must be a list of language codes such as [{languages!r}], got the string {languages!r}"
        )
    if not languages:
        return tuple(default)
    try:
        codes = tuple(languages)
    except TypeError:
        raise ValueError(f"languages must be a list of language codes, got {type(languages).__name__}") from None
    for code in codes:
        if not isinstance(code, str):
            raise ValueError(f"languages must be language codes (strings), got {code!r} in {list(codes)!r}")
        check_language(code)
    if len(set(codes)) != len(codes):
        raise ValueError(f"languages must be distinct, got {list(codes)!r}")
    return codes


#: Context prefixes for computing keys (reference, section 3): a key is averaged over the bare prompt and
#: the prompt after each of these short prefixes (joined with ". "). Fixed lists: deterministic.
CONTEXT_PREFIXES = {
    "en": ["In short", "As a rule", "Note this"],
    "de": ["Kurz gesagt", "In der Regel", "Beachte dies"],
    "nl": ["Kortom", "In de regel", "Let hierop"],
    "es": ["En resumen", "Por lo general", "Nota esto"],
    "fr": ["En bref", "En règle générale", "Notez ceci"],
    "zh": ["简而言之", "一般来说", "请注意"],
}

#: The "{} is a" prompt whose next-token distribution the KL term keeps close to the original's.
KL_PROMPTS = {
    "en": "{} is a",
    "de": "{} ist ein",
    "nl": "{} is een",
    "es": "{} es un",
    "fr": "{} est un",
    "zh": "{}是一个",
}

#: What joins a context prefix and the prompt.
PREFIX_SEPARATOR = {"en": ". ", "de": ". ", "nl": ". ", "es": ". ", "fr": ". ", "zh": "。"}
