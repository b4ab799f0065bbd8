"""How much text the preserved-knowledge statistics need: a sweep over the sample behind C0.

The null-space methods protect what ``C0 = K0 K0^T / N`` has seen, and MEMIT weighs its update against it. The
reference computes C0 from about 44M Wikipedia tokens per layer; AlphaEdit's own table shows locality falling as
that sample shrinks. A real LLM here gets MzsRE's training questions (``data.corpora.mzsre_questions``, text
disjoint from the study's facts), a few hundred thousand tokens: this sweep measures what that size does.

For each size (questions per language, the first ``size`` of each language), C0 of the band is computed from
those texts alone (``model.statistics.key_second_moments``, cached like any statistics), and, exactly as a band
of the band sweep is judged (``study.bands``), one batch per language of the tuning split is written by each of
``methods`` into a fresh copy of the model and scored (``calibration.write_batch``). Each size also gets its
tokens per language (every token gives one key at every layer, so the count is the same at each layer) and, per
layer, the null-space dimension of the hyperparameter file's cut (``cut_table``): rank(P) of
AlphaEdit's and LangEdit's projector, what a shrinking sample does to the room left for edits.

``sweep_sample_sizes`` runs the sizes one at a time, resumably (one finished size is one set of rows of
``scores.csv``), and writes ``summary.csv``, ``null_space.csv`` and ``preserved.json`` (settings, provenance).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pandas as pd
import torch

from langedit_mini.core.projection import tau_for_leftover
from langedit_mini.study import store

#: the cuts ``cut_table`` reads by default: shares of trace(C0) discarded, and absolute values
LEFTOVERS = (0.01, 0.02, 0.05, 0.10)
TAUS = (2e-2,)


def cut_table(statistics: dict, leftovers=LEFTOVERS, taus=TAUS) -> pd.DataFrame:
    """Per layer and cut: ``tau``, ``null_dim`` (= the implied capacity in edits), ``discarded_share`` of
    trace(C0), ``d_k``, and the largest eigenvalue (an absolute ``tau`` above it protects nothing)."""
    rows = []
    for layer, moment in sorted(statistics.items()):
        covariance = moment.covariance.double()
        eigenvalues = torch.linalg.eigvalsh(covariance).clamp_min(0)
        trace = float(eigenvalues.sum())
        cuts = [(f"leftover={f:.0%}", tau_for_leftover(covariance, f)) for f in leftovers]
        cuts += [(f"tau={t:g}", t) for t in taus]
        for name, tau in cuts:
            below = eigenvalues < tau
            rows.append(
                {
                    "layer": layer,
                    "cut": name,
                    "tau": tau,
                    "null_dim": int(below.sum()),
                    "capacity (edits)": int(below.sum()),
                    "discarded_share": float(eigenvalues[below].sum() / trace) if trace > 0 else float("nan"),
                    "d_k": int(eigenvalues.numel()),
                    "largest_eigenvalue": float(eigenvalues[-1]),
                }
            )
    return pd.DataFrame(rows)


#: questions per language behind C0 (10,000 is all of MzsRE's training split: the study's statistics)
SAMPLE_SIZES = (300, 1000, 3000, 10000)
#: the methods whose writes judge a size: AlphaEdit, whose table shows locality falling with the sample
PRESERVED_METHODS = ("AlphaEdit",)


def first_texts(texts_by_language: dict[str, list[str]], size: int) -> dict[str, list[str]]:
    """The first ``size`` texts of each language; a language with fewer is an error naming it."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"a sample size is a positive number of texts per language, got {size!r}")
    short = {language: len(texts) for language, texts in texts_by_language.items() if len(texts) < size}
    if short:
        raise ValueError(f"{size} texts per language asked, but these languages have fewer: {short}")
    return {language: list(texts[:size]) for language, texts in texts_by_language.items()}


def tokens_per_language(tokenizer, texts_by_language: dict[str, list[str]], max_length: int = 128) -> dict:
    """The tokens C0 averages over, per language: every token of each text, truncated at ``max_length`` as
    ``model.statistics`` reads them (padding excluded)."""
    counts = {}
    for language, texts in texts_by_language.items():
        encoded = tokenizer(texts, truncation=True, max_length=max_length)
        counts[language] = sum(len(ids) for ids in encoded["input_ids"])
    return counts


def null_space_rows(statistics: dict, settings) -> pd.DataFrame:
    """Per layer, at the cut of ``settings`` (a null-space method's: an absolute ``tau`` or a
    ``leftover_fraction`` of trace(C0)): ``d_k``, the null-space dimension (rank of the projector P), the
    ``tau`` it came to, the share of trace(C0) it discards, the largest eigenvalue and the keys averaged
    (``n_samples``)."""
    if settings.tau is not None:
        table = cut_table(statistics, leftovers=(), taus=(settings.tau,))
    else:
        table = cut_table(statistics, leftovers=(settings.leftover_fraction,), taus=())
    table["n_samples"] = [statistics[layer].n_samples for layer in table.layer]
    return table.rename(columns={"null_dim": "rank_P"}).drop(columns=["capacity (edits)"])


