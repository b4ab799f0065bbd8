"""How many steps the value step needs: its reach on the tuning split, per language.

MEMIT, AlphaEdit and both LangEdit forms write the same target values ``z_i``, found by gradient steps on
``delta_i`` at the band's last layer (SPEC section 3; ``model.values``). The reference recipe allows 25 steps
(``v_num_grad_steps``) and stops a request once its mean target NLL falls below ``stop_nll``. Tuned on English
targets of a few tokens, that allowance may fall short where a model's tokenizer cuts a target into many
pieces: SmolLM2's English-only BPE spells a Chinese answer in bytes (a 13-19 token target for a name).

A request stops as soon as it reaches its target and requests never interact (each has its own ``delta``;
the loss of one does not read another's rows, and Adam acts per coordinate), so one run allowed ``most``
steps says, for every smaller allowance ``s``, which requests that allowance would have reached: those that
stopped within ``s`` steps (up to rounding: fewer rows run once some have stopped). ``value_step_reach``
makes that run for batches drawn from the tuning split (facts the study never edits); ``reach_curve`` gives
the share reached per language and allowance; ``choose_steps`` takes the fewest steps that reach at least
``share`` of every language's targets, a rule fixed before the run. The value step's allowance is shared by
every method that writes target values, so choosing it treats them alike; FT does not use it.

``sweep_value_steps`` runs one language at a time, resumably, and writes ``reach.csv`` (one row per request),
``curve.csv`` and ``value_steps.json`` (the settings, the choice, the provenance) under ``output``. The
choice is not written into the hyperparameter file: a new allowance changes every target value, so the
settings tuned with the old one (``study.tuning``) and the gates measured with them would have to be made again.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from langedit_mini.study import store
from langedit_mini.study.experiment import _positive_int

#: the allowances a sweep reports: the reference's 25 and three doublings
STEP_COUNTS = (25, 50, 100, 200)
#: the share of each language's tuning targets the chosen allowance must reach (fixed before any run)
REACH_SHARE = 0.9


def check_counts(counts, share: float) -> tuple[int, ...]:
    """``counts`` sorted, each a positive integer, and ``share`` in (0, 1]; an error that says what is wrong."""
    counts = tuple(counts)
    if not counts or not all(_positive_int(count) for count in counts):
        raise ValueError(f"step counts must be positive integers, got {list(counts)!r}")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    return tuple(sorted(set(counts)))


def value_step_reach(testbed, batches, *, most: int, seed: int = 0) -> pd.DataFrame:
    """Each of ``batches`` (lists of requests) through the value step of the testbed's hyperparameter file,
    allowed ``most`` steps: one row per request with its language, target, target tokens, the steps it took,
    its final target NLL and whether it reached ``stop_nll``."""
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.model.architecture import detect_architecture
    from langedit_mini.model.values import compute_target_values

    if not _positive_int(most):
        raise ValueError(f"most must be a positive integer, got {most!r}")
    config = default_config("MEMIT", testbed.hparams)
    settings = replace(config.values, steps=most)
    model, tokenizer = testbed.model, testbed.tokenizer
    architecture, layer = detect_architecture(model), config.layers[-1]
    rows = []
    for number, batch in enumerate(batches):
        values = compute_target_values(model, tokenizer, architecture, batch, layer, settings, seed=seed)
        for request, nll, steps in zip(batch, values.final_nll, values.steps_taken):
            tokens = tokenizer(request.joiner + request.target, add_special_tokens=False)["input_ids"]
            rows.append(
                {
                    "batch": number,
                    "lang": request.lang,
                    "fact_id": request.fact_id,
                    "target": request.target,
                    "target_tokens": len(tokens),
                    "steps": int(steps),
                    "final_nll": float(nll),
                    "reached": bool(nll < settings.stop_nll),
                }
            )
    return pd.DataFrame(rows)


def reach_curve(reach: pd.DataFrame, counts=STEP_COUNTS) -> pd.DataFrame:
    """Per language (and ``all``) and allowance ``s`` of ``counts``: the share of requests reached within
    ``s`` steps, the requests, and their median target tokens. An allowance above the run's is an error."""
    counts = check_counts(counts, 1.0)
    if reach.empty:
        raise ValueError("no request was run through the value step")
    rows = []
    for lang, group in [*reach.groupby("lang", sort=False), ("all", reach)]:
        for count in counts:
            within = group.reached & (group.steps <= count)
            rows.append(
                {
                    "lang": lang,
                    "steps": count,
                    "reached": float(within.mean()),
                    "requests": len(group),
                    "median_target_tokens": float(group.target_tokens.median()),
                }
            )
    return pd.DataFrame(rows)


