"""The full-scale study on disk: one folder per (seed, method) run, and their merge.

At full scale one run of the sequential chapter (one seed, one method, 600 edits) takes a quarter of
an hour or more on 2 cores, and the whole study (3 seeds x 5 methods) several hours. So ``make study``
runs it as *parts*: each (seed, method) pair is one papermill execution of the chapter into
``results/main/parts/seed<s>-<method>/`` (executed notebook, raw results as CSV, ``part.json`` with
commit, package hash, parameters, machine and wall time). A part already on disk is not run again, so
the study can be spread over several sessions; a folder without ``part.json`` is an interrupted part
and is reported, never merged.

``merge_parts`` combines the finished parts into the tables at ``results/main/`` and a
``provenance.json`` that lists every part with its provenance (including its package hash) and the
planned parts still missing; ``stale_runs`` compares those hashes with the installed code when the
results are shown, so a later code change is noticed without a new merge.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from langedit_mini.study.experiment import after_last_batch, averages, interval, main_table
from langedit_mini.study.provenance import package_hash

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
)


def part_name(seed: int, method: str) -> str:
    return f"seed{seed}-{method}"


def write_raw(folder: str | Path, study) -> Path:
    """Write one run's raw result tables (the chapter does this; ``run_study.py`` then adds ``part.json``,
    whose presence marks the part finished)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in RAW:
        getattr(study, name).to_csv(folder / f"{name}.csv.gz", index=False)
    return folder


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
    frames = {name: [] for name in RAW}
    for index, (path, _info) in enumerate(finished):
        for name in RAW:
            frame = pd.read_csv(path / f"{name}.csv.gz")
            if name == "probes" and index > 0 and len(frame):
                frame = frame[frame.method != "unedited"]  # every part probes the same unedited model first
            frames[name].append(frame)
    merged = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
    done = {(info["seed"], info["method"]) for _, info in finished}
    planned = [(seed, method) for seed in seeds for method in methods]
    present = {method for _, method in done}
    methods_present = [m for m in methods if m in present] + sorted(present - set(methods))
    languages = languages or reference["parameters"].get("languages")
    main_table(merged["evaluations"], "teacher_forced", methods_present, languages).to_csv(
        folder / "main_table_teacher_forced.csv"
    )
    main_table(merged["evaluations"], "exact_match", methods_present, languages).to_csv(
        folder / "main_table_exact_match.csv"
    )
    averages(merged["evaluations"], methods_present).to_csv(folder / "averages.csv")
    for name, frame in merged.items():
        frame.to_csv(folder / f"{name}.csv.gz", index=False)
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
