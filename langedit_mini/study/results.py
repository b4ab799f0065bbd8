"""The full-scale study on disk: one folder per (seed, method) run, and their merge.

At full scale one run (one seed, one method, 600 edits) takes a quarter of an hour or more on 2 cores,
and the whole study (3 seeds x 5 methods) several hours. So ``make study`` runs it as *parts*: each
(seed, method) pair is one call of ``run_part``, which runs ``experiment.run_study`` and writes into
``results/main/parts/seed<s>-<method>/`` the raw results as CSV and ``part.json`` (commit, package hash,
parameters, machine, wall time, and the study's claims with their numbers). A part already on disk is
not run again, so the study can be spread over several sessions; a folder without ``part.json`` is an
interrupted part and is reported, never merged.

``merge_parts`` combines the finished parts into the tables at ``results/main/`` (main tables and
averages; the raw tables stay in the parts, ``read_raw`` joins them) and a ``provenance.json`` that
lists every part with its provenance and the planned parts still missing; ``stale_runs`` compares the
parts' package hashes with the installed code when the results are shown, so a later code change is
noticed without a new merge.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from langedit_mini.editing.registry import closed_form
from langedit_mini.study import experiment
from langedit_mini.study.claims import Claim
from langedit_mini.study.experiment import WRITES_EDITS, after_last_batch, averages, interval, main_table, study_claims
from langedit_mini.study.provenance import finish_record, package_hash, start_record

#: the raw result tables of a run (``StudyResult`` fields), one gzipped CSV each
RAW = ("evaluations", "probes", "transfer", "batches")
#: parameters every part of one study must share (seed and method are what differ)
SHARED = (
    "dataset",
    "edits_per_language",
    "batch_size",
    "languages",
    "schedule",
    "probe_every",
    "probe_limit",
    "tau",
    "alpha",
    "model",
    "facts",
    "evaluate_every",
    "tuning_facts",
    "overrides",
)


def part_name(seed: int, method: str) -> str:
    return f"seed{seed}-{method}"


def write_raw(folder: str | Path, study) -> Path:
    """Write one run's raw result tables (``run_part`` then adds ``part.json``, whose presence marks the
    part finished)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in RAW:
        getattr(study, name).to_csv(folder / f"{name}.csv.gz", index=False)
    return folder


#: what a full-scale run fixes (recorded with each run): the pocket dataset, the model's default null-space
#: cut and regulariser; and the schedule when ``shared`` does not name one (the delta schedule)
FIXED = {"dataset": "pocket", "schedule": "delta", "tau": None, "alpha": None}


def run_parameters(shared: dict) -> dict:
    """The parameters recorded with a run: ``shared`` over ``FIXED`` (a ``schedule`` in ``shared`` wins)."""
    return FIXED | dict(shared)


def scored_claim(study: experiment.StudyResult, evaluate_every: int) -> Claim:
    """``study_claims``'s ``scored`` for a study that scores every edit so far only after every
    ``evaluate_every``-th batch and the last (``run_study(evaluate_every=...)``), and each batch in between
    on its own edits right after its write: the number of scores missing from, or beyond, that plan.

    ``study_claims`` expects every edit so far after every batch, so it counts the in-between batches'
    unscored earlier edits as missing (kept as it is: it is part of the code the committed runs hash).
    """
    if not isinstance(evaluate_every, int) or evaluate_every < 1:
        raise ValueError(f"evaluate_every must be a positive integer, got {evaluate_every!r}")
    reliability = study.evaluations[study.evaluations.metric == "reliability"]
    counts = reliability.groupby(["method", "seed", "after_batch"]).size()
    missing = 0
    for method, seed in reliability[["method", "seed"]].drop_duplicates().itertuples(index=False):
        batches = study.schedules[seed].batches
        for after in range(len(batches)):
            full = after % evaluate_every == evaluate_every - 1 or after == len(batches) - 1
            expected = sum(len(batch) for batch in batches[: after + 1]) if full else len(batches[after])
            missing += abs(int(counts.get((method, seed, after), 0)) - expected)
    return Claim(
        f"every edit so far is scored every {evaluate_every} batches and after the last, each batch in between "
        "right after its write (missing scores)",
        missing,
        0,
    )


