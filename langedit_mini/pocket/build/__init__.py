"""Regenerating the pocket world (``python -m langedit_mini.pocket.build``): facts, corpus, tokenizer,
model, and the model card (``python -m langedit_mini.pocket.build.card``). Regeneration only: nothing
at run time imports this package.

    facts   the fact base from CLDR and other data packages
    corpus  the corpus that states the facts, the editing dataset, the probes
    train   the tokenizer and the small Llama
    card    the model card, every number measured on the shipped files
"""
