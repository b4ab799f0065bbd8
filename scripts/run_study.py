"""A sequential study with one command, one run (seed and method) at a time, resumable, with provenance
(``study.runner.run_parts``): each run's raw results and record (commit, package hash, parameters, machine,
wall time, claims) under ``<output>/parts/``, the finished runs merged into the tables and
``provenance.json`` of ``<output>`` (default ``results/main/<model>/``) after every run.

    python scripts/run_study.py [--model pocket] [--edits-per-language 100] [--batch-size 100] [--seeds 0 1 2]
                                [--languages en de ...] [--methods MEMIT LangEdit-exact ...] [--output DIR]
                                [--max-runs N] [--rerun-stale] [--merge-only] [--facts parallel]
                                [--evaluate-every 6] [--tuning-facts 200] [--probe-every 2] [--schedule mt]
                                [--set blend=pooled]

``--model``: any model ``study.testbeds`` knows (pocket, pocket-wide, tiny-random-<family>, a hub id or a
local directory with ``--mzsre``). ``--facts parallel`` edits the same facts in every language (the paper's
shape); ``--tuning-facts N`` leaves out the N facts of the tuning split (``data.schedules.split_facts``), so
a study never edits what its hyperparameters were tuned on; ``--schedule mt`` mixes the languages inside
each batch (the paper's second setting; default: delta, language blocks); ``--set name=value`` changes a
setting over the model's hyperparameter file for the methods that have it (an ablation: ``--set
blend=pooled``); ``--evaluate-every K`` scores every edit so far after every K-th batch and each other
batch right after its write.

A run already on disk is skipped, so an interrupted study resumes where it stopped and can be spread over
several sessions (``--max-runs`` bounds one session's share); ``--rerun-stale`` reruns the runs made by
other code than today's (``study.provenance.is_current``). Runs go seed by seed, methods in the order given
(put first what matters most when time is short); the tables list methods in the usual order.
"""

from __future__ import annotations

from langedit_mini.data.languages import LANGUAGES
from langedit_mini.data.schedules import FACT_MODES, SCHEDULES
from langedit_mini.interface.arguments import (
    add_methods,
    add_seeds,
    results_folder,
    settings_from,
    study_parser,
    testbed_from,
)
from langedit_mini.study import store
from langedit_mini.study.experiment import StudyPlan
from langedit_mini.study.findings import describe
from langedit_mini.study.runner import run_parts


def main(argv=None) -> int:
    """Run the missing runs, merge; returns how many runs were made."""
    parser = study_parser(__doc__)
    parser.add_argument("--edits-per-language", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    parser.add_argument("--max-runs", type=int, default=None, help="run at most this many missing runs, then merge")
    parser.add_argument("--rerun-stale", action="store_true", help="rerun runs made by other code")
    parser.add_argument("--merge-only", action="store_true", help="run nothing; merge the finished runs")
    parser.add_argument("--facts", choices=FACT_MODES, default="distinct")
    parser.add_argument("--evaluate-every", type=int, default=1)
    parser.add_argument("--tuning-facts", type=int, default=0, help="facts of the tuning split left out (0: none)")
    parser.add_argument("--probe-every", type=int, default=2)
    parser.add_argument("--schedule", choices=SCHEDULES, default="delta")
    add_seeds(parser)
    add_methods(parser)
    args = parser.parse_args(argv)
    if args.tuning_facts < 0:
        parser.error("--tuning-facts must be >= 0")
    try:
        plan = StudyPlan(
            languages=args.languages,
            edits_per_language=args.edits_per_language,
            batch_size=args.batch_size,
            schedule=args.schedule,
            facts=args.facts,
            evaluate_every=args.evaluate_every,
            probe_every=args.probe_every,
            probe_limit=50,
            overrides=settings_from(parser, args),
        )
    except ValueError as error:
        parser.error(str(error))
    testbed = testbed_from(parser, args)
    output = results_folder(args, "main", testbed)
    runs = run_parts(
        testbed,
        output,
        plan,
        seeds=args.seeds,
        methods=args.methods,
        tuning_facts=args.tuning_facts,
        max_runs=args.max_runs,
        rerun_stale=args.rerun_stale,
        merge_only=args.merge_only,
    )
    provenance = store.read_provenance(output)
    print(describe(provenance) if provenance else f"no finished run under {output}")
    return runs


if __name__ == "__main__":
    main()