def choose_steps(curve: pd.DataFrame, share: float = REACH_SHARE) -> dict:
    """The fewest steps of ``curve`` at which every language reaches at least ``share`` of its targets
    (``met``); where none does, the most tried, with ``met`` False. ``short``: the languages below ``share``
    at the reference's 25 steps (when 25 was tried)."""
    check_counts([1], share)
    languages = curve[curve.lang != "all"]
    worst = languages.groupby("steps").reached.min()
    enough = worst[worst >= share]
    steps = int(enough.index.min()) if len(enough) else int(worst.index.max())
    at_25 = languages[languages.steps == 25]
    short = sorted(at_25[at_25.reached < share].lang) if len(at_25) else []
    return {"steps": steps, "met": bool(len(enough)), "share": share, "worst": float(worst[steps]), "short": short}


def sweep_value_steps(
    testbed,
    output,
    *,
    batches: int,
    batch_size: int,
    tuning_facts: int,
    seed: int = 0,
    counts=STEP_COUNTS,
    share: float = REACH_SHARE,
    languages=None,
    log=print,
) -> dict:
    """``value_step_reach`` for ``batches`` batches of ``batch_size`` distinct-subject tuning requests per
    language (a language already in ``output/reach.csv`` with the same settings is not run again), allowed
    the most of ``counts``; then ``reach_curve`` and ``choose_steps``, written with their provenance; returns
    the record."""
    from langedit_mini.data.languages import LANGUAGES
    from langedit_mini.data.schedules import distinct_subjects, split_facts
    from langedit_mini.study.provenance import finish_record, start_record

    counts = check_counts(counts, share)
    for name, value in (("batches", batches), ("batch_size", batch_size)):
        if not _positive_int(value):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    languages = list(languages or LANGUAGES)
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise ValueError(f"unknown languages {unknown}; known: {', '.join(LANGUAGES)}")
    output = Path(output)
    settings = {"model": testbed.name, "batches": batches, "batch_size": batch_size, "tuning_facts": tuning_facts}
    settings |= {"seed": seed, "most": counts[-1], "share": share}
    sweep = store.Sweep(output, "value_steps.json", settings, tables=["reach"], unit="lang")
    _, tuning = split_facts(testbed.requests, tuning_facts)
    record = start_record(loader=testbed.loader, inputs=testbed.inputs)
    for lang in languages:
        if sweep.done(lang):
            log(f"{lang}: already run")
            continue
        drawn = distinct_subjects([r for r in tuning if r.lang == lang], batches * batch_size, seed)
        split = [drawn[i : i + batch_size] for i in range(0, len(drawn), batch_size)]
        start = time.perf_counter()
        reach = value_step_reach(testbed, split, most=counts[-1], seed=seed)
        sweep.add(lang, time.perf_counter() - start, {"reach": reach.assign(package_hash=record["package_hash"])})
        log(
            f"{lang}: {int(reach.reached.sum())} of {len(reach)} reached within {counts[-1]} steps, "
            f"{sweep.timings[lang]} s"
        )
    curve = reach_curve(sweep.tables["reach"], counts)
    store.write_table(output / "curve.csv", curve)
    chosen = choose_steps(curve, share)
    measured = set(sweep.tables["reach"].lang)  # with the languages of earlier calls, when resumed
    info = {"languages": [lang for lang in LANGUAGES if lang in measured], "chosen": chosen}
    info |= {"values": _values_of(testbed)} | testbed.record()
    info = sweep.finish(info | finish_record(record))
    log(curve.pivot(index="lang", columns="steps", values="reached").round(2).to_string())
    log(
        f"chosen: {chosen['steps']} steps ({'every language' if chosen['met'] else 'no allowance tried'} reaches "
        f"{share:.0%}); written to {output}"
    )
    return info


def _values_of(testbed) -> dict:
    """The value step's settings in the testbed's hyperparameter file (the allowance aside, which the sweep sets)."""
    from langedit_mini.study.calibration import written_with

    values = written_with(testbed.hparams, ("MEMIT",))["MEMIT"]["values"]
    return {name: value for name, value in values.items() if name != "steps"} | {"file_steps": values["steps"]}
