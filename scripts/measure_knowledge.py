"""What a model knows per language, and in which prompt format it is asked (``study.knowledge.measure``): the
true-answer questions of MzsRE (its locality questions) and the pocket world's real facts, in every format
the model can be asked in (``raw``, ``qa``, ``few-shot``, ``chat``), teacher-forced and greedy exact match;
the format with the highest mean exact match is the model's, chosen before any tuning and written into its
hyperparameter file (``prompt_format``) with ``--apply``.

    python scripts/measure_knowledge.py --model smollm2-135m [--per-language 50] [--seed 0] [--apply]

Writes ``results/knowledge/<model>/`` (``items.csv``, ``knowledge.csv``, ``knowledge.json`` with the choice and
the provenance).
"""

from __future__ import annotations

from langedit_mini.interface.arguments import results_folder, study_parser, testbed_from
from langedit_mini.study.knowledge import measure
from langedit_mini.study.tuning import set_hparams_field


def main(argv=None) -> dict:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--per-language", type=int, default=50, help="questions per source and language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--apply", action="store_true", help="write the chosen format into the hyperparameter file")
    args = parser.parse_args(argv)
    if args.per_language < 1:
        parser.error(f"--per-language must be at least 1, got {args.per_language}")
    testbed = testbed_from(parser, args)
    info = measure(testbed, results_folder(args, "knowledge", testbed), per_language=args.per_language, seed=args.seed)
    if args.apply:
        print(f"written into {set_hparams_field(testbed.hparams, 'prompt_format', info['chosen'])}")
    return info


if __name__ == "__main__":
    main()
