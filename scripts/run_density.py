"""The density study (``study.density``): every method at every point of the density grid, one seed and
method at a time, resumable, with provenance. Each point is one ``scripts/run_study.py`` study under
``results/density/<model>/<point>/``.

    python scripts/run_density.py [--model pocket] [--max-runs N] [--points e028 e007 ...] [--seeds 0 1 2]
                                  [--methods MEMIT ...] [--dry-run]

Runs go in the order that makes a partial study most useful: the paper's density first (all seeds,
both schedules), then seed 0 at every other point, then the other seeds. A finished run is skipped,
so the command resumes; ``--max-runs`` bounds one session's share; ``--dry-run`` lists the plan.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langedit_mini.editing import METHODS
from langedit_mini.study.density import DENSITY_GRIDS, density_plan, point_arguments

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import run_study  # noqa: E402  (the study command, one point at a time)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(DENSITY_GRIDS), default="pocket")
    parser.add_argument("--points", nargs="+", default=None, help="point names (default: the whole grid)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--max-runs", type=int, default=None)
    parser.add_argument("--output", default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args(argv)
    output = Path(args.output or ROOT / "results" / "density" / args.model)
    plan = density_plan(args.model, points=args.points, seeds=args.seeds)
    done = 0
    for step in plan:
        if args.max_runs is not None and done >= args.max_runs:
            break
        arguments = point_arguments(args.model, step, output) + ["--methods", *args.methods]
        if args.max_runs is not None:
            arguments += ["--max-runs", str(args.max_runs - done)]
        print(f"== {step['point']} ({step['schedule']}), seeds {step['seeds']}", flush=True)
        if args.dry_run:
            print("   scripts/run_study.py " + " ".join(arguments))
            continue
        done += run_study.main(arguments)
    print(f"{done} runs made")
    return done


if __name__ == "__main__":
    main()
