"""Which band of layers to edit: a sweep on the tuning split.

The causal trace says where a model reads a fact (gate G3), but Hase et al. (2023) find that it does not predict
where an edit works best (SPEC section 9), so the band is chosen by a sweep too. For each candidate band, in every
language, one batch of the study's batch size, drawn from the tuning split (facts the study never edits,
``data.schedules.split_facts``), is written into a fresh copy of the model by each of ``methods`` (by default
MEMIT and AlphaEdit, the two methods G1 reads; the band is shared by all five methods), with the testbed's
hyperparameters and only the layers changed, and scored as G1 scores a batch (``calibration.write_batch``).

A band's objective is the tuning objective (the mean teacher-forced reliability, generality and locality,
``tuning.OBJECTIVE_METRICS``) averaged over the languages and the methods; ``choose_band`` takes the best.
``sweep_bands`` runs the bands one at a time, resumably (one finished band is one set of rows of
``scores.csv``), and records the choice with its provenance in ``bands.json`` (no choice while one band is
swept), with the margin over the runner-up and its 95% interval paired by request (``band_margin``): a margin
whose interval spans 0 is a best band that the sweep does not separate from the next.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from langedit_mini.study import store

#: the methods whose writes judge a band (those G1 reads)
BAND_METHODS = ("MEMIT", "AlphaEdit")


def parse_band(text: str) -> tuple[int, ...]:
    """A band written as ``3-7`` (layers 3 to 7) or ``3,5,7`` (those layers), as a sorted tuple."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-"))
            layers = tuple(range(first, last + 1))
        else:
            layers = tuple(sorted(int(part) for part in text.split(",")))
    except ValueError:
        raise ValueError(f"a band is written '3-7' or '3,5,7', got {text!r}") from None
    if not layers or min(layers) < 0 or len(set(layers)) != len(layers):
        raise ValueError(f"a band names distinct non-negative layers in increasing order, got {text!r}")
    return layers


def band_name(band) -> str:
    """``3-7`` for a run of consecutive layers, else ``3,5,7``."""
    band = sorted(band)
    consecutive = band == list(range(band[0], band[-1] + 1))
    return f"{band[0]}-{band[-1]}" if consecutive and len(band) > 1 else ",".join(map(str, band))


def sweep_band(testbed, band, tuning, *, batch_size: int, seed: int = 0, methods=BAND_METHODS) -> pd.DataFrame:
    """One batch per language of ``tuning`` written into ``band`` by each method: the scores of every request
    (``calibration.write_batch``) with ``lang`` and ``band`` columns."""
    from langedit_mini.data.languages import LANGUAGES
    from langedit_mini.data.schedules import distinct_subjects
    from langedit_mini.model.architecture import check_layer, detect_architecture
    from langedit_mini.study.calibration import write_batch

    architecture = detect_architecture(testbed.model)
    for layer in band:
        check_layer(testbed.model, architecture, layer)
    frames = []
    for language in LANGUAGES:
        pool = [r for r in tuning if r.lang == language]
        if not pool:
            raise ValueError(f"the tuning split has no {language} requests")
        batch = distinct_subjects(pool, batch_size, seed)
        frames.append(write_batch(testbed, batch, methods, layers=tuple(band)).assign(lang=language))
    return pd.concat(frames, ignore_index=True).assign(band=band_name(band))


