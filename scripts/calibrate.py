"""Calibrate a testbed (``study.calibration.calibrate``): gates G1 and G3, and the measures that explain a
failure, written with their provenance under ``results/calibration/<model>/``.

    python scripts/calibrate.py [--model pocket] [--batch-size 7] [--trace-facts 10] [--seed 0] [--band 0]
                                [--samples 10] [--window 6] [--parts write trace keys]

* G1 write: in every language, one batch of ``--batch-size`` edits of distinct subjects (default: the
  density study's batch, the paper's batch-to-d_k ratio, ``study.density``), drawn from the study facts
  (the tuning split left out) and written into a fresh copy by MEMIT and by AlphaEdit with the testbed's
  hyperparameters (tuned by ``scripts/tune.py``); the gate reads the mean over the languages. Also one
  English batch of 100, the earlier yardstick, as information (``--no-batch-of-100`` leaves it out).
* G3 mechanism: causal tracing of ``--trace-facts`` facts per language that the model answers right,
  every layer, with the edited band (``--band``, default the model's edited layers) restored together.
  ``--window N`` adds ROME's windowed trace (N consecutive layers restored together around each layer).
* Key distinctness at every layer, and the coverage of the edit keys by the preserved covariance at
  the edited layers.

``--parts`` measures some of them only (``trace`` alone before a real LLM's band and settings are chosen).

G2 needs sequential runs at the paper's density (``scripts/run_density.py``); the density chapter
reads them. A few minutes on 2 cores for the pocket models.
"""

from __future__ import annotations

from langedit_mini.interface.arguments import add_batch, batch_from, results_folder, study_parser, testbed_from
from langedit_mini.study.calibration import CALIBRATION_PARTS, calibrate


def main(argv=None) -> dict:
    parser = study_parser(__doc__, settings=False)
    add_batch(parser)
    parser.add_argument("--band", type=int, nargs="+", default=None, help="default: the model's edited layers")
    parser.add_argument("--trace-facts", type=int, default=10, help="facts traced per language")
    parser.add_argument("--samples", type=int, default=10, help="noise draws per traced fact")
    parser.add_argument("--window", type=int, default=None, help="ROME's windowed trace: layers restored together")
    parser.add_argument("--parts", nargs="+", default=list(CALIBRATION_PARTS), choices=CALIBRATION_PARTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-batch-of-100", action="store_true", help="G1 without its English batch of 100 (information, no gate)"
    )
    args = parser.parse_args(argv)
    testbed = testbed_from(parser, args)
    batch = batch_from(parser, args, testbed)
    try:
        return calibrate(
            testbed,
            results_folder(args, "calibration", testbed),
            **batch,
            band=args.band,
            trace_facts=args.trace_facts,
            samples=args.samples,
            window=args.window,
            seed=args.seed,
            parts=args.parts,
            batch_of_100=not args.no_batch_of_100,
        )
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
