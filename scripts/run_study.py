"""The full-scale study with one command (``make study``): each seed and method is one direct call of the
study code (``study.results.run_part``: ``run_study`` at the full parameters), which writes the run's raw
results and its record (commit, package hash, parameters, machine, wall time, claims) under
``results/main/parts/``; then the finished runs are merged into the tables and ``provenance.json`` of
``results/main/``.

    python scripts/run_study.py [--edits-per-language 100] [--batch-size 100] [--seeds 0 1 2]
                                [--languages en de ...] [--methods MEMIT LangEdit-exact ...]
                                [--output results/main] [--max-runs N] [--rerun-stale] [--merge-only]
                                [--model pocket-wide] [--facts parallel] [--evaluate-every 6]
                                [--tuning-facts 200] [--probe-every 2] [--schedule mt] [--set blend=pooled]

``--model pocket-wide`` edits the wide pocket model; ``--facts parallel`` edits the same facts in
every language (the paper's shape); ``--tuning-facts N`` leaves out the N facts of the tuning split
(``data.schedules.split_facts``), so a study never edits what its hyperparameters were tuned on;
``--schedule mt`` mixes the languages inside each batch (the paper's second setting; default: delta,
language blocks); ``--set name=value`` changes a setting over the model's defaults for the methods
that have it (an ablation: ``--set blend=pooled``); ``--evaluate-every K`` scores every edit so far
after every K-th batch and each other batch right after its write. ``scripts/run_density.py`` runs
this command at every point of the density study.

A run already on disk is skipped, so an interrupted study resumes where it stopped and can be spread
over several sessions (``--max-runs`` bounds one session's share). ``--rerun-stale`` reruns the runs
made by other editing code than the current one. Runs go seed by seed, methods in the order given
(put first what matters most when time is short); the tables list methods in the usual order.
Languages and methods default to all six and all five; the test suite runs this script with two of
each and two edits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.languages import LANGUAGES
from langedit_mini.data.schedules import FACT_MODES, split_facts
from langedit_mini.editing import METHODS
from langedit_mini.editing.defaults import applicable_overrides, load_pocket_editing
from langedit_mini.pocket import load_probes
from langedit_mini.study.provenance import package_hash
from langedit_mini.study.results import describe, merge_parts, part_name, run_parameters, run_part

ROOT = Path(__file__).resolve().parents[1]


def overrides(parser, pairs: list[str]) -> dict:
    """``name=value`` pairs (numbers parsed) checked against the methods' settings."""
    values = {}
    for pair in pairs:
        name, separator, text = pair.partition("=")
        if not separator or not name:
            parser.error(f"--set expects name=value, got {pair!r}")
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            values[name] = text
    try:
        applicable_overrides("MEMIT", values)  # raises for a name no method has
    except ValueError as error:
        parser.error(str(error))
    return values


def main(argv=None) -> int:
    """Run the missing parts, merge; returns how many runs were made."""
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
    parser.add_argument("--model", choices=("pocket", "pocket-wide"), default="pocket")
    parser.add_argument("--facts", choices=FACT_MODES, default="distinct")
    parser.add_argument("--evaluate-every", type=int, default=1)
    parser.add_argument("--tuning-facts", type=int, default=0, help="facts of the tuning split left out (0: none)")
    parser.add_argument("--probe-every", type=int, default=2)
    parser.add_argument("--schedule", choices=("delta", "mt"), default="delta")
    parser.add_argument("--set", action="append", default=[], help="name=value over the defaults (an ablation)")
    args = parser.parse_args(argv)
    for name in ("evaluate_every", "probe_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.tuning_facts < 0:
        parser.error("--tuning-facts must be >= 0")
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
        "probe_every": args.probe_every,
        "probe_limit": 50,
        "model": args.model,
        "facts": args.facts,
        "evaluate_every": args.evaluate_every,
        "tuning_facts": args.tuning_facts,
        "schedule": args.schedule,
    }
    if args.set:  # recorded only when given, so the runs made before the option keep their parameters
        shared["overrides"] = overrides(parser, args.set)
    runs, setup = 0, None
    requests, _ = load_pocket(languages=args.languages)
    if args.tuning_facts:
        requests, _ = split_facts(requests, args.tuning_facts)
    for seed in args.seeds:
        for method in args.methods:
            if args.merge_only or (args.max_runs is not None and runs >= args.max_runs):
                break
            part = output / "parts" / part_name(seed, method) / "part.json"
            if part.exists():
                info = json.loads(part.read_text())
                if info["parameters"] != run_parameters(shared):
                    parser.error(
                        f"{part} was made with other parameters ({info['parameters']}); "
                        "use another --output or move it away"
                    )
                if not (args.rerun_stale and info["package_hash"] != package_hash()):
                    print(f"{part_name(seed, method)}: on disk ({info['finished']}), skipped")
                    continue
            print(f"{part_name(seed, method)}: running", flush=True)
            if setup is None:  # loaded once, when there is something to run
                torch.manual_seed(0)
                setup = load_pocket_editing(model_name=args.model)
            info = run_part(output, seed, method, shared, setup, requests, load_probes())
            for failure in info["failed_claims"]:  # at full scale a finding, kept with the run
                print(f"{part_name(seed, method)}: {failure}", flush=True)
            runs += 1
            print(f"{part_name(seed, method)}: {info['wall_s'] / 60:.1f} min", flush=True)
            merge_parts(output, args.seeds, planned, args.languages)  # progress is visible after every run
    provenance = merge_parts(output, args.seeds, planned, args.languages)
    print(describe(provenance))
    return runs


if __name__ == "__main__":
    main()
