"""The sequential multilingual study (reference, section 5): every method, every seed, one schedule.

``run_study`` edits a schedule with each method and seed in its own session, and collects tidy
DataFrames: the evaluation of every edit so far after every batch (the forgetting data), the
general-ability probes before editing and every few batches, the cross-lingual scores of the final
model, and each batch's capacity and timings. ``main_table`` turns the final evaluations into the
paper-style table: mean and 95% interval over seeds per method, metric and language.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import pandas as pd

from langedit_mini.data.languages import check_languages
from langedit_mini.data.schedules import build_schedule
from langedit_mini.editing.defaults import applicable_overrides, default_config
from langedit_mini.editing.registry import METHODS
from langedit_mini.editing.session import EditingSession, UnreachedTargetWarning
from langedit_mini.evaluation.edit_metrics import cross_lingual, locality_reference
from langedit_mini.study.claims import Claim
from langedit_mini.study.sequential import run_schedule

#: two-sided 95% Student t quantiles by degrees of freedom (1..10); 1.96 beyond
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


@dataclass
class StudyResult:
    evaluations: pd.DataFrame  # method, seed, after_batch, batch, fact_id, lang, metric, teacher_forced, exact_match
    probes: pd.DataFrame  # method, seed, after_batch (-1 = unedited), lang, probe, metric, value, n
    transfer: pd.DataFrame  # method, seed, edited in, scored in, fact_id, teacher_forced, exact_match
    batches: pd.DataFrame  # method, seed, batch, lang, seconds, capacity_left, unreached (target values), refused
    schedules: dict = field(default_factory=dict)  # seed -> Schedule


def interval(values) -> tuple[float, float]:
    """Mean and half-width of the 95% t interval (NaN half-width for a single value)."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, T_975.get(len(values) - 1, 1.96) * sd / math.sqrt(len(values))


def check_methods(methods) -> list[str]:
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty list drawn from {', '.join(METHODS)}; got {methods!r}")
    return methods


def run_study(
    model,
    tokenizer,
    requests,
    statistics,
    *,
    methods=METHODS,
    seeds=(0,),
    schedule="delta",
    languages=("en",),
    edits_per_language=10,
    batch_size=10,
    overrides: dict | None = None,
    probes=None,
    probe_every: int = 3,
    probe_limit: int = 20,
    model_name: str = "pocket",
    facts: str = "distinct",
    evaluate_every: int = 1,
    log=print,
) -> StudyResult:
    """Edit the schedule of each seed with each method (fresh session each) and collect the results.

    ``facts``: "distinct" or "parallel" (``data.schedules``). ``evaluate_every``: every edit so far
    is scored after every ``evaluate_every``-th batch and after the last; the batches in between are
    scored on their own requests right after their write (``run_schedule(written=True)``).
    """
    from langedit_mini.evaluation.pocket_probes import general_ability

    methods = check_methods(methods)
    languages = check_languages(languages)
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if not isinstance(probe_every, int) or probe_every < 1:
        raise ValueError(f"probe_every must be a positive integer, got {probe_every!r}")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if probes is None or callable(probes):
        measure = probes  # a callable: model -> DataFrame (e.g. the real-LLM tasks of ``general``)
    else:

        def measure(edited_model):
            return general_ability(edited_model, tokenizer, probes, languages, probe_limit)

    evaluations, probe_rows, transfer, batches, schedules = [], [], [], [], {}
    if probes is not None:
        probe_rows.append(measure(model).assign(method="unedited", seed=-1, after_batch=-1))
    for seed in seeds:
        plan = build_schedule(
            requests,
            schedule,
            languages,
            edits_per_language=edits_per_language,
            batch_size=batch_size,
            seed=seed,
            facts=facts,
        )
        schedules[seed] = plan
        edited = plan.requests
        reference = dict(zip([(r.fact_id, r.lang) for r in edited], locality_reference(model, tokenizer, edited)))
        for method in methods:
            config = default_config(method, model_name, seed=seed, **applicable_overrides(method, overrides))
            session = EditingSession(model, tokenizer, config, statistics, keep_undo=False)  # never rolled back
            start = time.perf_counter()

            def progress(index, record, seconds, method=method, seed=seed, session=session, plan=plan):
                left = record.capacity_left if record is not None else session.capacity_left
                capacity = [v for v in left.values() if v is not None]
                batches.append(
                    {
                        "method": method,
                        "seed": seed,
                        "batch": index,
                        "lang": plan.batch_languages[index],
                        "seconds": seconds,
                        "capacity_left": min(capacity) if capacity else None,
                        "unreached": record.unreached if record is not None else None,
                        "refused": record is None,  # not written: no null space left for its keys
                    }
                )
                if probes is not None and (index % probe_every == probe_every - 1 or index == len(plan.batches) - 1):
                    probe_rows.append(measure(session.model).assign(method=method, seed=seed, after_batch=index))

            with warnings.catch_warnings():  # counted per batch in `batches` (column unreached) instead
                warnings.simplefilter("ignore", UnreachedTargetWarning)
                frame = run_schedule(
                    session,
                    plan,
                    reference=reference,
                    progress=progress,
                    evaluate_every=evaluate_every,
                    written=evaluate_every > 1,
                    refused="continue",  # counted in `batches`; the refused edits are scored as not made
                )
            evaluations.append(frame.assign(method=method, seed=seed))
            transfer.append(
                cross_lingual(session.model, tokenizer, edited, requests, languages).assign(method=method, seed=seed)
            )
            if log is not None:
                log(f"seed {seed}, {method}: {len(plan.batches)} batches in {time.perf_counter() - start:.0f} s")
    return StudyResult(
        pd.concat(evaluations, ignore_index=True),
        pd.concat(probe_rows, ignore_index=True) if probe_rows else pd.DataFrame(),
        pd.concat(transfer, ignore_index=True),
        pd.DataFrame(batches),
        schedules,
    )


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


