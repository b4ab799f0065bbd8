"""How many steps the value step needs on a testbed: its reach per language on the tuning split
(``study.value_steps.sweep_value_steps``), resumably, and the allowance the rule chooses.

    python scripts/sweep_value_steps.py --model smollm2-135m [--batches 2] [--batch-size 11] [--seed 0]
                                        [--steps 25 50 100 200] [--share 0.9]
                                        [--output results/calibration/<model>/value_steps]

In every language, ``--batches`` batches of ``--batch-size`` distinct-subject edits from the tuning split go
through the value step of the testbed's hyperparameter file, allowed the most of ``--steps``; the share of
targets reached within each allowance is read off that one run. The chosen allowance is the fewest steps at
which every language reaches at least ``--share`` of its targets. A language already in ``reach.csv`` is not
run again. Writes ``reach.csv``, ``curve.csv`` and ``value_steps.json`` (settings, choice, provenance); the
choice is not written into the hyperparameter file (``study.value_steps`` says why). On SmolLM2, 2 cores:
about 18 minutes with the defaults (Gemma-3-270M allowed 100 steps: 31).
"""

from __future__ import annotations

from langedit_mini.interface.arguments import add_batch, batch_from, results_folder, study_parser, testbed_from
from langedit_mini.study.value_steps import REACH_SHARE, STEP_COUNTS, sweep_value_steps


def main(argv=None) -> dict:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--batches", type=int, default=2, help="batches per language (default 2)")
    add_batch(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEP_COUNTS), help="allowances reported")
    parser.add_argument("--share", type=float, default=REACH_SHARE, help="share each language must reach")
    parser.add_argument("--languages", nargs="+", default=None)
    args = parser.parse_args(argv)
    testbed = testbed_from(parser, args)
    batch = batch_from(parser, args, testbed)
    output = results_folder(args, "calibration", testbed) / "value_steps" if args.output is None else args.output
    try:
        return sweep_value_steps(
            testbed,
            output,
            batches=args.batches,
            **batch,
            seed=args.seed,
            counts=args.steps,
            share=args.share,
            languages=args.languages,
        )
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
