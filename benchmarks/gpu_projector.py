"""Benchmark 6: projector maintenance on a GPU at Llama-3-8B's d_k (14336), both LangEdit forms.

The same synthetic world as ``projector.py`` (a rotated power-law C0, 100 keys a batch), built
directly on the device in float64. Per form: the setup (one eigendecomposition of C0), the time per
batch (propose + commit, with the device synchronised around each), and the peak device memory
that form allocated. Writes ``benchmarks/results/gpu_projector.json``, which the performance chapter
shows with the device named, when it exists.

    python benchmarks/gpu_projector.py                       # needs CUDA: d_k 14336, 6 batches
    python benchmarks/gpu_projector.py --device cpu --dk 256 --batches 2 --no-save   # a dry run of the code path

Not part of ``make benchmarks`` (CPU only); on a machine without CUDA the default run stops with an
error that says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, table  # noqa: E402
from projector import FORMS, make_rule, time_batches, world  # noqa: E402

from langedit_mini.core.projection import tau_for_leftover  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_form(form: str, device: torch.device, args) -> dict:
    covariance, key_batches, residuals = world(args.dk, args.batches, args.keys, args.decay, device=device)
    tau = tau_for_leftover(covariance, args.leftover)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    synchronize(device)
    start = time.perf_counter()
    rule = make_rule(form, covariance, tau, args.alpha)
    synchronize(device)
    setup = time.perf_counter() - start
    timings, refused_at = time_batches(rule, key_batches, residuals, lambda: synchronize(device))
    per_batch = [b["propose_s"] + b["commit_s"] for b in timings]
    peak_mb = ((torch.cuda.max_memory_allocated(device) - base) / 2**20) if device.type == "cuda" else None
    del rule, covariance, key_batches, residuals
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "form": form,
        "d_k": args.dk,
        "setup_s": setup,
        "batch_s": per_batch,
        "refused_at": refused_at,
        "peak_device_mb": peak_mb,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dk", type=int, default=14336)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--decay", type=float, default=1.5)
    parser.add_argument("--leftover", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--no-save", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_projector.py: no CUDA device here (torch.cuda.is_available() is False); "
            "run it on a GPU machine, or pass --device cpu for a dry run at small --dk"
        )
    if args.dk < 2 or args.batches < 1 or args.keys < 1:
        raise SystemExit(f"gpu_projector.py: --dk >= 2, --batches >= 1 and --keys >= 1 are needed, got {vars(args)}")
    runs = [run_form(form, device, args) for form in FORMS]
    timed = min(len(run["batch_s"]) for run in runs)
    mean = {run["form"]: sum(run["batch_s"][:timed]) / max(timed, 1) for run in runs}
    rows = [
        {
            "form": run["form"],
            "setup s": f"{run['setup_s']:.2f}",
            "batches": len(run["batch_s"]),
            "s / batch": f"{mean[run['form']]:.3f}",
            "peak device MB": f"{run['peak_device_mb']:.0f}" if run["peak_device_mb"] is not None else "-",
            "refused at": run["refused_at"]["batch"] if run["refused_at"] else "-",
        }
        for run in runs
    ]
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else device}, d_k = {args.dk}")
    print(table(rows, list(rows[0])))
    results = {
        "settings": vars(args),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "runs": runs,
        "mean_batch_s": mean,
        "speedup": mean["published"] / mean["exact"] if mean["exact"] > 0 else None,
        "batches_timed": timed,
    }
    if not args.no_save:
        save("gpu_projector", results)
    return results


if __name__ == "__main__":
    main()
