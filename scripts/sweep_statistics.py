"""Sweep the sample behind the preserved-key statistics C0 on the tuning split (``study.preserved``), resumably.

    python scripts/sweep_statistics.py --model smollm2-135m [--sizes 300 1000 3000 10000] [--band 3-7]
                                       [--batch-size 11] [--seed 0] [--methods AlphaEdit]
                                       [--output results/calibration/<model>/preserved]

For each size (MzsRE training questions per language, the first of each language), C0 of the band (default: the
hyperparameter file's) is computed from those texts alone, and one batch per language of the tuning split is
written by each method with it and scored as the band sweep scores a band; with the tokens per language and
rank(P) per layer at the file's cut. A size already in ``scores.csv`` is not run again. Writes ``scores.csv``,
``null_space.csv``, ``summary.csv`` and ``preserved.json`` (settings, tokens, timings, provenance). For a model
edited on MzsRE (a real LLM, a hub model): the pocket world's corpus is not split by language.
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
from langedit_mini.study.bands import parse_band
from langedit_mini.study.preserved import PRESERVED_METHODS, SAMPLE_SIZES, sweep_sample_sizes


def main(argv=None) -> dict:
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.study.testbeds import mzsre_texts

    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SAMPLE_SIZES), help="texts per language")
    parser.add_argument("--band", default=None, help="3-7 or 3,5,7 (default: the hyperparameter file's)")
    add_batch(parser)
    parser.add_argument("--seed", type=int, default=0)
    add_methods(parser, default=list(PRESERVED_METHODS))
    args = parser.parse_args(argv)
    try:
        band = parse_band(args.band) if args.band else None
    except ValueError as error:
        parser.error(str(error))
    testbed = testbed_from(parser, args)
    if testbed.dataset != "mzsre":
        parser.error(f"{args.model} is edited on the {testbed.dataset} world, whose corpus is not split by language")
    batch = batch_from(parser, args, testbed)
    output = results_folder(args, "calibration", testbed) / "preserved" if args.output is None else args.output
    try:
        return sweep_sample_sizes(
            testbed,
            output,
            band or default_config("MEMIT", testbed.hparams).layers,
            args.sizes,
            mzsre_texts(args.mzsre, questions=max(args.sizes)),
            **batch,
            seed=args.seed,
            methods=args.methods,
        )
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
