"""The options every study script shares, parsed one way: which model (``--model``, ``--hparams``, ``--mzsre``),
how many threads, which settings over the hyperparameter file (``--set name=value``), and where results go.

    parser = study_parser(__doc__)              # --model, --hparams, --mzsre, --threads, --set, --output
    add_batch(parser)                           # --batch-size, --tuning-facts (where a script writes batches)
    args = parser.parse_args(argv)
    testbed = testbed_from(parser, args)        # study.testbeds.load_testbed, threads set first
    batch = batch_from(parser, args, testbed)   # batch_size, tuning_facts: the density grid's unless given
    output = results_folder(args, "calibration", testbed)  # results/calibration/<model>/ unless --output

A bad value (an unknown model, a setting no method has, a malformed ``--set``) ends the script with the
parser's error message, which names it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from langedit_mini.editing.defaults import parse_settings
from langedit_mini.editing.registry import METHODS
from langedit_mini.study.verdicts import STUDY_SEEDS

#: the repository: results are written under its results/ folder
ROOT = Path(__file__).resolve().parents[2]


def study_parser(description: str, *, settings: bool = True) -> argparse.ArgumentParser:
    """A parser with the options every study script takes (``settings``: with ``--set``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        default="pocket",
        help="pocket, pocket-wide, tiny-random-<family>, a hub id or a local directory (study.testbeds)",
    )
    parser.add_argument("--hparams", default=None, help="a hyperparameter file (name or .json path) for the model")
    parser.add_argument("--mzsre", default=None, help="a local MzsRE copy (upstream layout), for a hub model")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the project's machines: 2)")
    parser.add_argument("--output", type=Path, default=None, help="default: results/<study>/<model>/")
    if settings:
        parser.add_argument("--set", action="append", default=[], help="name=value over the hyperparameter file")
    return parser


def add_methods(parser: argparse.ArgumentParser, default=METHODS) -> None:
    parser.add_argument("--methods", nargs="+", default=list(default), help=f"of {', '.join(METHODS)}")


def add_seeds(parser: argparse.ArgumentParser, default=STUDY_SEEDS) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=list(default))


def add_batch(parser: argparse.ArgumentParser) -> None:
    """``--batch-size`` and ``--tuning-facts``; unset, they take the density study's values (``batch_from``)."""
    parser.add_argument("--batch-size", type=int, default=None, help="default: the density study's batch")
    parser.add_argument("--tuning-facts", type=int, default=None, help="default: the density grid's")


def batch_from(parser: argparse.ArgumentParser, args, testbed) -> dict:
    """``batch_size`` and ``tuning_facts``: the flags given, else the density grid's for the testbed
    (``study.density.density_grid``). A value below 1 is a parser error, never replaced by the default."""
    from langedit_mini.study.density import density_grid

    grid = density_grid(testbed)
    chosen = {}
    for name in ("batch_size", "tuning_facts"):
        given = getattr(args, name)
        if given is not None and given < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {given}")
        chosen[name] = grid[name] if given is None else given
    return chosen


def settings_from(parser: argparse.ArgumentParser, args) -> dict:
    """The ``--set`` pairs as settings (``editing.defaults.parse_settings``); a bad one is a parser error."""
    try:
        return parse_settings(getattr(args, "set", None))
    except ValueError as error:
        parser.error(f"--set: {error}")


def testbed_from(parser: argparse.ArgumentParser, args):
    """The testbed ``--model`` names (``study.testbeds.load_testbed``), after setting the threads; an unknown
    model is a parser error."""
    from langedit_mini.study.testbeds import load_testbed

    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    methods = getattr(args, "methods", None)
    if methods is not None:
        unknown = sorted(set(methods) - set(METHODS))
        if unknown:
            parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    torch.manual_seed(0)
    try:
        return load_testbed(args.model, hparams=args.hparams, mzsre=args.mzsre)
    except ValueError as error:
        parser.error(f"--model: {error}")


def results_folder(args, study: str, testbed) -> Path:
    """``--output``, or ``results/<study>/<the testbed's folder name>/`` of the repository."""
    return Path(args.output) if args.output is not None else ROOT / "results" / study / testbed.folder
