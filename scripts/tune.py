"""Tune every method with the same budget on a testbed's tuning split (``study.tuning.tune``), resumably, and
write the chosen settings into its hyperparameter file.

    python scripts/tune.py [--model pocket] [--edits-per-language N] [--batch-size N] [--methods MEMIT ...]
                           [--output results/tuning/<model>] [--apply] [--configs N] [--recheck] [--rescore]
                           [--unedited]

Each configuration of ``study.tuning.GRIDS`` (12 per method, in two stages) is one sequential study of the
tuning facts (``--tuning-facts``, the split the study leaves out) at the study's operating point: by default
the testbed's density grid at the paper's density (``study.density.density_grid``), parallel facts, the
delta schedule, six languages. Each finished run is one row of ``<output>/runs.csv`` and its requests' final
scores in ``scores.csv``; a rerun skips the rows already there. ``tuning.json`` records the grid, the choice per
method with its lead over the runner-up (paired by request) and the provenance. ``--apply`` writes
the choices into the testbed's hyperparameter file (its ``methods`` section); that file is an input of the
testbed's run hash, so the study's runs under ``results/density/<model>/`` of methods whose settings did not
change are recorded as made by the new hash (``results/equivalences.json``, ``tuning.runs_kept_by_apply``) and
the others are named stale. ``--configs N`` runs only the
first N configurations of each grid (a smoke test; no choice is made from part of a grid). ``--stage 1``
tunes with stage 1's 8 configurations per method alone (``study.tuning.STAGES``: stage 2's grid is the
pocket model's; a real LLM, on which both stages do not fit, is tuned with stage 1). ``--recheck``
reruns, with today's code, the best row of each method among the rows made by each version of the code
(``package_hash``) older than the one that made the last row, and writes ``recheck.csv`` (objective then and
now): a tuning whose rows span code versions is comparable only if those reruns agree. ``--rescore`` reruns
a method's choice and its runner-up where their rows were made before the tuning kept per-request scores (an
error unless the rerun reproduces the row's objective), so that the choice's lead is paired by request.
Before its first configuration a tuning scores the unedited model on the same requests (``unedited.json``,
``unedited_scores.csv``: the objective's floor, what a configuration that writes nothing scores), once per
folder; ``--unedited`` writes that alone (a minute or two on a real LLM) and stops.
"""

from __future__ import annotations

from langedit_mini.data.languages import LANGUAGES
from langedit_mini.interface.arguments import add_methods, results_folder, study_parser, testbed_from
from langedit_mini.study.density import density_grid
from langedit_mini.study.experiment import StudyPlan
from langedit_mini.study.tuning import tune


def main(argv=None) -> dict:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--edits-per-language", type=int, default=None, help="default: the grid's paper point")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the grid's batch")
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    parser.add_argument("--tuning-facts", type=int, default=None, help="default: the grid's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", type=int, default=None, help="only the first N configurations of each grid")
    parser.add_argument("--apply", action="store_true", help="write the choices into the hyperparameter file")
    parser.add_argument("--recheck", action="store_true", help="rerun one row per method and earlier code version")
    parser.add_argument(
        "--rescore", action="store_true", help="rerun a choice and its runner-up made without per-request scores"
    )
    parser.add_argument(
        "--unedited", action="store_true", help="only score the unedited model on the tuning's requests"
    )
    parser.add_argument(
        "--stage", type=int, default=2, choices=(1, 2), help="tune with the grids up to this stage (study.tuning)"
    )
    add_methods(parser)
    args = parser.parse_args(argv)
    testbed = testbed_from(parser, args)
    grid = density_grid(testbed)
    try:
        plan = StudyPlan(
            languages=args.languages,
            edits_per_language=args.edits_per_language or grid["paper"],
            batch_size=args.batch_size or grid["batch_size"],
            facts="parallel",
        )
        return tune(
            testbed,
            results_folder(args, "tuning", testbed),
            plan,
            tuning_facts=args.tuning_facts or grid["tuning_facts"],
            methods=args.methods,
            configs=args.configs,
            seed=args.seed,
            apply=args.apply,
            rechecking=args.recheck,
            rescoring=args.rescore,
            unedited_only=args.unedited,
            stage=args.stage,
        )
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
