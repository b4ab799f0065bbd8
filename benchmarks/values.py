"""Benchmark 2: target values for 100 pocket requests, batched against one request at a time.

The batched optimiser (``values.compute_target_values``) runs every request's rows in one forward
and backward pass per step and drops a request's rows once it has stopped; the reference code
optimises one request at a time. Both use the same settings and seed; per request the problem is
the same, so the two ``z`` should agree up to floating-point noise.

    python benchmarks/values.py [--requests 100] [--language en]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, table  # noqa: E402

from langedit_mini.data.datasets import load_pocket  # noqa: E402
from langedit_mini.editing.defaults import default_config  # noqa: E402
from langedit_mini.model.architecture import detect_architecture  # noqa: E402
from langedit_mini.model.values import compute_target_values  # noqa: E402
from langedit_mini.pocket import POCKET_EDIT_LAYERS, load_pocket_model  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--language", default="en")
    args = parser.parse_args(argv)
    requests, _ = load_pocket(languages=(args.language,))
    requests = random.Random(0).sample(requests, args.requests)
    model, tokenizer = load_pocket_model()
    architecture, layer = detect_architecture(model), POCKET_EDIT_LAYERS[-1]
    settings = default_config("LangEdit-exact").values

    start = time.perf_counter()
    batched = compute_target_values(model, tokenizer, architecture, requests, layer, settings, seed=0)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = [compute_target_values(model, tokenizer, architecture, [r], layer, settings, seed=0) for r in requests]
    single_s = time.perf_counter() - start
    z_single = torch.cat([s.z for s in single], dim=1)
    difference = float((batched.z - z_single).abs().max())
    relative = float(((batched.z - z_single).norm(dim=0) / z_single.norm(dim=0)).max())
    steps_batched = sum(batched.steps_taken)
    steps_single = sum(s.steps_taken[0] for s in single)
    rows = [
        {
            "mode": "batched",
            "seconds": f"{batched_s:.1f}",
            "requests / s": f"{args.requests / batched_s:.2f}",
            "request-steps": steps_batched,
        },
        {
            "mode": "one at a time",
            "seconds": f"{single_s:.1f}",
            "requests / s": f"{args.requests / single_s:.2f}",
            "request-steps": steps_single,
        },
    ]
    print(table(rows, list(rows[0])))
    print(
        f"speed-up {single_s / batched_s:.1f}x; largest |z_batched - z_single| = {difference:.2e} "
        f"(largest relative difference per request {relative:.2e})"
    )
    return save(
        "values",
        {
            "settings": vars(args) | {"layer": layer, "value_settings": vars(settings)},
            "batched_s": batched_s,
            "single_s": single_s,
            "speedup": single_s / batched_s,
            "max_abs_z_difference": difference,
            "max_relative_z_difference": relative,
            "request_steps": {"batched": steps_batched, "single": steps_single},
        },
    )


if __name__ == "__main__":
    main()
