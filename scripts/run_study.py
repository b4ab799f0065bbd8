"""The full-scale study with one command (``make study``): papermill runs the sequential chapter once per
seed and method at the full parameters, keeps each executed notebook and its raw results with their
provenance (commit, package hash, parameters, machine, wall time) under ``results/main/parts/``, and
merges the finished runs into the tables and ``provenance.json`` of ``results/main/``.

    python scripts/run_study.py [--edits-per-language 100] [--batch-size 100] [--seeds 0 1 2]
                                [--languages en de ...] [--methods MEMIT LangEdit-exact ...]
                                [--output results/main] [--max-runs N] [--rerun-stale] [--merge-only]

A run already on disk is skipped, so an interrupted study resumes where it stopped and can be spread
over several sessions (``--max-runs`` bounds one session's share). ``--rerun-stale`` reruns the runs
made by other editing code than the current one. Runs go seed by seed, methods in the order given
(put first what matters most when time is short); the tables list methods in the usual order.
Languages and methods default to the chapter's (all six, all five); the test suite runs this script
with two of each and two edits.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import papermill

from langedit_mini.data.languages import LANGUAGES
from langedit_mini.editing import METHODS
from langedit_mini.study.provenance import finish_record, package_hash, start_record
from langedit_mini.study.results import RAW, describe, merge_parts, part_name

ROOT = Path(__file__).resolve().parents[1]
#: the chapter's parameters a full-scale run leaves at their defaults (recorded with each run)
FIXED = {"dataset": "pocket", "schedule": "delta", "tau": None, "alpha": None}


def run_part(output: Path, seed: int, method: str, shared: dict) -> dict:
    """One seed and method: the chapter into ``parts/<name>.running``, renamed when it has finished."""
    name = part_name(seed, method)
    final = output / "parts" / name
    work = output / "parts" / f"{name}.running"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    parameters = shared | {"seeds": [seed], "methods": [method], "save_to": str(work)}
    # the code the run starts from; results/ is left out of "uncommitted changes": the merge after each run
    # rewrites results/main/, so every later run of the same `make study` would otherwise count as dirty
    record = start_record(ROOT, exclude=("results",))
    failed_claims = []
    try:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "05_sequential.ipynb"),
            str(work / "05_sequential.ipynb"),
            parameters=parameters,
            cwd=str(ROOT / "notebooks"),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as error:
        # The chapter's strict claims are sized for its reduced run; at full scale a claim that fails is a
        # finding, kept with the run (the executed notebook shows where it stopped). Only when the raw
        # results were already written; any other error stops the study.
        written = all((work / f"{table}.csv.gz").exists() for table in RAW)
        if not (error.ename == "AssertionError" and str(error.evalue).startswith("claim failed") and written):
            raise
        failed_claims.append(str(error.evalue))
        print(f"{name}: {error.evalue}", flush=True)
    info = {"seed": seed, "method": method, "failed_claims": failed_claims, "parameters": shared | FIXED}
    info |= finish_record(record)
    (work / "part.json").write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits-per-language", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--output", default=str(ROOT / "results" / "main"))
    parser.add_argument("--max-runs", type=int, default=None, help="run at most this many missing runs, then merge")
    parser.add_argument("--rerun-stale", action="store_true", help="rerun runs made by other editing code")
    parser.add_argument("--merge-only", action="store_true", help="run nothing; merge the finished runs")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if args.max_runs is not None and args.max_runs < 0:
        parser.error(f"--max-runs must be >= 0, got {args.max_runs}")
    planned = [m for m in METHODS if m in args.methods]  # tables in the usual order, runs in the order asked
    output = Path(args.output).resolve()
    shared = {
        "edits_per_language": args.edits_per_language,
        "batch_size": args.batch_size,
        "languages": args.languages,
        "probe_every": 2,
        "probe_limit": 50,
    }
    runs = 0
    for seed in args.seeds:
        for method in args.methods:
            if args.merge_only or (args.max_runs is not None and runs >= args.max_runs):
                break
            part = output / "parts" / part_name(seed, method) / "part.json"
            if part.exists():
                info = json.loads(part.read_text())
                if info["parameters"] != shared | FIXED:
                    parser.error(
                        f"{part} was made with other parameters ({info['parameters']}); "
                        "use another --output or move it away"
                    )
                if not (args.rerun_stale and info["package_hash"] != package_hash()):
                    print(f"{part_name(seed, method)}: on disk ({info['finished']}), skipped")
                    continue
            print(f"{part_name(seed, method)}: running", flush=True)
            info = run_part(output, seed, method, shared)
            runs += 1
            print(f"{part_name(seed, method)}: {info['wall_s'] / 60:.1f} min", flush=True)
            merge_parts(output, args.seeds, planned, args.languages)  # progress is visible after every run
    provenance = merge_parts(output, args.seeds, planned, args.languages)
    print(describe(provenance))


if __name__ == "__main__":
    main()
