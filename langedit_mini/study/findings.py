"""What the chapters and the report say about committed results: the full-scale study (the sequential
chapter's last section) and the forgetting diagnosis (the ablations chapter).

Each reader returns the tables a chapter shows and ``glue``, every value its prose quotes, computed from the
files on disk (``store``) in the same build; a result that is missing reads "not run" / "not measured", and a
result made by code other than today's (``provenance.is_current``) says so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from langedit_mini.editing.registry import closed_form
from langedit_mini.study import store
from langedit_mini.study.diagnosis import DIAGNOSIS_COVARIANCES, DIAGNOSIS_KINDS
from langedit_mini.study.intervals import mean_cell
from langedit_mini.study.provenance import is_current
from langedit_mini.study.readings import seed_scores
from langedit_mini.study.verdicts import CLOSED_FORM_BASELINES, LANGEDIT_FORMS, WRITES_EDITS, paired_verdict

# --- a study's provenance ----------------------------------------------------------------------------------


def stale_runs(provenance: dict) -> list[str]:
    """The runs made by code that is neither today's nor verified equivalent to it (checked now)."""
    return [part["name"] for part in provenance["parts"] if not is_current(part["package_hash"])]


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


# --- the full-scale study ----------------------------------------------------------------------------------


def glue_key(method: str) -> str:
    """A method's name as it appears in a glue key (``LangEdit-exact`` -> ``LangEdit_exact``)."""
    return method.replace("-", "_")


def _has_run(scores: pd.DataFrame, method: str) -> bool:
    return method in scores.columns and not scores[method].isna().all()


def score_range(scores: pd.DataFrame, methods) -> str:
    """ "from 0.32 (LangEdit-exact) to 0.61 (MEMIT)": the lowest and highest mean over seeds among ``methods``
    in ``scores`` (``readings.seed_scores``); methods without a finished run are left out, "not run" if none."""
    means = pd.Series({m: scores[m].mean() for m in methods if _has_run(scores, m)}, dtype=float)
    if means.empty:
        return "not run"
    low, high = means.idxmin(), means.idxmax()
    if len(means) == 1:
        return f"{means[low]:.2f} ({low}, the only one run)"
    return f"from {means[low]:.2f} ({low}) to {means[high]:.2f} ({high})"


#: the claims read from the full-scale study, and the baselines each compares the LangEdit forms with
#: (reliability: the closed-form baselines; locality: FT too)
FULL_SCALE_CLAIMS = {
    "rel": ("reliability", CLOSED_FORM_BASELINES),
    "loc": ("locality", (*CLOSED_FORM_BASELINES, "FT")),
}


def full_scale_summary(folder: str | Path, methods) -> dict:
    """What the sequential chapter and the report say about the full-scale study under ``folder``.

    Returns ``provenance`` (None when there is no study), ``comparisons`` (per claim, ``verdicts.paired_verdict``
    of the LangEdit forms against its baselines) and ``glue``: the status line ("15 of 15 runs, 3 of 3 seeds",
    and ", code changed since" when stale), each of ``methods``' mean and interval over seeds
    (``full_rel_<method>``, ``full_loc_<method>``), the closed-form methods' range of reliability, the verdicts
    and standings, and the methods whose runs did not write their edits (mean reliability after the last batch
    below ``verdicts.WRITES_EDITS``, with how many of their runs).
    """
    folder, methods = Path(folder), list(methods)
    glued = {"full_status": "not run", "full_closed_range": "not run", "full_writes_failed": "no method"}
    glued |= {f"full_{short}_{glue_key(m)}": "not run" for short in FULL_SCALE_CLAIMS for m in methods}
    comparisons = {short: {"verdict": "not judged", "standing": "no full-scale results"} for short in FULL_SCALE_CLAIMS}
    for short, comparison in comparisons.items():
        glued |= {f"full_{short}_verdict": comparison["verdict"], f"full_{short}_standing": comparison["standing"]}
    summary = {"provenance": None, "comparisons": comparisons, "glue": glued}
    provenance = store.read_provenance(folder)
    if provenance is None:
        return summary
    planned, parts = provenance["planned"], provenance["parts"]
    glued["full_status"] = (
        f"{len(parts)} of {len(planned['seeds']) * len(planned['methods'])} runs, "
        f"{len({part['seed'] for part in parts})} of {len(planned['seeds'])} seeds"
        + (", code changed since" if stale_runs(provenance) else "")
    )
    evaluations = store.read_raw(folder, "evaluations")
    finals = {short: seed_scores(evaluations, metric) for short, (metric, _) in FULL_SCALE_CLAIMS.items()}
    for short, (metric, baselines) in FULL_SCALE_CLAIMS.items():
        for method in methods:
            scores = finals[short][method].dropna() if _has_run(finals[short], method) else []
            glued[f"full_{short}_{glue_key(method)}"] = mean_cell(scores, 2)
        long = finals[short].reset_index().melt(id_vars="seed", var_name="method", value_name="teacher_forced")
        comparisons[short] = paired_verdict(long.dropna().assign(metric=metric), metric, LANGEDIT_FORMS, baselines)
        glued[f"full_{short}_verdict"] = comparisons[short]["verdict"]
        glued[f"full_{short}_standing"] = comparisons[short]["standing"] or comparisons[short]["verdict"]
    glued["full_closed_range"] = score_range(finals["rel"], closed_form(methods))
    reliability = finals["rel"]
    failed = [p["method"] for p in parts if reliability.loc[p["seed"], p["method"]] < WRITES_EDITS]
    runs = {m: sum(p["method"] == m for p in parts) for m in failed}
    glued["full_writes_failed"] = (
        ", ".join(f"{m} ({failed.count(m)} of {runs[m]} runs)" for m in dict.fromkeys(failed)) or "no method"
    )
    summary["provenance"] = provenance
    return summary