#: the smallest mean reliability (teacher-forced) after the last batch at which a method counts as writing its edits
WRITES_EDITS = 0.5


def study_claims(study: StudyResult) -> dict[str, Claim]:
    """What a sequential study must show, as data (``scored``, ``capacity``, ``writes``).

    ``scored``: every edit made so far is scored after every batch (missing scores, <= 0);
    ``capacity``: LangEdit's exact form never ran out of null space (smallest capacity left, >= 1;
    1 when it was not run); ``writes``: every method writes its edits (smallest mean teacher-forced
    reliability after the last batch, >= ``WRITES_EDITS``), a claim about the pocket world, whose facts
    the pocket model knows.
    """
    reliability = study.evaluations[study.evaluations.metric == "reliability"]
    scored = reliability.groupby(["method", "seed", "after_batch"]).size()
    missing = 0
    for (_, seed, after), count in scored.items():
        batches = study.schedules[seed].batches
        missing += abs(count - sum(len(batch) for batch in batches[: after + 1]))
    smallest = study.batches.groupby(["method", "seed"]).capacity_left.min()
    exact = smallest.xs("LangEdit-exact").min() if "LangEdit-exact" in smallest.index.get_level_values(0) else 1
    final = after_last_batch(reliability)
    return {
        "scored": Claim("every edit so far is scored after every batch (missing scores)", missing, 0),
        "capacity": Claim(
            "LangEdit-exact never ran out of null space (smallest capacity left)", exact, 1, at_least=True
        ),
        "writes": Claim(
            "every method writes its edits (smallest mean reliability, teacher-forced)",
            final.groupby("method").teacher_forced.mean().min(),
            WRITES_EDITS,
            at_least=True,
        ),
    }


def after_last_batch(evaluations: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``evaluations`` scored after each run's (method and seed) last batch."""
    last = evaluations.groupby(["method", "seed"]).after_batch.transform("max")
    return evaluations[evaluations.after_batch == last]


def final_scores(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Per method, seed, metric and language: mean TF and EM of every edit after the last batch."""
    final = after_last_batch(evaluations)
    return final.groupby(["method", "seed", "metric", "lang"])[["teacher_forced", "exact_match"]].mean().reset_index()


def averages(evaluations: pd.DataFrame, methods=None) -> pd.DataFrame:
    """Per method: the mean over every edit and seed, after the last batch, of reliability, generality and
    locality, teacher-forced (TF) and exact match (EM)."""
    final = after_last_batch(evaluations)
    columns = {}
    for metric in ("reliability", "generality", "locality"):
        part = final[final.metric == metric]
        for value, label in (("teacher_forced", "TF"), ("exact_match", "EM")):
            columns[f"{metric} ({label})"] = part.groupby("method")[value].mean()
    table = pd.DataFrame(columns)
    return table.reindex([m for m in (methods or METHODS) if m in table.index])


def unreached_targets(batches: pd.DataFrame) -> pd.Series:
    """Per method: edits written with a target value that did not reach its target, per run (mean over
    seeds of the sum over batches); NaN for runs recorded before the count existed."""
    if "unreached" not in batches.columns:
        return pd.Series(dtype=float, name="unreached targets")
    per_run = batches.groupby(["method", "seed"]).unreached.sum(min_count=1)
    return per_run.groupby("method").mean().rename("unreached targets")


def main_table(
    evaluations: pd.DataFrame,
    value: str = "teacher_forced",
    methods=None,
    languages=None,
    metrics=("reliability", "generality", "locality", "portability"),
) -> pd.DataFrame:
    """Rows (method, metric); columns: languages and "avg"; cells "mean ± half-width" over seeds."""
    scores = final_scores(evaluations)
    per_seed_average = scores.groupby(["method", "seed", "metric"])[value].mean().reset_index().assign(lang="avg")
    scores = pd.concat([scores[["method", "seed", "metric", "lang", value]], per_seed_average])
    rows = []
    for (method, metric, language), part in scores.groupby(["method", "metric", "lang"]):
        if metric not in metrics:
            continue
        mean, half = interval(part[value])
        rows.append(
            {
                "method": method,
                "metric": metric,
                "lang": language,
                "cell": f"{mean:.3f}" + ("" if math.isnan(half) else f" ± {half:.3f}"),
            }
        )
    table = pd.DataFrame(rows).pivot(index=["method", "metric"], columns="lang", values="cell")
    columns = [c for c in (languages or sorted(set(table.columns) - {"avg"})) if c in table.columns] + ["avg"]
    order = [m for m in (methods or METHODS) if m in table.index.get_level_values(0)]
    return table.reindex(columns=columns).reindex(order, level=0)


def method_gap(by_setting: pd.DataFrame, first: str, second: str, tolerance: float = 0.02) -> dict:
    """How far two methods' scores lie apart over settings: ``by_setting`` is indexed by (setting, method)
    with one column per score. Returns ``gap`` (per setting and score, the absolute difference), ``largest``
    and a ``verdict`` sentence ("alike" within ``tolerance``); ``gap`` None when a method is missing."""
    methods = set(by_setting.index.get_level_values("method"))
    if not {first, second} <= methods:
        return {"gap": None, "largest": None, "verdict": f"{first} and {second} are not both in `methods`"}
    gap = (by_setting.xs(first, level="method") - by_setting.xs(second, level="method")).abs()
    largest = float(gap.max().max())
    verdict = (
        f"the two methods score alike (within {tolerance:g})"
        if largest <= tolerance
        else f"the two methods differ by more than {tolerance:g} somewhere: the table above says where"
    )
    return {"gap": gap, "largest": largest, "verdict": verdict}
