"""Shared helpers of the benchmark scripts: machine facts, peak memory, result files, tables."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from langedit_mini.study.provenance import git_commit, machine

RESULTS = Path(__file__).resolve().parent / "results"


def add_texts_argument(parser) -> None:
    """``--texts N``: C0 from the preserved-knowledge corpus's first N texts (the tests' toy sizes)."""
    parser.add_argument("--texts", type=int, help="C0 from the corpus's first N texts (default: all; tests use few)")


def preserved_texts(parser, args) -> list[str]:
    """The preserved-knowledge corpus (``pocket.covariance_texts``), cut to ``--texts`` when it is given."""
    from langedit_mini.pocket import covariance_texts

    if args.texts is not None and args.texts < 1:
        parser.error(f"--texts must be a positive integer, got {args.texts}")
    return covariance_texts()[: args.texts]


def timed(function):
    """``(function(), seconds it took)``."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def z_distances(z, reference, hidden):
    """Per request (a column): how far target values ``z`` lie from ``reference``, relative to how far the
    reference moved from the hidden state ``hidden`` (all d_v x n)."""
    return (z - reference).norm(dim=0) / (reference - hidden).norm(dim=0).clamp_min(1e-12)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tensor_bytes(*objects) -> int:
    """Bytes of every tensor held by these objects' attributes (one level into nested objects)."""
    seen, total = set(), 0

    def visit(value, depth):
        nonlocal total
        if isinstance(value, torch.Tensor):
            if id(value) not in seen:
                seen.add(id(value))
                total += value.element_size() * value.numel()
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item, depth)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item, depth)
        elif depth < 2 and hasattr(value, "__dict__"):
            for item in vars(value).values():
                visit(item, depth + 1)

    for item in objects:
        visit(item, 0)
    return total


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "commit": git_commit(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=float))
    print(f"wrote {path}")
    return path


def run_child(script: Path, *arguments: str) -> dict:
    """Run ``script`` in a fresh interpreter (for its own peak memory); it prints one JSON line last."""
    completed = subprocess.run([sys.executable, str(script), *arguments], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(arguments)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table, printed by every benchmark."""
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
