"""Are committed runs still what today's code computes? Rerun some with today's code and with the code that made
them, in today's environment, and compare.

The run hash (``study.provenance.package_hash``) changes with any change to the code a run executes, including
a refactor that computes exactly what it did. This reruns committed runs of one or more studies, each with the
parameters it recorded, twice into a scratch folder: with today's code (``study.runner.verify_runs``) and with
the code of ``--against`` (a commit, checked out into a temporary worktree, whose own ``package_hash`` must be
the one the runs recorded, or one already verified equivalent to it; its ``scripts/run_study.py`` makes the
run). Every raw table (evaluations, probes,
cross-lingual transfer, batches; timings left out) is compared number by number, relative to the larger of
the two (a flipped score reads 1):

* today's code against the commit's code, both run here and now: they must agree to ``--tolerance`` (default
  0, exactly) for the two versions of the code to be recorded as equivalent (``--record``, in
  ``results/equivalences.json``, with this evidence); every run the earlier version made then reads as current
  (``study.provenance.is_current``);
* today's code against the committed files: printed for information. The environment can move a float32
  perplexity in its sixth digit (another transformers release, say), while the scores stay equal.

    python scripts/verify_runs.py --model pocket --study density/pocket/e007 density/pocket/e028-mt --seeds 0 \\
        --against ae7e01c --record
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from langedit_mini.interface.arguments import ROOT, add_methods, add_seeds, study_parser, testbed_from
from langedit_mini.study import store
from langedit_mini.study.provenance import is_current, record_equivalence
from langedit_mini.study.runner import table_difference, verify_runs


def run_flags(parameters: dict) -> list[str]:
    """``scripts/run_study.py`` options for the study a run recorded ``parameters`` of."""
    flags = ["--model", parameters["model"], "--edits-per-language", str(parameters["edits_per_language"])]
    flags += ["--batch-size", str(parameters["batch_size"]), "--languages", *parameters["languages"]]
    flags += ["--facts", parameters["facts"], "--evaluate-every", str(parameters["evaluate_every"])]
    flags += ["--tuning-facts", str(parameters["tuning_facts"]), "--probe-every", str(parameters["probe_every"])]
    flags += ["--schedule", parameters["schedule"]]
    for name, value in (parameters.get("overrides") or {}).items():
        flags += ["--set", f"{name}={value}"]
    return flags


#: asks a checkout for the run hash its own code records for a model's runs (``testbeds.run_hash``); a commit
#: from before ``run_hash`` existed recorded the pocket files' ``package_hash()`` for every testbed's runs
HASH_OF_CHECKOUT = """
try:
    from langedit_mini.study.testbeds import run_hash
except ImportError:
    from langedit_mini.study.provenance import package_hash
    print(package_hash())
else:
    print(run_hash({model!r}))
"""


def checkout_run_hash(tree: Path, model: str) -> str:
    """The run hash the code checked out at ``tree`` records for runs of ``model``, as that code computes it."""
    environment = os.environ | {"PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, "-c", HASH_OF_CHECKOUT.format(model=model)],
        cwd=tree,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def rerun_with_commit(commit: str, model: str, runs: list[tuple[Path, int, str]], scratch: Path) -> str:
    """Rerun ``runs`` (study folder, seed, method) of ``model`` with the code of ``commit`` into
    ``scratch/<study>``; returns the run hash that code records for ``model`` (``checkout_run_hash``)."""
    tree = scratch / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True, capture_output=True)
    environment = os.environ | {"PYTHONPATH": str(tree)}
    try:
        run_hash = checkout_run_hash(tree, model)
        for folder, seed, method in runs:
            parameters = store.read_part_record(folder, store.part_name(seed, method))["parameters"]
            command = [sys.executable, str(tree / "scripts" / "run_study.py"), *run_flags(parameters)]
            command += ["--seeds", str(seed), "--methods", method, "--output", str(scratch / folder.name)]
            print(f"{folder.name}/{store.part_name(seed, method)}: rerunning with {commit}", flush=True)
            subprocess.run(command, cwd=tree, env=environment, check=True, capture_output=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    return run_hash


def main(argv=None) -> list[dict]:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--study", nargs="+", required=True, help="studies under results/, e.g. density/pocket/e007")
    parser.add_argument("--against", default=None, help="the commit whose code made the runs")
    parser.add_argument("--tolerance", type=float, default=0.0, help="largest relative difference that agrees")
    parser.add_argument("--record", action="store_true", help="record the equivalence when every run agrees")
    add_seeds(parser, default=(0,))
    add_methods(parser)
    args = parser.parse_args(argv)
    folders = [ROOT / "results" / study for study in args.study]
    missing = [str(folder) for folder in folders if not (folder / "parts").is_dir()]
    if missing:
        parser.error(f"no study at {', '.join(missing)}")
    if args.record and args.against is None:
        parser.error("--record needs --against: an equivalence is two versions of the code run in one environment")
    if args.against is not None and args.hparams is not None:
        parser.error(
            "--against reads the run hash a commit records for the model's own hyperparameter file; "
            "--hparams cannot be compared with it"
        )
    testbed = testbed_from(parser, args)
    runs = [(folder, seed, method) for folder in folders for seed in args.seeds for method in args.methods]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        rows = []
        for folder in folders:  # today's code, against the committed files
            today = scratch / "today" / folder.name
            rows += verify_runs(testbed, folder, today, seeds=args.seeds, methods=args.methods)
        tables = store.RAW
        drift = max(row[table] for row in rows for table in tables)
        print(f"today's code against the committed files: largest relative difference {drift:.2e}")
        if args.against is None:
            return rows
        old_hash = rerun_with_commit(args.against, args.model, runs, scratch / "commit")
        for row, (folder, seed, method) in zip(rows, runs):
            name = store.part_name(seed, method)
            for table in tables:
                today = store.read_raw_part(scratch / "today" / folder.name / "parts" / name, table)
                then = store.read_raw_part(scratch / "commit" / folder.name / "parts" / name, table)
                row[f"{table} against {args.against}"] = table_difference(then, today, store.RAW_KEYS[table])
            row["commit's hash"] = old_hash
    code = max(row[f"{table} against {args.against}"] for row in rows for table in tables)
    made_by = {row["made by"] for row in rows}
    print(
        f"today's code against {args.against} (hash {old_hash}), both run here: largest relative difference "
        f"{code:.2e} (tolerance {args.tolerance:g}); the runs were made by {sorted(made_by)}"
    )
    if code > args.tolerance:
        print("NOT EQUIVALENT: today's code computes otherwise; rerun the studies with it")
    elif not all(is_current(run_hash, old_hash) for run_hash in made_by):
        print(
            f"nothing recorded: {args.against}'s code ({old_hash}) is not, nor is verified equivalent to, the code"
            " that made these runs"
        )
    elif args.record:
        later = rows[0]["rerun by"]
        record_equivalence(old_hash, later, [row | {"against": args.against} for row in rows])
        print(f"recorded in results/equivalences.json: {old_hash} computes what {later} computes")
    return rows


if __name__ == "__main__":
    main()