def band_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per band: the teacher-forced mean of each objective metric over languages and methods, each method's
    objective, the objective, and the share of target values that did not reach their target (``unreached``,
    a batch's count on each of its rows, as ``calibration.write_batch`` writes it)."""
    from langedit_mini.study.tuning import OBJECTIVE_METRICS

    missing = {"band", "method", "lang", "metric", "teacher_forced", "unreached"} - set(scores.columns)
    if missing:
        raise ValueError(f"band scores lack the columns {sorted(missing)}")
    chosen = scores[scores.metric.isin(OBJECTIVE_METRICS)]
    rows = []
    for band, part in chosen.groupby("band", sort=False):
        means = part.groupby(["method", "metric"]).teacher_forced.mean().unstack()
        row = {"band": band} | {metric: float(means[metric].mean()) for metric in OBJECTIVE_METRICS}
        row |= {f"objective {method}": float(means.loc[method].mean()) for method in means.index}
        row["objective"] = float(means.mean(axis=1).mean())
        # ``unreached`` is a batch's count (on every row of it): over the batches, the share of their requests
        batches = scores[(scores.band == band) & (scores.metric == "reliability")].groupby(["method", "lang"])
        row["unreached"] = float((batches.unreached.first() / batches.size()).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def band_margin(scores: pd.DataFrame, first, second, *, metrics=None, by: str = "band") -> tuple[float, float, int]:
    """The objective of band ``first`` minus that of ``second``, paired by request: per (method, language, fact)
    the mean teacher-forced score over ``metrics`` (default ``tuning.OBJECTIVE_METRICS``) in each band,
    differenced; the mean and the half-width of the 95% t interval over those pairs, and their count. One seed's
    batches: the interval is the noise of which facts were drawn, not of the seed (every band writes the same
    facts, so the pairs match). ``by`` names the column that tells the two apart (``size`` in
    ``study.preserved``)."""
    from langedit_mini.study.intervals import interval
    from langedit_mini.study.tuning import OBJECTIVE_METRICS

    chosen = scores[scores.metric.isin(metrics or OBJECTIVE_METRICS)]
    per_request = chosen.groupby([by, "method", "lang", "fact_id"]).teacher_forced.mean()
    bands = set(per_request.index.get_level_values(0))
    if first not in bands or second not in bands:
        raise ValueError(f"band_margin needs bands {first} and {second} in the scores; they hold {sorted(bands)}")
    a, b = per_request.xs(first), per_request.xs(second)
    pairs = a.index.intersection(b.index)
    if len(pairs) != len(a) or len(pairs) != len(b):
        raise ValueError(f"bands {first} and {second} did not write the same requests: they cannot be paired")
    mean, half = interval(a[pairs] - b[pairs])
    return mean, half, len(pairs)


def choose_band(summary: pd.DataFrame) -> str:
    """The band with the best objective (the first of equals, in the sweep's order)."""
    if summary.empty:
        raise ValueError("no band was swept")
    return str(summary.loc[summary.objective.idxmax(), "band"])


def sweep_bands(
    testbed,
    output,
    bands,
    *,
    batch_size: int,
    tuning_facts: int,
    seed: int = 0,
    methods=BAND_METHODS,
    log=print,
) -> dict:
    """``sweep_band`` for each of ``bands`` not yet in ``output/scores.csv`` (made with the same batch size,
    tuning split and seed), then ``band_summary`` and ``choose_band``, written with their provenance to
    ``output/summary.csv`` and ``output/bands.json``; returns the record."""
    from langedit_mini.data.schedules import split_facts
    from langedit_mini.study.experiment import check_methods
    from langedit_mini.study.provenance import finish_record, start_record

    output, methods = Path(output), check_methods(methods)
    if not bands:
        raise ValueError("name at least one band to sweep")
    settings = {"model": testbed.name, "batch_size": batch_size, "tuning_facts": tuning_facts, "seed": seed}
    settings |= {"methods": list(methods)}
    sweep = store.Sweep(
        output,
        "bands.json",
        settings,
        tables=["scores"],
        unit="band",
        progress={"bands": [], "chosen": None},
        dtypes={"band": str},
    )
    _, tuning = split_facts(testbed.requests, tuning_facts)
    record = start_record(loader=testbed.loader, inputs=testbed.inputs)
    for band in bands:
        name = band_name(band)
        if sweep.done(name):
            log(f"band {name}: already swept")
            continue
        start = time.perf_counter()
        swept = sweep_band(testbed, band, tuning, batch_size=batch_size, seed=seed, methods=methods)
        # which code wrote each band's rows
        sweep.add(name, time.perf_counter() - start, {"scores": swept.assign(package_hash=record["package_hash"])})
        log(f"band {name}: {sweep.timings[name]} s")
    scores = sweep.tables["scores"]
    summary = band_summary(scores)
    store.write_table(output / "summary.csv", summary)
    chosen = choose_band(summary) if len(summary) > 1 else None  # one band is a measurement, not a choice
    info = {"bands": list(summary.band), "chosen": chosen}
    if chosen is not None:  # the best band against the runner-up, paired by request: is the choice separated?
        runner_up = str(summary[summary.band != chosen].sort_values("objective").band.iloc[-1])
        mean, half, pairs = band_margin(scores, chosen, runner_up)
        info["margin"] = {"over": runner_up, "mean": mean, "half_width_95": half, "pairs": pairs}
        info["margin"]["separated"] = bool(mean - half > 0)
    info = sweep.finish(info | testbed.record() | finish_record(record))
    log(summary.to_string(index=False))
    log(f"chosen band {chosen or 'none (one band swept)'}; written to {output}")
    return info
