"""What each null-space projector leaves of every batch's keys in a density study's schedule, and how much of a
batch's keys lies in the span of the same facts' keys of earlier batches (``study.key_overlap``).

Why LangEdit writes a fact's later languages less than AlphaEdit: it protects every earlier edit's key, and in the
paper's schedule the earlier batches hold the same facts in other languages. Nothing is edited: the keys are the
unedited model's (exactly a run's keys at the first edited layer, an approximation at later ones), the schedule
is the one the study's runs of ``--point`` and ``--seed`` edited (at a point without committed runs, the one
``scripts/run_density.py`` would edit there), and each method's settings are its hyperparameter file's.

    python scripts/projector_action.py --model smollm2-135m --point e044 [--seed 0] [--layers 3 7]

Writes ``<point>-seed<seed>.csv`` and a ``.json`` beside it (the schedule, the facts whose subject is the
English text, the settings, the provenance) under ``--output`` (default
``results/exploration/projector_action/<model>/``). About 10 minutes for SmolLM2's e044 on one core
(statistics cached).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from langedit_mini.data.schedules import build_schedule
from langedit_mini.editing.defaults import default_config
from langedit_mini.interface.arguments import ROOT, study_parser, testbed_from
from langedit_mini.study import store
from langedit_mini.study.density import density_grid, density_plan
from langedit_mini.study.key_overlap import PROJECTED, projector_action, shared_subjects
from langedit_mini.study.provenance import finish_record, start_record
from langedit_mini.study.runner import plan_from_parameters, study_parameters, study_requests


def main(argv=None) -> int:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--point", required=True, help="a point of the model's density grid, e.g. e044")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, nargs="+", default=None, help="default: the edited layers")
    args = parser.parse_args(argv)
    testbed = testbed_from(parser, args)
    folder = ROOT / "results" / "density" / testbed.folder / args.point
    if (folder / "provenance.json").is_file():  # the schedule the committed runs edited
        parameters = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))["parameters"]
        schedule_from = str(folder.relative_to(ROOT) / "provenance.json")
    else:  # no run yet: the plan run_density.py would run at this point
        grid = density_grid(testbed)
        try:
            (step,) = density_plan(grid, points=[args.point], seeds=[args.seed])
        except ValueError as error:
            parser.error(f"--point: {error}")
        parameters = study_parameters(testbed, step["plan"], grid["tuning_facts"])
        schedule_from = "density grid (no committed run at this point)"
    plan, tuning_facts = plan_from_parameters(parameters)
    schedule = build_schedule(
        study_requests(testbed, plan.languages, tuning_facts),
        plan.schedule,
        plan.languages,
        edits_per_language=plan.edits_per_language,
        batch_size=plan.batch_size,
        seed=args.seed,
        facts=plan.facts,
    )
    edited = default_config(PROJECTED[0], hparams=testbed.hparams).layers
    if args.layers and not set(args.layers) <= set(edited):
        parser.error(f"--layers must be edited layers of {testbed.name} ({edited}), got {args.layers}")
    record = start_record(loader=testbed.loader, inputs=testbed.inputs)
    frame = projector_action(
        testbed.model,
        testbed.tokenizer,
        schedule.batches,
        testbed.statistics(edited),
        testbed.hparams,
        layers=args.layers,
    )
    output = args.output or ROOT / "results" / "exploration" / "projector_action" / testbed.folder
    output.mkdir(parents=True, exist_ok=True)
    name = f"{args.point}-seed{args.seed}"
    frame.to_csv(output / f"{name}.csv", index=False)
    info = {
        "model": testbed.name,
        "point": args.point,
        "seed": args.seed,
        "parameters": parameters,
        "schedule_from": schedule_from,
        "batches": [[r.fact_id for r in batch] for batch in schedule.batches],
        "shared_subjects": shared_subjects(schedule.requests).to_dict(orient="records"),
        "settings": {m: asdict(default_config(m, hparams=testbed.hparams).settings) for m in PROJECTED},
    } | finish_record(record)
    store.write_json(output / f"{name}.json", info)
    first = frame[frame.exact_keys].groupby(["method", "lang"], sort=False).kept.mean().unstack()
    print(first.round(3).to_string())
    print(f"written: {output / name}.csv ({info['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    main()
