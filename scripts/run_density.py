"""The density study (``study.density``): every method at every point of a testbed's density grid, one seed
and method at a time, resumable, with provenance (``study.runner.run_density``). Each point is one study
under ``results/density/<model>/<point>/``.

    python scripts/run_density.py [--model pocket] [--max-runs N] [--points e028 e007 ...] [--seeds 0 1 2]
                                  [--methods MEMIT ...] [--dry-run]

Runs go in the order that makes a partial study most useful: the paper's density first (all seeds,
both schedules), then seed 0 at every other point, then the other seeds. A finished run is skipped,
so the command resumes; ``--max-runs`` bounds one session's share; ``--dry-run`` lists the plan.
"""

from __future__ import annotations

from langedit_mini.interface.arguments import add_methods, add_seeds, results_folder, study_parser, testbed_from
from langedit_mini.study.runner import run_density


def main(argv=None) -> int:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--points", nargs="+", default=None, help="point names (default: the whole grid)")
    parser.add_argument("--max-runs", type=int, default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    add_seeds(parser)
    add_methods(parser)
    args = parser.parse_args(argv)
    testbed = testbed_from(parser, args)
    try:
        return run_density(
            testbed,
            results_folder(args, "density", testbed),
            points=args.points,
            seeds=args.seeds,
            methods=args.methods,
            max_runs=args.max_runs,
            dry_run=args.dry_run,
        )
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
