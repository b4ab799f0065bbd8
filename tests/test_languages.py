"""The per-language table: adding a language means an entry in every table (data.languages)."""

from langedit_mini.data import languages as table


def test_every_per_language_table_covers_every_language():
    for name in ("ANSWER_JOINER", "CONTEXT_PREFIXES", "KL_PROMPTS", "PREFIX_SEPARATOR"):
        entries = getattr(table, name)
        assert set(entries) == set(table.LANGUAGES), f"{name} must have one entry per language of LANGUAGES"
    assert all(len(prefixes) >= 1 for prefixes in table.CONTEXT_PREFIXES.values())
    assert all(prompt.count("{}") == 1 for prompt in table.KL_PROMPTS.values())
    assert set(table.UPSTREAM_CODES) <= set(table.LANGUAGES)
