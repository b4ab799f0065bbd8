"""Tune every method with the same budget on the tuning split (``study.tuning``), resumably, and write
the chosen settings into the model's hyperparameter file.

    python scripts/tune.py --model pocket [--edits-per-language 28] [--batch-size 7] [--methods MEMIT ...]
                           [--output results/tuning/pocket] [--apply] [--configs N]

Each configuration of ``study.tuning.GRIDS`` (12 per method, in two stages) is one sequential study of the tuning
facts (``--tuning-facts``, the same split the study leaves out) at the study's operating point:
parallel facts, the delta schedule, six languages. Each finished run is one row of
``<output>/runs.csv``; a rerun skips the rows already there. ``tuning.json`` records the grid, the
choice per method and the provenance. ``--apply`` writes the choices into
``langedit_mini/editing/hparams/<model>.json`` (its ``methods`` section). ``--configs N`` runs only
the first N configurations of each grid (a smoke test; no choice is made from part of a grid).
``--recheck`` reruns, with today's code, the best row of each method among the rows made by each version of
the code (``package_hash``) older than the one that made the last row, and writes ``recheck.csv``
(objective then and now): a tuning whose rows span code versions is comparable only if those reruns agree.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.languages import LANGUAGES
from langedit_mini.data.schedules import split_facts
from langedit_mini.editing import METHODS
from langedit_mini.editing.defaults import HPARAMS_DIRECTORY, load_pocket_editing
from langedit_mini.study.provenance import finish_record, package_hash, start_record
from langedit_mini.study.tuning import GRIDS, OBJECTIVE_METRICS, choose, config_name, tuning_run

ROOT = Path(__file__).resolve().parents[1]


def apply_choices(model: str, chosen: dict, output: Path) -> Path:
    """Write ``chosen`` into the model's hyperparameter file (``methods``), saying where it came from."""
    path = HPARAMS_DIRECTORY / f"{model}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["methods"] = {method: choice["config"] for method, choice in chosen.items()}
    marker = " Per-method settings (methods):"
    note = data["note"].split(marker)[0]
    data["note"] = (
        f"{note}{marker} tuned with the same budget ({len(next(iter(GRIDS.values())))} configurations each) on the "
        f"tuning split by scripts/tune.py ({output.relative_to(ROOT) if output.is_relative_to(ROOT) else output})."
    )
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in data.items()]
    lines[-1] = lines[-1].rstrip(",")
    path.write_text("\n".join(lines + ["}"]) + "\n", encoding="utf-8")
    return path


def recheck(runs: pd.DataFrame, path: Path, tuning: list, point: dict, args) -> pd.DataFrame:
    """Rerun the best row of each (method, code version older than the last row's) with today's code."""
    current = package_hash()
    earlier = runs[runs.method.isin(args.methods) & (runs.package_hash != runs.package_hash.iloc[-1])]
    picked = earlier.loc[earlier.groupby(["method", "package_hash"]).objective.idxmax()]
    torch.manual_seed(0)
    setup = load_pocket_editing(model_name=args.model)
    rows = []
    for _, old in picked.iterrows():
        config = {k[4:]: old[k] for k in old.index if k.startswith("set ") and pd.notna(old[k])}
        row = tuning_run(*setup[:2], tuning, setup[2], old.method, config, point=point, seed=args.seed)
        rows.append(
            {
                "method": old.method,
                "config": old.config,
                "made by": old.package_hash,
                "objective then": old.objective,
                "rerun by": current,
                "objective now": row["objective"],
                "difference": row["objective"] - old.objective,
            }
        )
        print(
            f"recheck {old.method} {old.config} (made by {old.package_hash}): {old.objective:.4f} then, "
            f"{row['objective']:.4f} now",
            flush=True,
        )
        pd.DataFrame(rows).to_csv(path, index=False)
    return pd.DataFrame(rows)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("pocket", "pocket-wide"), default="pocket")
    parser.add_argument("--edits-per-language", type=int, default=28)
    parser.add_argument("--batch-size", type=int, default=7)
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--tuning-facts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None)
    parser.add_argument("--configs", type=int, default=None, help="only the first N configurations of each grid")
    parser.add_argument("--apply", action="store_true", help="write the choices into the hyperparameter file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recheck", action="store_true", help="rerun one row per method and earlier code version")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if args.configs is not None and args.configs < 1:
        parser.error("--configs must be >= 1")
    if args.apply and args.configs is not None:
        parser.error("--apply needs every configuration: a choice from part of a grid is not the same budget")
    torch.set_num_threads(args.threads)
    output = Path(args.output or ROOT / "results" / "tuning" / args.model)
    output.mkdir(parents=True, exist_ok=True)
    point = {
        "model_name": args.model,
        "edits_per_language": args.edits_per_language,
        "batch_size": args.batch_size,
        "languages": args.languages,
        "facts": "parallel",
    }
    runs_path = output / "runs.csv"
    runs = pd.read_csv(runs_path) if runs_path.exists() else pd.DataFrame(columns=["method", "config"])
    record = start_record(exclude=("results",))
    setup = None
    requests, _ = load_pocket(languages=args.languages)
    _, tuning = split_facts(requests, args.tuning_facts)
    for method in args.methods:
        for config in GRIDS[method][: args.configs]:
            if ((runs.method == method) & (runs.config == config_name(config))).any():
                continue
            if setup is None:
                torch.manual_seed(0)
                setup = load_pocket_editing(model_name=args.model)
            row = tuning_run(*setup[:2], tuning, setup[2], method, config, point=point, seed=args.seed)
            row["package_hash"] = package_hash()  # the code that made this row
            print(
                f"{method} {row['config']}: objective {row['objective']:.3f} "
                + " ".join(f"{m} {row[f'{m} TF']:.3f}" for m in OBJECTIVE_METRICS)
                + f", {row['seconds']:.0f} s",
                flush=True,
            )
            runs = pd.concat([runs, pd.DataFrame([row])], ignore_index=True)
            runs.to_csv(runs_path, index=False)
    if args.recheck:  # tuning.json and the choices stay as the tuning made them
        return {"recheck": recheck(runs, output / "recheck.csv", tuning, point, args)}
    complete = [m for m in args.methods if args.configs is None]
    chosen = choose(runs[runs.method.isin(complete)]) if complete else {}
    info = {
        "model": args.model,
        "point": point | {"tuning_facts": args.tuning_facts, "seed": args.seed, "schedule": "delta"},
        "objective": "mean of the final teacher-forced " + ", ".join(OBJECTIVE_METRICS),
        "grids": {m: [config_name(c) for c in GRIDS[m]] for m in args.methods},
        "chosen": chosen,
    } | finish_record(record)
    (output / "tuning.json").write_text(json.dumps(info, indent=1, default=str) + "\n")
    columns = ["method", "config", "objective", *[f"{m} TF" for m in OBJECTIVE_METRICS], "written TF", "seconds"]
    with pd.option_context("display.width", 200):
        print(runs[[c for c in columns if c in runs.columns]].round(3).to_string(index=False))
    for method, choice in chosen.items():
        print(f"{method}: {config_name(choice['config'])} (objective {choice['objective']:.3f})")
    if args.apply:
        print(f"written into {apply_choices(args.model, chosen, output)}")
    return info


if __name__ == "__main__":
    main()
