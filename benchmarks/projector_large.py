"""Benchmark 1b: projector upkeep at the size users run, d_k = 14336 (Llama-3-8B's MLP), float64 on this CPU.

The world of ``projector.py`` (C0 a random rotation of a power-law spectrum, batches of 100 keys) at
Llama-3-8B's key dimension. Each form runs in its own process, for an honest peak memory:

* **exact** (LangEdit-exact): keeps the protected basis ``B`` (d_k x r) and appends each batch's keys
  (Gram-Schmidt twice + a thin SVD, O(d_k r n));
* **published** (LangEdit as published): blends the covariance and re-decomposes the whole d_k x d_k
  matrix after every batch. It uses a symmetric eigendecomposition, which is cheaper than the full
  SVD the reference code runs for the same subspace (their ratio at d_k 4096 is measured here too).

Both start from the eigendecomposition C0 was built from (each would otherwise spend one more
d_k x d_k decomposition on its setup, the same for both). Reported per form: seconds per batch
(propose + commit), the rule's state in MB against one dense d_k x d_k float64 matrix, the process's
peak memory, and the guarantee (max over earlier batches s of ||Delta_t K_s|| / (||Delta_t|| ||K_s||)).

    python benchmarks/projector_large.py                       # d_k 14336: about 30 minutes on 2 cores
    python benchmarks/projector_large.py --dk 512 --batches 2  # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, run_child, save, table, tensor_bytes  # noqa: E402
from projector import FORMS, world_with_spectrum  # noqa: E402

from langedit_mini.core.projection import tau_for_leftover  # noqa: E402
from langedit_mini.core.updates import LangEditExactRule, LangEditPublishedRule  # noqa: E402


def run_form(form: str, path: Path, batches: int, alpha: float) -> dict:
    """One form on the saved world (memory-mapped, so the exact form never reads C0 itself)."""
    world = torch.load(path, mmap=True)
    eigendecomposition = (world.pop("eigenvalues"), world.pop("eigenvectors"))
    covariance = world.pop("covariance")
    start = time.perf_counter()
    if form == "exact":
        rule = LangEditExactRule(None, tau=world["tau"], alpha=alpha, eigendecomposition=eigendecomposition)
    else:
        rule = LangEditPublishedRule(
            covariance, n_samples=100_000, tau=world["tau"], alpha=alpha, eigendecomposition=eigendecomposition
        )
    setup = time.perf_counter() - start
    del covariance, eigendecomposition  # what the rule keeps of them is its own state
    per_batch, done = [], []
    for keys, residuals in list(zip(world["keys"], world["residuals"]))[:batches]:
        keys, residuals = keys.clone(), residuals.clone()
        start = time.perf_counter()
        delta = rule.propose(residuals, keys)
        middle = time.perf_counter()
        rule.commit(keys)
        end = time.perf_counter()
        leak = max((float((delta @ s).norm() / (delta.norm() * s.norm())) for s in done), default=0.0)
        per_batch.append({"propose_s": middle - start, "commit_s": end - middle, "leak": leak})
        done.append(keys)
        print(f"{form}: batch {len(per_batch)} {end - start:.2f} s", file=sys.stderr, flush=True)
    d_k = keys.shape[0]
    return {
        "form": form,
        "d_k": d_k,
        "setup_s": setup,
        "batches": per_batch,
        "state_mb": tensor_bytes(rule) / 2**20,
        "dense_mb": d_k * d_k * 8 / 2**20,
        "capacity_left": rule.capacity_left,
        "peak_rss_mb": peak_rss_mb(),
    }


def svd_against_eigh(d_k: int) -> dict:
    """Seconds of one full SVD and one symmetric eigendecomposition of the same d_k x d_k covariance."""
    covariance, _, _, _ = world_with_spectrum(d_k, 0, 1, 1.5)
    start = time.perf_counter()
    torch.linalg.svd(covariance)
    svd_s = time.perf_counter() - start
    start = time.perf_counter()
    torch.linalg.eigh(covariance)
    return {"d_k": d_k, "svd_s": svd_s, "eigh_s": time.perf_counter() - start}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dk", type=int, default=14336)
    parser.add_argument("--batches", type=int, default=3, help="batches of the exact form")
    parser.add_argument("--published-batches", type=int, default=2, help="each one is a d_k x d_k decomposition")
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--decay", type=float, default=1.5, help="power-law decay of C0's spectrum")
    parser.add_argument("--leftover", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument(
        "--svd-dk", type=int, help="where SVD and eigh are timed side by side (default: d_k, at most 4096)"
    )
    parser.add_argument("--child", choices=FORMS, help=argparse.SUPPRESS)
    parser.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        batches = args.batches if args.child == "exact" else args.published_batches
        print(json.dumps(run_form(args.child, args.world, batches, args.alpha)))
        return {}
    start = time.perf_counter()
    covariance, (eigenvalues, eigenvectors), keys, residuals = world_with_spectrum(
        args.dk, max(args.batches, args.published_batches), args.keys, args.decay
    )
    tau = tau_for_leftover(covariance, args.leftover)
    world_s = time.perf_counter() - start
    results = {"settings": vars(args) | {"child": None, "world": None}, "world_s": world_s, "runs": []}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "world.pt"
        torch.save(
            {
                "covariance": covariance,
                "eigenvalues": eigenvalues,
                "eigenvectors": eigenvectors,
                "keys": keys,
                "residuals": residuals,
                "tau": tau,
            },
            path,
        )
        del covariance, eigenvalues, eigenvectors
        for form in FORMS:
            options = ["--dk", str(args.dk), "--batches", str(args.batches)]
            options += ["--published-batches", str(args.published_batches), "--alpha", str(args.alpha)]
            results["runs"].append(run_child(Path(__file__), "--child", form, "--world", str(path), *options))
    results["svd_against_eigh"] = svd_against_eigh(args.svd_dk or min(args.dk, 4096))
    mean = {
        run["form"]: sum(b["propose_s"] + b["commit_s"] for b in run["batches"]) / len(run["batches"])
        for run in results["runs"]
    }
    results["mean_batch_s"] = mean
    results["speedup"] = mean["published"] / mean["exact"]
    results["exact_state_share_of_dense"] = results["runs"][0]["state_mb"] / results["runs"][0]["dense_mb"]
    rows = [
        {
            "form": run["form"],
            "d_k": run["d_k"],
            "batches": len(run["batches"]),
            "s / batch": f"{mean[run['form']]:.3f}",
            "speed-up": f"{results['speedup']:.0f}x" if run["form"] == "exact" else "",
            "state MB": f"{run['state_mb']:.0f}",
            "dense P MB": f"{run['dense_mb']:.0f}",
            "peak RSS MB": f"{run['peak_rss_mb']:.0f}",
            "max leak": f"{max(b['leak'] for b in run['batches']):.1e}",
        }
        for run in results["runs"]
    ]
    print(table(rows, list(rows[0])))
    ratio = results["svd_against_eigh"]
    print(
        f"world built in {world_s:.0f} s; at d_k {ratio['d_k']} one full SVD takes {ratio['svd_s']:.1f} s, "
        f"one eigendecomposition {ratio['eigh_s']:.1f} s ({ratio['svd_s'] / ratio['eigh_s']:.1f}x)"
    )
    save("projector_large", results)
    return results


if __name__ == "__main__":
    main()
