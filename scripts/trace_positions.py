"""Where does a model read the subject from? Why G3 fails, one position at a time (issue 18).

G3 asks that restoring the edited band's MLP outputs at the subject's *last* token bring back at least
a third of the subject's effect (ROME's signature). No pocket model passes, and the larger the model
the less its subject's last token carries. This traces the same facts at four positions
(``model.tracing.ALL_POSITIONS``): the subject's first token, its last token, all its tokens together
("subject span": what restoring them at a layer does not bring back has already left the subject's
positions by then), and the prompt's last token; both sites (MLP output, whole hidden state), every
layer. With it, the subjects' token counts: the pocket tokenizer has 1,024 tokens, so most subjects
are several fragments and their last token is often a fragment many subjects share.

    python scripts/trace_positions.py --model pocket pocket-wide [--probe 8] [--trace-facts 10]

``--model`` takes any models ``study.testbeds`` knows. ``--probe 8`` traces the 8-layer variant of
``scripts/probe_depth.py`` from its checkpoint under ``.pocket-train/depth-8/`` (not shipped; train it
first), on the pocket world. Writes ``results/exploration/positions/<name>/`` (``trace_summary.csv``,
``positions.json`` with the facts' token counts and the provenance). About 1 min for the small model, 4 for
the wide one and 3 for the 8-layer probe, on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from langedit_mini.data.schedules import split_facts
from langedit_mini.model.tracing import ALL_POSITIONS, trace_summary
from langedit_mini.study import store
from langedit_mini.study.calibration import trace_known_facts
from langedit_mini.study.density import POCKET_TUNING_FACTS
from langedit_mini.study.provenance import finish_record, start_record
from langedit_mini.study.testbeds import load_testbed, pocket_testbed

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / ".pocket-train"


def load_probe(layers: int, checkpoints: Path = CHECKPOINTS):
    """The depth probe (``scripts/probe_depth.py --layers layers``) from its last checkpoint, as a pocket
    testbed named ``depth-<layers>``."""
    from transformers import LlamaForCausalLM

    from langedit_mini.pocket.build.train import CHECKPOINT, TrainConfig, model_config

    path = checkpoints / f"depth-{layers}" / CHECKPOINT
    if not path.exists():
        raise SystemExit(f"no checkpoint at {path}: run scripts/probe_depth.py --layers {layers} first")
    state = torch.load(path, weights_only=True)
    config = TrainConfig(**state["config"])
    if state["epoch"] < config.epochs:
        raise SystemExit(f"{path} holds epoch {state['epoch']} of {config.epochs}: finish the training first")
    testbed = pocket_testbed("pocket")  # its world and tokenizer; the model replaced
    testbed.model = LlamaForCausalLM(model_config(config, testbed.tokenizer))
    testbed.model.load_state_dict(state["model"])
    testbed.model.eval()
    testbed.name = f"depth-{layers}"
    return testbed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="*", default=["pocket"], help="models study.testbeds knows")
    parser.add_argument("--probe", type=int, nargs="*", default=[], help="layers of depth probes to trace")
    parser.add_argument("--trace-facts", type=int, default=10, help="facts traced per language")
    parser.add_argument("--samples", type=int, default=10, help="noise draws per fact")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "exploration" / "positions")
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS)
    args = parser.parse_args(argv)
    if not args.model and not args.probe:
        parser.error("name at least one --model or --probe")
    if args.trace_facts < 1 or args.samples < 1:
        parser.error("--trace-facts and --samples must be at least 1")
    torch.set_num_threads(args.threads)
    loaders = [lambda name=name: load_testbed(name) for name in args.model]
    loaders += [lambda layers=layers: load_probe(layers, args.checkpoints) for layers in args.probe]
    written = {}
    for load in loaders:
        start = time.perf_counter()
        try:
            testbed = load()
        except ValueError as error:
            parser.error(str(error))
        record = start_record(loader=testbed.loader)
        study, _ = split_facts(testbed.requests, POCKET_TUNING_FACTS)  # the facts calibrate.py traces
        try:
            facts, trace = trace_known_facts(
                testbed.model,
                testbed.tokenizer,
                study,
                args.trace_facts,
                args.seed,
                args.samples,
                positions=ALL_POSITIONS,
            )
        except ValueError as error:
            raise SystemExit(f"{testbed.name}: {error}") from error
        summary = trace_summary(trace)
        tokens = trace.drop_duplicates("fact").subject_tokens
        info = {
            "model": testbed.name,
            "layers": int(trace.layer.max()) + 1,
            "traced_facts": len(facts),
            "samples": args.samples,
            "noise": trace.attrs["noise"],
            "subject_tokens_mean": float(tokens.mean()),
            "subjects_of_one_token": int((tokens == 1).sum()),
            "seconds": round(time.perf_counter() - start, 1),
            "seed": args.seed,
        } | finish_record(record)
        store.write_trace_record(args.output / testbed.folder, "positions.json", info, summary)
        hidden = summary[summary.site == "hidden"].pivot(index="layer", columns="position", values="share_of_total")
        print(f"{testbed.name}: {len(facts)} facts, {tokens.mean():.1f} subject tokens on average; hidden-state share:")
        print(hidden[list(ALL_POSITIONS)].round(3).to_string())
        written[testbed.name] = info
    return written


if __name__ == "__main__":
    main()