def run_part(output: str | Path, seed: int, method: str, shared: dict, setup: tuple, requests, probes) -> dict:
    """One seed and method of the full-scale study into ``output/parts/<name>``; returns its ``part.json``.

    ``setup`` is ``(model, tokenizer, statistics)`` (``editing.defaults.load_pocket_editing``), ``shared``
    the parameters every part shares (``edits_per_language``, ``batch_size``, ``languages``,
    ``probe_every``, ``probe_limit``, and optionally ``model``, ``facts``, ``evaluate_every``,
    ``tuning_facts``, ``schedule``, ``overrides`` (settings over the model's defaults, each reaching the
    methods that have it): see ``experiment.run_study``; ``requests`` must already exclude the tuning facts).
    The run is written into ``<name>.running`` and renamed when it has
    finished, so an interrupted run is never taken for a finished one. A claim of ``study_claims`` that
    does not hold is kept with the run as a finding (at full scale that is a result, not a broken run).
    """
    output = Path(output)
    name = part_name(seed, method)
    final, work = output / "parts" / name, output / "parts" / f"{name}.running"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # results/ is left out of "uncommitted changes": the merge after each run rewrites results/main/,
    # so every later run of the same `make study` would otherwise count as dirty
    record = start_record(exclude=("results",))
    model, tokenizer, statistics = setup
    study = experiment.run_study(
        model,
        tokenizer,
        requests,
        statistics,
        methods=[method],
        seeds=[seed],
        schedule=run_parameters(shared)["schedule"],
        languages=shared["languages"],
        edits_per_language=shared["edits_per_language"],
        batch_size=shared["batch_size"],
        probes=probes,
        probe_every=shared["probe_every"],
        probe_limit=shared["probe_limit"],
        model_name=shared.get("model", "pocket"),
        facts=shared.get("facts", "distinct"),
        evaluate_every=shared.get("evaluate_every", 1),
        overrides=shared.get("overrides"),
        log=None,
    )
    write_raw(work, study)
    checks = study_claims(study)
    evaluate_every = shared.get("evaluate_every", 1)
    if evaluate_every > 1:  # study_claims's count assumes every batch is a full evaluation
        checks["scored"] = scored_claim(study, evaluate_every)
    claims = list(checks.values())
    info = {
        "seed": seed,
        "method": method,
        "claims": [claim.as_dict() for claim in claims],
        "failed_claims": [claim.failure for claim in claims if not claim.holds],
        "parameters": run_parameters(shared),
    } | finish_record(record)
    (work / "part.json").write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return info


def read_raw(folder: str | Path, name: str) -> pd.DataFrame:
    """One raw table (``RAW``) of every finished part under ``folder``, joined; the unedited model's
    probes, which every part measured, are kept once."""
    if name not in RAW:
        raise ValueError(f"unknown raw table {name!r}; the raw tables are {', '.join(RAW)}")
    finished, _ = read_parts(folder)
    if not finished:
        raise FileNotFoundError(f"no finished part under {Path(folder) / 'parts'}")
    frames = []
    for index, (path, _info) in enumerate(finished):
        frame = pd.read_csv(path / f"{name}.csv.gz")
        if name == "probes" and index > 0 and len(frame):
            frame = frame[frame.method != "unedited"]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def read_parts(folder: str | Path) -> tuple[list[tuple[Path, dict]], list[str]]:
    """Finished parts under ``folder/parts`` (path, part.json) sorted by name, and the unfinished folders."""
    parts_folder = Path(folder) / "parts"
    if not parts_folder.is_dir():
        return [], []
    finished, unfinished = [], []
    for path in sorted(p for p in parts_folder.iterdir() if p.is_dir()):
        if (path / "part.json").exists():
            finished.append((path, json.loads((path / "part.json").read_text())))
        else:
            unfinished.append(path.name)
    return finished, unfinished


