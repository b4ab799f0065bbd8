"""Does a deeper pocket model recall its facts where locate-then-edit methods write? (gate G3, issue 18)

Both shipped pocket models fail G3 the same way: the largest MLP effect at the subject's last token
is in layer 0 and small (0.30 of the total effect for the 4-layer model, 0.15 for the 5-layer wide
one); the recall happens at the prompt's last token, in the last layers. This probe asks whether
depth changes that before anyone trains and ships a third testbed: it trains a variant of the small
model with more layers (the same corpus, tokenizer and recipe otherwise; not shipped, the weights
stay in the resumable checkpoint under ``.pocket-train/depth-<layers>/``) and traces it as
``scripts/calibrate.py`` traces the shipped ones, judging G3 with the same gate
(``study.calibration.mechanism_gate``) for the band given.

    python scripts/probe_depth.py --layers 8 [--band 1 2 3] [--epochs 12] [--trace-facts 10] [--chunk-epochs N]

Writes ``results/exploration/depth/L<layers>/`` (``trace.csv``, ``trace_summary.csv``, ``probe.json``
with the training history, the gate and the provenance). The 8-layer probe takes about 435 s an epoch
on 2 cores (12 epochs: about 90 min, measured); ``--chunk-epochs`` stops after that many epochs, and
a rerun resumes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch

from langedit_mini.data.datasets import POCKET_DIRECTORY, load_pocket
from langedit_mini.data.schedules import split_facts
from langedit_mini.pocket.build.train import PRESETS, train_model
from langedit_mini.study import store
from langedit_mini.study.calibration import trace_mechanism
from langedit_mini.study.density import POCKET_TUNING_FACTS
from langedit_mini.study.provenance import finish_record, start_record

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / ".pocket-train"


def main(argv=None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=8, help="decoder layers of the variant (the small model: 4)")
    parser.add_argument("--band", type=int, nargs="+", default=[1, 2, 3], help="the band G3 restores together")
    parser.add_argument("--epochs", type=int, default=None, help="default: the small preset's")
    parser.add_argument("--chunk-epochs", type=int, default=None, help="stop after this many epochs (resume later)")
    parser.add_argument("--trace-facts", type=int, default=10, help="facts traced per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "exploration" / "depth")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS, help="where the resumable checkpoint goes")
    parser.add_argument("--corpus-lines", type=int, default=None, help="train on the first N corpus lines (tests)")
    args = parser.parse_args(argv)
    if args.layers < 1:
        parser.error(f"--layers must be at least 1, got {args.layers}")
    if not args.band or min(args.band) < 0 or max(args.band) >= args.layers:
        parser.error(f"--band must name layers in 0..{args.layers - 1}, got {args.band}")
    if args.chunk_epochs is not None and args.chunk_epochs < 1:
        parser.error("--chunk-epochs must be at least 1")
    if args.trace_facts < 1:
        parser.error("--trace-facts must be at least 1")

    torch.set_num_threads(args.threads)
    record = start_record()
    config = replace(PRESETS["pocket"], num_hidden_layers=args.layers, threads=args.threads, seed=args.seed)
    if args.epochs is not None:
        config = replace(config, epochs=args.epochs)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(POCKET_DIRECTORY / "model")  # the shipped models' tokenizer
    lines = (POCKET_DIRECTORY / "corpus.txt").read_text(encoding="utf-8").splitlines()
    if args.corpus_lines is not None:
        lines = lines[: args.corpus_lines]
    name = f"depth-{args.layers}" + ("" if args.corpus_lines is None else f"-first{args.corpus_lines}")
    model, history, finished = train_model(
        lines, tokenizer, config, checkpoint_dir=args.checkpoints / name, stop_after_epochs=args.chunk_epochs
    )
    if not finished:
        print(f"stopped after epoch {history[-1]['epoch']} of {config.epochs}; run again to resume")
        return None

    start = time.perf_counter()
    requests, _ = load_pocket()
    study, _ = split_facts(requests, POCKET_TUNING_FACTS)
    try:
        traced = trace_mechanism(model, tokenizer, study, args.band, args.trace_facts, args.seed)
    except ValueError as error:
        raise SystemExit(f"the {args.layers}-layer variant: {error}") from error
    trace, summary, gate = traced.trace, traced.summary, traced.gate
    trace_seconds = time.perf_counter() - start

    output = args.output / f"L{args.layers}"
    at_subject = summary[(summary.site == "mlp") & (summary.position == "subject last")].set_index("layer")
    info = {
        "layers": args.layers,
        "band": list(args.band),
        "config": asdict(config),
        "corpus_lines": len(lines),
        "final_loss": history[-1]["loss"],
        "training_seconds": history[-1]["seconds"],
        "history": history,
        "traced_facts": len(traced.facts),
        "noise": trace.attrs["noise"],
        "peak_layer_mlp_subject_last": int(at_subject.share_of_total.idxmax()),
        "G3": {"passed": gate.passed, "claims": [c.as_dict() for c in gate.claims]},
        "trace_seconds": round(trace_seconds, 1),
        "seed": args.seed,
    } | finish_record(record)
    store.write_trace_record(output, "probe.json", info, summary, trace)
    with pd.option_context("display.width", 200):
        print(gate.table().to_string(index=False))
        print(summary[summary.site.isin(["mlp", "mlp band"])].round(3).to_string(index=False))
    print(f"written to {output}")
    return info


if __name__ == "__main__":
    main()