# --- the forgetting diagnosis ------------------------------------------------------------------------------

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
    """The committed forgetting diagnosis (``diagnosis.diagnose_forgetting``): its rows and its provenance,
    with ``stale`` (made by code neither today's nor verified equivalent). Raises ValueError naming what is
    missing when the file is not such a result."""
    rows, provenance = store.read_diagnosis(path)
    missing = [column for column in _DIAGNOSIS_COLUMNS if column not in rows.columns]
    if missing or rows.empty:
        raise ValueError(f"{path}: its rows lack the columns {missing or list(_DIAGNOSIS_COLUMNS)}")
    unknown = sorted(set(rows["key"]) - set(DIAGNOSIS_KINDS))
    if unknown:
        raise ValueError(f"{path}: unknown kinds of key {unknown}; expected {list(DIAGNOSIS_KINDS)}")
    provenance["stale"] = not is_current(provenance["package_hash"])
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


def _guarantee_verdict(change: pd.DataFrame) -> str:
    """Where the guarantee holds and where forgetting enters, from the change at each kind of key."""
    exact_open = _table_value(change, "statements", "LangEdit-exact", "other prompt keys")
    memit_open = _table_value(change, "statements", "MEMIT", "other prompt keys")
    exact_closed = _table_value(change, "statements", "LangEdit-exact", "committed key")
    if None in (exact_open, memit_open, exact_closed):
        return "LangEdit-exact and MEMIT were not both measured with the statements corpus"
    if exact_closed < 1e-6 and exact_open >= 0.5 * memit_open:
        return (
            "the guarantee holds where it is stated (the committed keys do not move), but the keys that "
            "scoring reads at the prompt's other tokens move about as much as under MEMIT, or more"
        )
    if exact_closed < 1e-6:
        return (
            "the guarantee holds where it is stated, and the prompt's other keys move less than under MEMIT: "
            "forgetting enters elsewhere"
        )
    return "the committed keys themselves moved: the guarantee did not hold in this run"


def _questions_verdict(reliability: pd.DataFrame) -> str:
    """Whether question prompts in the preserved corpus reduce the first batch's forgetting."""
    after = [
        _table_value(reliability, corpus, "LangEdit-exact", "reliability after") for corpus in DIAGNOSIS_COVARIANCES
    ]
    if None in after:
        return "LangEdit-exact was not measured with both corpora"
    if after[1] - after[0] < 0.02:
        return (
            "so the question prompts, though they shield the prompt's keys better, do not reduce the "
            "first batch's forgetting here: the answer positions' keys, which they barely shield, "
            "move as much as before"
        )
    return (
        f"so the question prompts reduce the first batch's forgetting by {after[1] - after[0]:.3f}: "
        "part of the forgetting enters through the prompt's keys"
    )


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
    glued["diag_verdict"] = _guarantee_verdict(tables["change"])
    glued["diag_questions_verdict"] = _questions_verdict(tables["reliability"])
    return {"tables": tables, "provenance": provenance, "glue": glued}