def merge_parts(folder: str | Path, seeds, methods, languages=None) -> dict:
    """Merge the finished parts of ``folder`` into its tables and ``provenance.json``; returns the latter.

    ``seeds`` and ``methods`` are the planned study: what is planned and not yet on disk is listed as
    missing. Raises ``ValueError`` when the parts disagree on a shared parameter (they would not be one
    study) and ``FileNotFoundError`` when there is no finished part.
    """
    folder = Path(folder)
    finished, unfinished = read_parts(folder)
    if not finished:
        raise FileNotFoundError(f"no finished part under {folder / 'parts'} (unfinished: {unfinished or 'none'})")
    reference_path, reference = finished[0]
    for path, info in finished[1:]:
        for key in SHARED:
            if info["parameters"].get(key) != reference["parameters"].get(key):
                raise ValueError(
                    f"part {path.name} ran with {key}={info['parameters'].get(key)!r} but part "
                    f"{reference_path.name} with {reference['parameters'].get(key)!r}: they are not "
                    "one study; move one of them away or rerun it"
                )
    evaluations = read_raw(folder, "evaluations")
    done = {(info["seed"], info["method"]) for _, info in finished}
    planned = [(seed, method) for seed in seeds for method in methods]
    present = {method for _, method in done}
    methods_present = [m for m in methods if m in present] + sorted(present - set(methods))
    languages = languages or reference["parameters"].get("languages")
    main_table(evaluations, "teacher_forced", methods_present, languages).to_csv(
        folder / "main_table_teacher_forced.csv"
    )
    main_table(evaluations, "exact_match", methods_present, languages).to_csv(folder / "main_table_exact_match.csv")
    table = averages(evaluations, methods_present)
    table["unreached targets"] = experiment.unreached_targets(read_raw(folder, "batches")).reindex(table.index)
    table.to_csv(folder / "averages.csv")
    parameters = {key: reference["parameters"].get(key) for key in SHARED}
    provenance = {
        "parameters": parameters,
        "planned": {"seeds": list(seeds), "methods": list(methods)},
        "parts": [
            {
                "name": path.name,
                "seed": info["seed"],
                "method": info["method"],
                "commit": info["commit"],
                "package_hash": info["package_hash"],
                "wall_s": round(info["wall_s"], 1),
                "finished": info["finished"],
                "machine": info["machine"],
                "failed_claims": info.get("failed_claims", []),
            }
            | ({"note": info["note"]} if "note" in info else {})
            for path, info in finished
        ],
        "missing": [part_name(seed, method) for seed, method in planned if (seed, method) not in done],
        "unfinished": unfinished,
        "wall_s": round(sum(info["wall_s"] for _, info in finished), 1),
    }
    provenance["complete"] = not provenance["missing"]
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    return provenance


def stale_runs(provenance: dict) -> list[str]:
    """The runs made by other editing code than the installed one (checked now, not when merged)."""
    current = package_hash()
    return [part["name"] for part in provenance["parts"] if part["package_hash"] != current]


def describe(provenance: dict) -> str:
    """A few lines for a chapter: how much of the planned study is there, and whether it is current."""
    planned = provenance["planned"]
    total = len(planned["seeds"]) * len(planned["methods"])
    seeds_done = sorted({p["seed"] for p in provenance["parts"]})
    extra = [
        p["name"]
        for p in provenance["parts"]
        if p["seed"] not in planned["seeds"] or p["method"] not in planned["methods"]
    ]
    lines = [
        f"full-scale study: {total - len(provenance['missing'])} of {total} planned runs (seed x method) finished"
        + (f" (and {len(extra)} not planned: {', '.join(extra)})" if extra else "")
        + ", "
        f"seeds {seeds_done} of {planned['seeds']}; {provenance['wall_s'] / 3600:.1f} h of computing in all",
        f"made at commit(s) {', '.join(sorted({p['commit'] for p in provenance['parts']}))}",
    ]
    for part in provenance["parts"]:
        for claim in part.get("failed_claims", []):  # a finding at full scale, worded unlike a failing chapter
            lines.append(
                f"{part['name']}: at full scale this check of the chapter did not hold, kept as a finding: "
                f"{claim.removeprefix('claim failed: ')}"
            )
        if part.get("note"):
            lines.append(f"{part['name']}: note: {part['note']}")
    if provenance["missing"]:
        lines.append(f"INCOMPLETE: not run yet: {', '.join(provenance['missing'])} (`make study` runs them)")
    if provenance["unfinished"]:
        lines.append(f"interrupted, not merged: {', '.join(provenance['unfinished'])}")
    stale = stale_runs(provenance)
    if stale:
        lines.append(
            f"WARNING: the editing code has changed since these full-scale results were made "
            f"(runs {', '.join(stale)}); rerun them with `make study STUDY_ARGS=--rerun-stale`."
        )
    return "\n".join(lines)


