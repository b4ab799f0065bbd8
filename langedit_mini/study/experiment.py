"""The sequential multilingual study (reference, section 5): every method, every seed, one plan.

``run_study`` edits the schedule of each seed with each method, each in a fresh session, and collects tidy
DataFrames (a ``StudyResult``): the evaluation of every edit so far after every batch (the forgetting data),
the general-ability probes before editing and every few batches, the cross-lingual scores of the final model,
and each batch's capacity and timings. ``StudyPlan`` is what every run of one study shares; the seed and the
method are what differ between runs. The tables and verdicts read from a study are in ``readings`` and
``verdicts``; running a study one run at a time, resumably, with provenance, is ``runner``.

This module and what it imports define a run (``provenance.package_hash``).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import pandas as pd

from langedit_mini.data.languages import check_languages
from langedit_mini.data.schedules import FACT_MODES, SCHEDULES, build_schedule
from langedit_mini.editing.defaults import applicable_overrides, default_config
from langedit_mini.editing.registry import METHODS
from langedit_mini.editing.session import EditingSession, UnreachedTargetWarning
from langedit_mini.evaluation.edit_metrics import cross_lingual, locality_reference
from langedit_mini.study.sequential import run_schedule


@dataclass
class StudyResult:
    evaluations: pd.DataFrame  # method, seed, after_batch, batch, fact_id, lang, metric, teacher_forced, exact_match
    probes: pd.DataFrame  # method, seed, after_batch (-1 = unedited), lang, probe, metric, value, n
    transfer: pd.DataFrame  # method, seed, edited in, scored in, fact_id, teacher_forced, exact_match
    batches: pd.DataFrame  # method, seed, batch, lang, seconds, capacity_left, unreached (target values), refused
    schedules: dict = field(default_factory=dict)  # seed -> Schedule


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class StudyPlan:
    """What every run of one study shares."""

    languages: tuple = ("en",)
    edits_per_language: int = 10
    batch_size: int = 10
    schedule: str = "delta"  # language blocks ("delta"), languages mixed in every batch ("mt"), one ("mono")
    facts: str = "distinct"  # each language its own facts, or the same facts in every language ("parallel")
    # every edit so far is scored after every evaluate_every-th batch and after the last; the batches in
    # between are scored on their own edits right after their write
    evaluate_every: int = 1
    probe_every: int = 3  # general-ability probes after every probe_every-th batch and after the last
    probe_limit: int = 20  # items per probe and language
    overrides: dict | None = None  # settings over the hyperparameter file, each reaching the methods that have it

    def __post_init__(self):
        object.__setattr__(self, "languages", check_languages(self.languages))
        for name in ("edits_per_language", "batch_size", "evaluate_every", "probe_every", "probe_limit"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.facts not in FACT_MODES:
            raise ValueError(f"facts must be one of {', '.join(FACT_MODES)}, got {self.facts!r}")
        overrides = {k: v for k, v in (self.overrides or {}).items() if v is not None}
        applicable_overrides(METHODS[0], overrides)  # a name no method has is an error here
        object.__setattr__(self, "overrides", overrides or None)

    def batches(self) -> int:
        """Batches per run (the delta schedule fills whole batches)."""
        return self.edits_per_language * len(self.languages) // self.batch_size


def check_methods(methods) -> list[str]:
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty list drawn from {', '.join(METHODS)}; got {methods!r}")
    return methods


def check_seeds(seeds) -> list[int]:
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    return seeds


def _probe_measure(probes, tokenizer, plan: StudyPlan):
    """``model -> DataFrame`` of general-ability probes: ``probes`` itself when callable (e.g. the real-LLM
    tasks), the pocket probes when it is their dict, None for none."""
    if probes is None or callable(probes):
        return probes
    from langedit_mini.evaluation.pocket_probes import general_ability

    return lambda model: general_ability(model, tokenizer, probes, plan.languages, plan.probe_limit)


def run_study(
    model,
    tokenizer,
    requests,
    statistics,
    plan: StudyPlan = StudyPlan(),
    *,
    methods=METHODS,
    seeds=(0,),
    hparams: str = "pocket",
    probes=None,
    log=print,
) -> StudyResult:
    """Edit the schedule of each seed with each method (a fresh session each) and collect the results.

    ``hparams``: the hyperparameter file the methods' settings come from (a name of ``list_hparams()`` or
    a path), with ``plan.overrides`` over it. ``probes``: the pocket probes (their dict), or a callable
    ``model -> DataFrame``, measured on the unedited model and after every ``plan.probe_every``-th batch.
    """
    methods, seeds = check_methods(methods), check_seeds(seeds)
    measure = _probe_measure(probes, tokenizer, plan)
    overrides = plan.overrides or {}
    evaluations, probe_rows, transfer, batches, schedules = [], [], [], [], {}
    if measure is not None:
        probe_rows.append(measure(model).assign(method="unedited", seed=-1, after_batch=-1))
    for seed in seeds:
        schedule = build_schedule(
            requests,
            plan.schedule,
            plan.languages,
            edits_per_language=plan.edits_per_language,
            batch_size=plan.batch_size,
            seed=seed,
            facts=plan.facts,
        )
        schedules[seed] = schedule
        edited = schedule.requests
        reference = dict(zip([(r.fact_id, r.lang) for r in edited], locality_reference(model, tokenizer, edited)))
        for method in methods:
            config = default_config(method, hparams, seed=seed, **applicable_overrides(method, overrides))
            session = EditingSession(model, tokenizer, config, statistics, keep_undo=False)  # never rolled back
            start = time.perf_counter()
            progress = _progress(batches, probe_rows, measure, plan, method, seed, session, schedule)
            with warnings.catch_warnings():  # counted per batch in `batches` (column unreached) instead
                warnings.simplefilter("ignore", UnreachedTargetWarning)
                frame = run_schedule(
                    session,
                    schedule,
                    reference=reference,
                    progress=progress,
                    evaluate_every=plan.evaluate_every,
                    written=plan.evaluate_every > 1,
                    refused="continue",  # counted in `batches`; the refused edits are scored as not made
                )
            evaluations.append(frame.assign(method=method, seed=seed))
            transfer.append(
                cross_lingual(session.model, tokenizer, edited, requests, plan.languages).assign(
                    method=method, seed=seed
                )
            )
            if log is not None:
                log(f"seed {seed}, {method}: {len(schedule.batches)} batches in {time.perf_counter() - start:.0f} s")
    return StudyResult(
        pd.concat(evaluations, ignore_index=True),
        pd.concat(probe_rows, ignore_index=True) if probe_rows else pd.DataFrame(),
        pd.concat(transfer, ignore_index=True),
        pd.DataFrame(batches),
        schedules,
    )


def _progress(batches: list, probe_rows: list, measure, plan: StudyPlan, method, seed, session, schedule):
    """What ``run_schedule`` calls after every batch: the batch's row (seconds, capacity left, unreached
    target values, refused) into ``batches``, and the probes into ``probe_rows`` when they are due."""

    def progress(index, record, seconds):
        left = record.capacity_left if record is not None else session.capacity_left
        capacity = [v for v in left.values() if v is not None]
        batches.append(
            {
                "method": method,
                "seed": seed,
                "batch": index,
                "lang": schedule.batch_languages[index],
                "seconds": seconds,
                "capacity_left": min(capacity) if capacity else None,
                "unreached": record.unreached if record is not None else None,
                "refused": record is None,  # not written: no null space left for its keys
            }
        )
        last = len(schedule.batches) - 1
        if measure is not None and (index % plan.probe_every == plan.probe_every - 1 or index == last):
            probe_rows.append(measure(session.model).assign(method=method, seed=seed, after_batch=index))

    return progress


def combine_studies(parts: list[StudyResult]) -> StudyResult:
    """One StudyResult from runs of the same schedules with different methods (e.g. one chapter cell each).

    Every part measured the unedited model's probes; they are kept once. The parts must share their
    seeds' schedules, or they would not be one study.
    """
    if not parts:
        raise ValueError("no study parts to combine: run at least one method")
    schedules = parts[0].schedules
    for part in parts[1:]:
        if {seed: plan.requests for seed, plan in part.schedules.items()} != {
            seed: plan.requests for seed, plan in schedules.items()
        }:
            raise ValueError(
                "study parts ran different schedules (seeds, languages or sizes differ); "
                "they cannot be combined into one study"
            )
    probes = [part.probes for part in parts if len(part.probes)]
    if probes:
        unedited = probes[0][probes[0].method == "unedited"]
        probes = [unedited] + [frame[frame.method != "unedited"] for frame in probes]

    def joined(name):
        return pd.concat([getattr(part, name) for part in parts], ignore_index=True)

    return StudyResult(
        joined("evaluations"),
        pd.concat(probes, ignore_index=True) if probes else pd.DataFrame(),
        joined("transfer"),
        joined("batches"),
        schedules,
    )