def sweep_size(
    testbed,
    band,
    tuning,
    texts_by_language: dict,
    size: int,
    *,
    batch_size: int,
    seed: int = 0,
    methods=PRESERVED_METHODS,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """One size: the scores of one batch per language of ``tuning`` written by each method with C0 of the first
    ``size`` texts per language (``calibration.write_batch``), the null-space rows of the band at the file's
    cut, and the tokens per language."""
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.model.statistics import DEFAULT_CACHE, key_second_moments
    from langedit_mini.study.bands import sweep_band

    sample = first_texts(texts_by_language, size)
    texts = [text for language in sample for text in sample[language]]
    statistics = key_second_moments(testbed.model, testbed.tokenizer, texts, list(band), cache_dir=DEFAULT_CACHE)
    sized = dataclasses.replace(testbed, texts=texts, _statistics=dict(statistics))  # the same model, this C0
    # the band sweep's batches, written with this C0 (its band column left out: one band throughout)
    scores = sweep_band(sized, band, tuning, batch_size=batch_size, seed=seed, methods=methods).drop(columns="band")
    null_space = null_space_rows(statistics, default_config("AlphaEdit", testbed.hparams).settings).assign(size=size)
    tokens = tokens_per_language(testbed.tokenizer, sample)
    return scores.assign(size=size), null_space, tokens


def size_summary(scores: pd.DataFrame, null_space: pd.DataFrame, tokens: dict) -> pd.DataFrame:
    """Per size: the band summary of its writes (``bands.band_summary``), its tokens in all and the smallest
    rank(P) over the band's layers."""
    from langedit_mini.study.bands import band_summary

    summary = band_summary(scores.assign(band=scores["size"].astype(str))).rename(columns={"band": "size"})
    summary["size"] = summary["size"].astype(int)
    summary["tokens"] = [sum(tokens[str(size)].values()) for size in summary["size"]]
    smallest = null_space.groupby("size").rank_P.min()
    summary["smallest rank_P"] = [int(smallest[size]) for size in summary["size"]]
    return summary


def sweep_sample_sizes(
    testbed,
    output,
    band,
    sizes,
    texts_by_language: dict,
    *,
    batch_size: int,
    tuning_facts: int,
    seed: int = 0,
    methods=PRESERVED_METHODS,
    log=print,
) -> dict:
    """``sweep_size`` for each of ``sizes`` not yet in ``output/scores.csv`` (made with the same band, batch
    size, tuning split, seed and methods), then ``size_summary``, written with their provenance; returns the
    record of ``preserved.json``."""
    from langedit_mini.data.schedules import split_facts
    from langedit_mini.study.bands import band_name
    from langedit_mini.study.experiment import check_methods
    from langedit_mini.study.provenance import finish_record, start_record

    output, methods = Path(output), check_methods(methods)
    if not sizes:
        raise ValueError("name at least one sample size")
    for size in sizes:
        first_texts(texts_by_language, size)  # every size checked before the first runs
    settings = {"model": testbed.name, "band": band_name(band), "batch_size": batch_size}
    settings |= {"tuning_facts": tuning_facts, "seed": seed, "methods": list(methods)}
    sweep = store.Sweep(
        output, "preserved.json", settings, tables=["scores", "null_space"], unit="size", progress={"sizes": []}
    )
    tokens = dict(sweep.record.get("tokens", {}))
    _, tuning = split_facts(testbed.requests, tuning_facts)
    record = start_record(loader=testbed.loader, inputs=testbed.inputs)
    for size in sizes:
        if sweep.done(size):
            log(f"{size} texts per language: already swept")
            continue
        start = time.perf_counter()
        swept, rows, counts = sweep_size(
            testbed, band, tuning, texts_by_language, size, batch_size=batch_size, seed=seed, methods=methods
        )
        tokens[str(size)] = counts
        swept = swept.assign(package_hash=record["package_hash"])
        sweep.add(str(size), time.perf_counter() - start, {"scores": swept, "null_space": rows}, tokens=tokens)
        log(f"{size} texts per language: {sweep.timings[str(size)]} s")
    summary = size_summary(sweep.tables["scores"], sweep.tables["null_space"], tokens)
    store.write_table(output / "summary.csv", summary)
    info = {"sizes": [int(s) for s in summary["size"]], "tokens": tokens}
    info = sweep.finish(info | testbed.record() | finish_record(record))
    log(summary.to_string(index=False))
    return info