def seed_scores(evaluations: pd.DataFrame, metric: str, value: str = "teacher_forced") -> pd.DataFrame:
    """Rows: seeds; columns: methods; cells: the mean score of every edit after that run's last batch."""
    final = after_last_batch(evaluations)
    final = final[final.metric == metric]
    if final.empty:
        raise ValueError(f"no {metric!r} scores in the evaluations (metrics there: {sorted(set(evaluations.metric))})")
    return final.groupby(["seed", "method"])[value].mean().unstack("method")


def _join(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _has_run(scores: pd.DataFrame, method: str) -> bool:
    """Whether ``scores`` (``seed_scores``) holds a finished run of ``method``."""
    return method in scores.columns and not scores[method].isna().all()


def compare_methods(scores: pd.DataFrame, methods, baselines) -> dict[str, str]:
    """Whether ``methods`` scored above ``baselines`` in ``scores`` (``seed_scores``), seed by seed.

    A pair is "above" (or "below") when the method scored higher (lower) in every seed both ran, "mixed"
    otherwise. Returns the verdict on "the methods score higher": "reproduced" (every pair above), "not
    reproduced" (some pair below in every seed), "not separated" (only mixed and above pairs) or "not judged"
    (a method has no run); a sentence that says where each method stood; and the seeds compared.
    """
    missing = [m for m in list(methods) + list(baselines) if not _has_run(scores, m)]
    if missing:
        return {"verdict": "not judged", "standing": f"no finished run of {_join(missing)}", "seeds": "none"}
    standings, compared = {}, {}
    for method in methods:
        for baseline in baselines:
            both = scores[[method, baseline]].dropna()
            compared[method, baseline] = sorted(int(seed) for seed in both.index)
            difference = both[method] - both[baseline]
            standings[method, baseline] = (
                "above" if (difference > 0).all() else "below" if (difference < 0).all() else "mixed"
            )
    values = set(standings.values())
    verdict = "reproduced" if values == {"above"} else "not reproduced" if "below" in values else "not separated"
    uniform = len({tuple(seeds) for seeds in compared.values()}) == 1

    def seeds_phrase(seeds):
        return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {_join(map(str, seeds))}"

    parts = []
    for method in methods:
        groups = {}
        for baseline in baselines:  # name the seeds per baseline when not every pair ran the same ones
            name = baseline if uniform else f"{baseline} ({seeds_phrase(compared[method, baseline])})"
            groups.setdefault(standings[method, baseline], []).append(name)
        words = [
            f"{standing} {_join(names)}" if standing != "mixed" else f"neither above nor below {_join(names)}"
            for standing, names in groups.items()
        ]
        parts.append(f"{method} scored {_join(words)}")
    seeds = sorted({seed for pair in compared.values() for seed in pair})
    if uniform:
        where = f" (in each of seeds {_join(map(str, seeds))})" if len(seeds) > 1 else f" (one seed: {seeds[0]})"
    else:
        where = ""
    return {"verdict": verdict, "standing": "; ".join(parts) + where, "seeds": _join(map(str, seeds))}


def mean_and_interval(scores: pd.DataFrame, method: str) -> str:
    """ "0.32" for one seed, "0.32 ± 0.04" (95% t interval over seeds) for several, "not run" for none."""
    if not _has_run(scores, method):
        return "not run"
    mean, half = interval(scores[method].dropna())
    return f"{mean:.2f}" + ("" if math.isnan(half) else f" ± {half:.2f}")


def score_range(scores: pd.DataFrame, methods) -> str:
    """ "from 0.32 (LangEdit-exact) to 0.61 (MEMIT)": the lowest and highest mean over seeds among ``methods``
    in ``scores`` (``seed_scores``); methods without a finished run are left out, "not run" if none has one."""
    means = pd.Series({m: scores[m].mean() for m in methods if _has_run(scores, m)}, dtype=float)
    if means.empty:
        return "not run"
    low, high = means.idxmin(), means.idxmax()
    if len(means) == 1:
        return f"{means[low]:.2f} ({low}, the only one run)"
    return f"from {means[low]:.2f} ({low}) to {means[high]:.2f} ({high})"


#: the LangEdit forms judged at full scale, and the baselines each claim compares them with (reliability:
#: the closed-form baselines; locality: FT too)
LANGEDIT_FORMS = ("LangEdit-exact", "LangEdit-published")
BASELINES = {"rel": ("MEMIT", "AlphaEdit"), "loc": ("MEMIT", "AlphaEdit", "FT")}
METRICS = {"rel": "reliability", "loc": "locality"}


def glue_key(method: str) -> str:
    """A method's name as it appears in a glue key (``LangEdit-exact`` -> ``LangEdit_exact``)."""
    return method.replace("-", "_")


def full_scale_summary(folder: str | Path, methods) -> dict:
    """What the sequential chapter and the report say about the full-scale study under ``folder``.

    Returns ``provenance`` (None when there is no study), ``comparisons`` (per short metric name,
    ``compare_methods``' verdict and standing) and ``glue``: the status line ("15 of 15 runs, 3 of 3
    seeds", and ", code changed since" when stale), each of ``methods``' mean and interval over seeds
    (``full_rel_<method>``, ``full_loc_<method>``), the closed-form methods' range of reliability, the
    verdicts and standings, and the methods whose runs did not write their edits (mean reliability after
    the last batch below ``experiment.WRITES_EDITS``, with how many of their runs).
    """
    folder, methods = Path(folder), list(methods)
    glued = {"full_status": "not run", "full_closed_range": "not run", "full_writes_failed": "no method"}
    glued |= {f"full_{short}_{glue_key(m)}": "not run" for short in METRICS for m in methods}
    comparisons = {short: {"verdict": "not judged", "standing": "no full-scale results"} for short in METRICS}
    for short, comparison in comparisons.items():
        glued |= {f"full_{short}_verdict": comparison["verdict"], f"full_{short}_standing": comparison["standing"]}
    summary = {"provenance": None, "comparisons": comparisons, "glue": glued}
    if not (folder / "provenance.json").exists():
        return summary
    provenance = json.loads((folder / "provenance.json").read_text())
    planned, parts = provenance["planned"], provenance["parts"]
    glued["full_status"] = (
        f"{len(parts)} of {len(planned['seeds']) * len(planned['methods'])} runs, "
        f"{len({part['seed'] for part in parts})} of {len(planned['seeds'])} seeds"
        + (", code changed since" if stale_runs(provenance) else "")
    )
    evaluations = read_raw(folder, "evaluations")
    scores = {short: seed_scores(evaluations, metric) for short, metric in METRICS.items()}
    for short in METRICS:
        for method in methods:
            glued[f"full_{short}_{glue_key(method)}"] = mean_and_interval(scores[short], method)
        comparisons[short] = compare_methods(scores[short], list(LANGEDIT_FORMS), list(BASELINES[short]))
        glued[f"full_{short}_verdict"] = comparisons[short]["verdict"]
        glued[f"full_{short}_standing"] = comparisons[short]["standing"]
    glued["full_closed_range"] = score_range(scores["rel"], closed_form(methods))
    reliability = scores["rel"]
    failed = [p["method"] for p in parts if reliability.loc[p["seed"], p["method"]] < WRITES_EDITS]
    runs = {m: sum(p["method"] == m for p in parts) for m in failed}
    glued["full_writes_failed"] = (
        ", ".join(f"{m} ({failed.count(m)} of {runs[m]} runs)" for m in dict.fromkeys(failed)) or "no method"
    )
    summary["provenance"] = provenance
    return summary


#: the kinds of key ``scripts/diagnose_forgetting.py`` measures, in the order its tables show them
DIAGNOSIS_KINDS = ("committed key", "bare subject key", "other prompt keys", "answer-position keys")
#: its two preserved-knowledge corpora: the book's statements, and those plus question prompts
DIAGNOSIS_COVARIANCES = ("statements", "statements+questions")
_DIAGNOSIS_FIELDS = ("rows", "parameters", "commit", "package_hash", "finished", "wall_s")
_DIAGNOSIS_COLUMNS = (
    "covariance",
    "method",
    "key",
    "change median",
    "null share median",
    "reliability before",
    "reliability after",
    "batch 2 reliability",
)


def read_diagnosis(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """The committed result of ``scripts/diagnose_forgetting.py``: its rows and its provenance.

    Raises ValueError naming what is missing when the file is not such a result."""
    path = Path(path)
    data = json.loads(path.read_text())
    missing = [field for field in _DIAGNOSIS_FIELDS if field not in data]
    if missing:
        raise ValueError(f"{path} is not a result of scripts/diagnose_forgetting.py: it lacks {missing}")
    rows = pd.DataFrame(data["rows"])
    missing = [column for column in _DIAGNOSIS_COLUMNS if column not in rows.columns]
    if missing or rows.empty:
        raise ValueError(f"{path}: its rows lack the columns {missing or list(_DIAGNOSIS_COLUMNS)}")
    unknown = sorted(set(rows["key"]) - set(DIAGNOSIS_KINDS))
    if unknown:
        raise ValueError(f"{path}: unknown kinds of key {unknown}; expected {list(DIAGNOSIS_KINDS)}")
    provenance = {field: value for field, value in data.items() if field != "rows"}
    provenance["stale"] = data["package_hash"] != package_hash()
    return rows, provenance


def diagnosis_tables(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Three tables indexed by (covariance, method): the later batch's change at each kind of key relative
    to the edit's own change ("change"), each kind's share of norm in the null space ("null share"), and
    reliabilities ("reliability")."""
    index = ["covariance", "method"]
    kinds = [kind for kind in DIAGNOSIS_KINDS if kind in set(rows["key"])]
    change = rows.pivot_table(index=index, columns="key", values="change median", sort=False)[kinds]
    share = rows.dropna(subset=["null share median"])  # MEMIT has no null space
    share = (
        share.pivot_table(index=index, columns="key", values="null share median", sort=False).reindex(columns=kinds)
        if len(share)
        else pd.DataFrame(columns=kinds)
    )
    reliability = rows.drop_duplicates(index).set_index(index)[
        ["reliability before", "reliability after", "batch 2 reliability"]
    ]
    return {"change": change, "null share": share, "reliability": reliability}


#: the glued numbers of the diagnosis: (glue name, table, covariance, method, column, format)
_DIAGNOSIS_NUMBERS = (
    ("diag_exact_committed", "change", "statements", "LangEdit-exact", "committed key", ".1e"),
    ("diag_exact_bare", "change", "statements", "LangEdit-exact", "bare subject key", ".3f"),
    ("diag_exact_prompt", "change", "statements", "LangEdit-exact", "other prompt keys", ".3f"),
    ("diag_exact_answer", "change", "statements", "LangEdit-exact", "answer-position keys", ".3f"),
    ("diag_memit_prompt", "change", "statements", "MEMIT", "other prompt keys", ".3f"),
    ("diag_memit_answer", "change", "statements", "MEMIT", "answer-position keys", ".3f"),
    ("diag_alpha_share", "null share", "statements", "AlphaEdit", "committed key", ".2f"),
    ("diag_share_statements", "null share", "statements", "LangEdit-exact", "other prompt keys", ".2f"),
    ("diag_share_questions", "null share", "statements+questions", "LangEdit-exact", "other prompt keys", ".2f"),
    ("diag_before", "reliability", "statements", "LangEdit-exact", "reliability before", ".3f"),
    ("diag_after_statements", "reliability", "statements", "LangEdit-exact", "reliability after", ".3f"),
    ("diag_after_questions", "reliability", "statements+questions", "LangEdit-exact", "reliability after", ".3f"),
    ("diag_memit_before", "reliability", "statements", "MEMIT", "reliability before", ".3f"),
    ("diag_memit_after", "reliability", "statements", "MEMIT", "reliability after", ".3f"),
    ("diag_answer_statements", "change", "statements", "LangEdit-exact", "answer-position keys", ".3f"),
    ("diag_answer_questions", "change", "statements+questions", "LangEdit-exact", "answer-position keys", ".3f"),
    ("diag_written_statements", "reliability", "statements", "LangEdit-exact", "batch 2 reliability", ".3f"),
    ("diag_written_questions", "reliability", "statements+questions", "LangEdit-exact", "batch 2 reliability", ".3f"),
)
DIAGNOSIS_GLUE = ("diag_status", "diag_verdict", "diag_questions_verdict") + tuple(row[0] for row in _DIAGNOSIS_NUMBERS)


def _table_value(table: pd.DataFrame, covariance: str, method: str, column: str) -> float | None:
    try:
        return float(table.loc[(covariance, method), column])
    except KeyError:
        return None


def diagnosis_findings(path: str | Path) -> dict:
    """What the ablations chapter and the report say about the forgetting diagnosis at ``path``.

    Returns ``tables`` (``diagnosis_tables``; None without a result), ``provenance``, and ``glue``: the
    status line, every number the prose quotes ("not measured" where the result lacks it) and two verdict
    sentences computed from the numbers: where the guarantee holds and where forgetting enters, and whether
    question prompts in the preserved corpus reduce the first batch's forgetting.
    """
    glued = dict.fromkeys(DIAGNOSIS_GLUE, "not measured")
    path = Path(path)
    if not path.exists():
        return {"tables": None, "provenance": None, "glue": glued}
    rows, provenance = read_diagnosis(path)
    settings = provenance["parameters"]
    glued["diag_status"] = (
        f"scripts/diagnose_forgetting.py at commit {provenance['commit']} "
        f"({provenance['finished']}, {provenance['wall_s'] / 60:.0f} min): "
        f"{settings['edits_per_batch']} edits per batch, batches {' then '.join(settings['batches'])}, "
        f"seed {settings['seed']}"
    )
    tables = diagnosis_tables(rows)
    for name, table, covariance, method, column, form in _DIAGNOSIS_NUMBERS:
        value = _table_value(tables[table], covariance, method, column)
        glued[name] = "not measured" if value is None else format(value, form)
    change, reliability = tables["change"], tables["reliability"]
    exact_open = _table_value(change, "statements", "LangEdit-exact", "other prompt keys")
    memit_open = _table_value(change, "statements", "MEMIT", "other prompt keys")
    exact_closed = _table_value(change, "statements", "LangEdit-exact", "committed key")
    if None in (exact_open, memit_open, exact_closed):
        verdict = "LangEdit-exact and MEMIT were not both measured with the statements corpus"
    elif exact_closed < 1e-6 and exact_open >= 0.5 * memit_open:
        verdict = (
            "the guarantee holds where it is stated (the committed keys do not move), but the keys that "
            "scoring reads at the prompt's other tokens move about as much as under MEMIT, or more"
        )
    elif exact_closed < 1e-6:
        verdict = (
            "the guarantee holds where it is stated, and the prompt's other keys move less than under MEMIT: "
            "forgetting enters elsewhere"
        )
    else:
        verdict = "the committed keys themselves moved: the guarantee did not hold in this run"
    glued["diag_verdict"] = verdict
    after = [
        _table_value(reliability, corpus, "LangEdit-exact", "reliability after") for corpus in DIAGNOSIS_COVARIANCES
    ]
    if None in after:
        questions = "LangEdit-exact was not measured with both corpora"
    elif after[1] - after[0] < 0.02:
        questions = (
            "so the question prompts, though they shield the prompt's keys better, do not reduce the "
            "first batch's forgetting here: the answer positions' keys, which they barely shield, "
            "move as much as before"
        )
    else:
        questions = (
            f"so the question prompts reduce the first batch's forgetting by {after[1] - after[0]:.3f}: "
            "part of the forgetting enters through the prompt's keys"
        )
    glued["diag_questions_verdict"] = questions
    return {"tables": tables, "provenance": provenance, "glue": glued}
