"""Sweep the edited band on the tuning split (``study.bands.sweep_bands``), resumably, and record the choice.

    python scripts/sweep_bands.py --model smollm2-135m --bands 1-5 3-7 5-9 [--batch-size 11] [--seed 0]
                                  [--methods MEMIT AlphaEdit] [--output results/calibration/<model>/bands]

For each band, in every language, one batch of ``--batch-size`` edits (default: the density study's batch)
from the tuning split is written by each method into a fresh copy of the model, with the testbed's
hyperparameters and only the layers changed; the band with the best mean teacher-forced reliability,
generality and locality is chosen. A band already in ``scores.csv`` is not run again. The statistics of
layers not yet cached are computed first (on SmolLM2 about 200 s per new layer on 2 cores). Writes
``scores.csv``, ``summary.csv`` and ``bands.json`` (settings, choice, provenance). The choice is not
written into the hyperparameter file: that is a decision for the reader of the sweep (``study.bands``).
"""

from __future__ import annotations

from langedit_mini.interface.arguments import (
    add_batch,
    add_methods,
    batch_from,
    results_folder,
    study_parser,
    testbed_from,
)
from langedit_mini.study.bands import BAND_METHODS, parse_band, sweep_bands


def main(argv=None) -> dict:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--bands", nargs="+", required=True, help="bands as 3-7 or 3,5,7")
    add_batch(parser)
    parser.add_argument("--seed", type=int, default=0)
    add_methods(parser, default=list(BAND_METHODS))
    args = parser.parse_args(argv)
    try:
        bands = [parse_band(text) for text in args.bands]
    except ValueError as error:
        parser.error(str(error))
    testbed = testbed_from(parser, args)
    batch = batch_from(parser, args, testbed)
    output = results_folder(args, "calibration", testbed) / "bands" if args.output is None else args.output
    try:
        return sweep_bands(
            testbed,
            output,
            bands,
            **batch,
            seed=args.seed,
            methods=args.methods,
        )
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
