"""Running a schedule through an editing session: evaluation after every batch, forgetting, resuming.

``run_schedule(session, schedule)`` applies the batches in order (edits accumulate, reference section 5)
and, after every ``evaluate_every``-th batch and after the last, scores every edit made so far
(``evaluation.evaluate_requests``). The result is one tidy DataFrame: a row per (time, request,
metric), where ``after_batch`` is the time and ``batch`` is when the request was edited. With
``written=True`` every batch in between is scored too, its own requests only, right after its
write (rows with ``batch == after_batch``): what was *written*, which with the final scores splits a
method's losses into edits never written and edits written then forgotten (``write_forget``).

With ``record_dir`` every batch's record and evaluation are written as soon as they exist
(safetensors and CSV, each file written under a temporary name and then renamed, so a killed run
never leaves half a file), and a later call with the same directory and the same schedule and
configuration resumes: the saved records are replayed into the fresh session (exactly: the same
float32 additions in the same order) and only the missing batches are edited. The end state, weights
and metrics, is the same as an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from langedit_mini.core.validation import CapacityError
from langedit_mini.data.schedules import Schedule
from langedit_mini.editing.session import BatchRecord, EditingSession
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference


def _schedule_signature(session: EditingSession, schedule: Schedule) -> dict:
    ids = [[f"{r.fact_id}/{r.lang}" for r in batch] for batch in schedule.batches]
    digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]
    return {
        "config": json.loads(json.dumps(asdict(session.config), default=str)),
        "schedule": schedule.name,
        "languages": list(schedule.languages),
        "seed": schedule.seed,
        "batches": len(ids),
        "requests": digest,
    }


def _write_atomic(path: Path, write) -> None:
    temporary = path.with_name(path.name + ".partial")
    write(temporary)
    os.replace(temporary, path)


def _resume(session: EditingSession, directory: Path, signature: dict) -> tuple[int, list[pd.DataFrame]]:
    """Replay the saved batches of ``directory`` into ``session``; returns how many, and their evaluations."""
    manifest = directory / "manifest.json"
    if not manifest.exists():
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(manifest, lambda p: p.write_text(json.dumps(signature, indent=1)))
        return 0, []
    saved = json.loads(manifest.read_text())
    if saved != signature:
        changed = sorted(k for k in set(saved) | set(signature) if saved.get(k) != signature.get(k))
        raise ValueError(
            f"{directory} holds a run with a different {', '.join(changed)}; "
            "resume with the same configuration and schedule, or use another record_dir"
        )
    if session.records:
        raise ValueError("resuming needs a fresh session (this one already holds batches)")
    records, frames = [], []
    while (directory / f"batch_{len(records):03d}.safetensors").exists():
        records.append(BatchRecord.load(directory / f"batch_{len(records):03d}.safetensors"))
    for index in range(len(records)):
        evaluation = directory / f"evaluation_{index:03d}.csv"
        if evaluation.exists():
            frames.append(pd.read_csv(evaluation, keep_default_na=False))
    session.restore(records)
    return len(records), frames


def run_schedule(
    session: EditingSession,
    schedule: Schedule,
    *,
    reference: dict | None = None,
    evaluate_every: int = 1,
    record_dir: str | Path | None = None,
    progress=None,
    stop_after: int | None = None,
    written: bool = False,
    refused: str = "raise",
) -> pd.DataFrame:
    """Edit ``schedule`` batch by batch; the evaluations of every edit so far after each evaluated batch.

    ``reference``: the unedited model's locality answers, ``{(fact_id, lang): answer}`` (computed
    from ``session``'s model before the first batch when not given). ``stop_after``: edit at most
    this many batches in this call (to split a long run; with ``record_dir`` the next call goes on).
    ``progress``: called with (batch index, record, seconds) after every batch; ``record`` is None
    for a refused batch. ``refused``: what a batch the method refuses for lack of null space
    (``CapacityError``, raised before anything is written) does to the run: "raise" (stop there) or
    "continue" (nothing of it is written, its edits are still scored with the rest, as edits that were
    asked for and not made, and the schedule goes on: a study of how many edits fit needs the runs
    that reach the limit to finish; with ``record_dir``, a resumed run redoes the batches from the
    first refused one, which is refused again).
    """
    if refused not in ("raise", "continue"):
        raise ValueError(f"refused must be 'raise' or 'continue', got {refused!r}")
    if not isinstance(evaluate_every, int) or evaluate_every < 1:
        raise ValueError(f"evaluate_every must be a positive integer, got {evaluate_every!r}")
    requests = schedule.requests
    if reference is None:
        if session.records:
            raise ValueError(
                "give reference= (the unedited model's locality answers) for a session that already holds batches"
            )
        answers = locality_reference(session.model, session.tokenizer, requests)
        reference = {(r.fact_id, r.lang): a for r, a in zip(requests, answers)}
    done, frames = 0, []
    directory = Path(record_dir) if record_dir is not None else None
    if directory is not None:
        done, frames = _resume(session, directory, _schedule_signature(session, schedule))
    last = len(schedule.batches) - 1
    end = len(schedule.batches) if stop_after is None else min(len(schedule.batches), done + stop_after)
    for index in range(done, end):
        start = time.perf_counter()
        try:
            record = session.apply(schedule.batches[index])
        except CapacityError:
            if refused == "raise":
                raise
            record = None  # refused whole, before anything was written
        if directory is not None and record is not None:
            _write_atomic(directory / f"batch_{index:03d}.safetensors", record.save)
        full = index % evaluate_every == evaluate_every - 1 or index == last
        if full or written:
            scope = range(index + 1) if full else [index]
            edited = [r for b in scope for r in schedule.batches[b]]
            owners = [b for b in scope for _ in schedule.batches[b]]
            frame = evaluate_requests(
                session.model, session.tokenizer, edited, [reference.get((r.fact_id, r.lang)) for r in edited]
            )
            origin = {(r.fact_id, r.lang): b for r, b in zip(edited, owners)}
            frame.insert(0, "batch", [origin[(f, lang)] for f, lang in zip(frame.fact_id, frame.lang)])
            frame.insert(0, "after_batch", index)
            frames.append(frame)
            if directory is not None:
                _write_atomic(
                    directory / f"evaluation_{index:03d}.csv", lambda p, frame=frame: frame.to_csv(p, index=False)
                )
        if progress is not None:
            progress(index, record, time.perf_counter() - start)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def forgetting_matrix(
    results: pd.DataFrame, metric: str = "reliability", value: str = "teacher_forced"
) -> pd.DataFrame:
    """Rows: the batch an edit was made in; columns: after which batch it was scored; cells: mean ``value``."""
    if value not in ("teacher_forced", "exact_match"):
        raise ValueError(f"value must be 'teacher_forced' or 'exact_match', got {value!r}")
    part = results[results.metric == metric]
    if part.empty:
        raise ValueError(f"no rows for metric {metric!r}; present: {sorted(results.metric.unique())}")
    return part.pivot_table(index="batch", columns="after_batch", values=value, aggfunc="mean")


def language_interference(
    results: pd.DataFrame, schedule: Schedule, metric: str = "reliability", value: str = "teacher_forced"
) -> pd.DataFrame:
    """Change in the accuracy of language A's edits across each later batch of language B (rows A, columns B).

    For every evaluated pair of consecutive times (t-1, t) where batch t is in one language B, the
    drop of A's earlier edits is ``acc(t) - acc(t-1)``; averaged over such steps. Negative = B's
    edits erased some of A's. Needs ``evaluate_every=1``.
    """
    languages = schedule.batch_languages
    part = results[results.metric == metric]
    by_time = part.groupby(["after_batch", "lang", "batch"])[value].mean().reset_index()
    rows = []
    times = sorted(part.after_batch.unique())
    for previous, current in zip(times, times[1:]):
        if current != previous + 1 or languages[current] == "mixed":
            continue
        before = by_time[(by_time.after_batch == previous)].set_index(["lang", "batch"])[value]
        after = by_time[(by_time.after_batch == current)].set_index(["lang", "batch"])[value]
        change = (after.reindex(before.index) - before).groupby(level="lang").mean()
        for language, delta in change.items():
            rows.append({"edited language": language, "later batch language": languages[current], "change": delta})
    if not rows:
        raise ValueError("no consecutive single-language batches were evaluated (use evaluate_every=1 and delta)")
    frame = pd.DataFrame(rows)
    return frame.pivot_table(index="edited language", columns="later batch language", values="change", aggfunc="mean")


def write_forget(results: pd.DataFrame, metric: str = "reliability") -> pd.DataFrame:
    """Each edit scored right after its own batch was written, and after the last batch.

    ``results``: ``run_schedule`` rows (every batch scored right after its write: ``evaluate_every=1``
    or ``written=True``), optionally with ``method`` and ``seed`` columns. One row per run: ``written``
    and ``final`` (mean teacher-forced score), ``lost`` (written - final), and by greedy exact match the
    shares of edits ``kept`` (right when written and at the end), ``forgotten`` (right when written,
    wrong at the end), ``never_written`` (wrong right after their write; ``late`` those of them right
    at the end, written by a later batch).
    """
    part = results[results.metric == metric]
    if part.empty:
        raise ValueError(f"no rows for metric {metric!r}; present: {sorted(results.metric.unique())}")
    keys = [c for c in ("method", "seed") if c in part.columns]
    rows = []
    for key, run in part.groupby(keys) if keys else [((), part)]:
        identity = ["fact_id", "lang"]
        at_write = run[run.after_batch == run.batch].set_index(identity)
        last = run[run.after_batch == run.after_batch.max()].set_index(identity)
        missing = len(last.index.difference(at_write.index))
        if missing:
            raise ValueError(
                f"{missing} edits were not scored right after their write: run with evaluate_every=1 or written=True"
            )
        at_write = at_write.reindex(last.index)
        right_then, right_now = at_write.exact_match.astype(bool), last.exact_match.astype(bool)
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row |= {
            "edits": len(last),
            "written": float(at_write.teacher_forced.mean()),
            "final": float(last.teacher_forced.mean()),
            "lost": float(at_write.teacher_forced.mean() - last.teacher_forced.mean()),
            "kept": float((right_then & right_now).mean()),
            "forgotten": float((right_then & ~right_now).mean()),
            "never_written": float((~right_then).mean()),
            "late": float((~right_then & right_now).mean()),
        }
        rows.append(row)
    return pd.DataFrame(rows)
