"""Where does forgetting enter? The full-scale study's first two batches, taken apart key by key
(``study.diagnosis``: the null-space guarantee protects the committed keys; scoring reads others).

    python scripts/diagnose_forgetting.py [--model pocket] [--edits 100] [--seed 0]
                                          [--methods MEMIT LangEdit-exact ...]
                                          [--covariances statements statements+questions]

Edits the first two batches of the full-scale schedule (``--edits`` English edits, then as many German
ones) with each closed-form method and measures, for the English edits after the German batch, how much
the second update moves each kind of key, each key's share in the null space the second batch was written
into, and the reliabilities; with the testbed's preserved corpus and with that corpus plus question prompts.
Prints the rows and writes ``results/diagnostics/<model>/forgetting.json`` (with its provenance), which the
ablations chapter shows.
"""

from __future__ import annotations

from langedit_mini.interface.arguments import results_folder, study_parser, testbed_from
from langedit_mini.study.diagnosis import DIAGNOSIS_COVARIANCES, diagnose_forgetting


def main(argv=None) -> list[dict]:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--edits", type=int, default=100, help="edits per batch (the full-scale study's 100)")
    parser.add_argument("--seed", type=int, default=0)
    # LangEdit-published equals AlphaEdit up to a covariance blend of weight n / N (100 / 127,744) here
    parser.add_argument("--methods", nargs="+", default=["MEMIT", "AlphaEdit", "LangEdit-exact"])
    parser.add_argument("--covariances", nargs="+", default=list(DIAGNOSIS_COVARIANCES), choices=DIAGNOSIS_COVARIANCES)
    args = parser.parse_args(argv)
    if args.edits < 1:
        parser.error(f"--edits must be a positive integer, got {args.edits}")
    testbed = testbed_from(parser, args)
    try:
        return diagnose_forgetting(
            testbed,
            results_folder(args, "diagnostics", testbed) / "forgetting.json",
            edits=args.edits,
            seed=args.seed,
            methods=args.methods,
            covariances=args.covariances,
        )
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
