"""Benchmark 1: projector maintenance over a sequence of batches, LangEdit-exact vs LangEdit-published.

LangEdit-published recomputes a full d_k x d_k eigendecomposition of the blended covariance after
every batch (as the reference code does); LangEdit-exact appends the batch's keys to a thin protected
basis (CGS2 + SVD, O(d_k r n)) and solves without any d_k x d_k matrix. Both start from the same
C0 (a random rotation of a power-law spectrum, the cut at a leftover fraction of its trace) and take
the same keys and residuals.

Reported per d_k: setup (the one eigendecomposition of C0 both forms need), time per batch
(propose + commit), peak process memory and the rule's own tensor memory (each form in a fresh
process), the distance between the two projectors, and the guarantee of each form
(max over earlier batches s of ||Delta_t K_s|| / (||Delta_t|| ||K_s||)).

    python benchmarks/projector.py                 # d_k 1024 and 4096, 12 batches of 100 keys
    python benchmarks/projector.py --dk 256 --batches 3   # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, run_child, save, table, tensor_bytes  # noqa: E402

from langedit_mini.core.projection import tau_for_leftover  # noqa: E402
from langedit_mini.core.updates import LangEditExactRule, LangEditPublishedRule  # noqa: E402
from langedit_mini.core.validation import CapacityError  # noqa: E402

FORMS = ("exact", "published")


def world(d_k: int, batches: int, keys: int, decay: float, seed: int = 0, d_v: int = 64, device="cpu"):
    """C0, key batches and residuals, float64, built on ``device`` (a CPU QR at d_k 14336 takes minutes)."""
    covariance, _, key_batches, residuals = world_with_spectrum(d_k, batches, keys, decay, seed, d_v, device)
    return covariance, key_batches, residuals


def world_with_spectrum(d_k: int, batches: int, keys: int, decay: float, seed: int = 0, d_v: int = 64, device="cpu"):
    """``world`` and the eigendecomposition C0 was built from: ``(eigenvalues ascending, eigenvectors)``."""
    generator = torch.Generator(device=device).manual_seed(seed)
    options = {"generator": generator, "dtype": torch.float64, "device": device}
    rotation, _ = torch.linalg.qr(torch.randn(d_k, d_k, **options))
    eigenvalues = (torch.arange(d_k, dtype=torch.float64, device=device) + 1) ** (-decay)
    covariance = (rotation * eigenvalues) @ rotation.T
    scale = torch.sqrt(eigenvalues + 5e-2 * eigenvalues[0])[:, None]
    key_batches = [rotation @ (scale * torch.randn(d_k, keys, **options)) for _ in range(batches)]
    residuals = [torch.randn(d_v, keys, **options) for _ in range(batches)]
    return covariance, (eigenvalues.flip(0), rotation.flip(1)), key_batches, residuals


def make_rule(form: str, covariance, tau: float, alpha: float):
    if form == "exact":
        return LangEditExactRule(covariance, tau=tau, alpha=alpha)
    return LangEditPublishedRule(covariance, n_samples=100_000, tau=tau, alpha=alpha)


def time_batches(rule, key_batches, residuals, synchronize=lambda: None):
    """Propose and commit each batch, timed; stops at the first batch the rule refuses.

    Returns the per-batch timings and capacity, and the refusal (or None). ``synchronize`` waits
    for an accelerator before each clock reading.
    """
    per_batch, refused_at = [], None
    for t, (k, r) in enumerate(zip(key_batches, residuals)):
        synchronize()
        start = time.perf_counter()
        try:
            rule.propose(r, k)
        except CapacityError as error:
            refused_at = {"batch": t, "needed": error.needed, "available": error.available}
            break
        synchronize()
        middle = time.perf_counter()
        rule.commit(k)
        synchronize()
        per_batch.append(
            {"propose_s": middle - start, "commit_s": time.perf_counter() - middle, "capacity_left": rule.capacity_left}
        )
    return per_batch, refused_at


def run_form(form: str, d_k: int, batches: int, keys: int, decay: float, leftover: float, alpha: float) -> dict:
    """One form alone (in its own process for an honest peak memory)."""
    covariance, key_batches, residuals = world(d_k, batches, keys, decay)
    tau = tau_for_leftover(covariance, leftover)
    start = time.perf_counter()
    rule = make_rule(form, covariance, tau, alpha)
    setup = time.perf_counter() - start
    del covariance
    per_batch, refused_at = time_batches(rule, key_batches, residuals)
    return {
        "form": form,
        "d_k": d_k,
        "setup_s": setup,
        "batches": per_batch,
        "refused_at": refused_at,
        "state_mb": tensor_bytes(rule) / 2**20,
        "peak_rss_mb": peak_rss_mb(),
    }


def compare(d_k: int, batches: int, keys: int, decay: float, leftover: float, alpha: float) -> list[dict]:
    """Both forms side by side on the same sequence: projector distance and each form's guarantee."""
    covariance, key_batches, residuals = world(d_k, batches, keys, decay)
    tau = tau_for_leftover(covariance, leftover)
    rules = {form: make_rule(form, covariance, tau, alpha) for form in FORMS}
    rows, done = [], []
    for t, (k, r) in enumerate(zip(key_batches, residuals)):
        row = {"batch": t}
        try:
            deltas = {form: rule.propose(r, k) for form, rule in rules.items()}
        except CapacityError:
            break
        exact_p, published_p = rules["exact"].projector.dense(), rules["published"].projector.dense()
        row["projector_distance"] = float((exact_p - published_p).norm() / exact_p.norm())
        row["update_difference"] = float((deltas["exact"] - deltas["published"]).norm() / deltas["exact"].norm())
        for form, delta in deltas.items():
            row[f"leak_{form}"] = max(
                (float((delta @ s).norm() / (delta.norm() * s.norm())) for s in done), default=0.0
            )
        for rule in rules.values():
            rule.commit(k)
        done.append(k)
        rows.append(row)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dk", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--decay", type=float, default=1.5, help="power-law decay of C0's spectrum")
    parser.add_argument("--leftover", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--child", choices=FORMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = (args.batches, args.keys, args.decay, args.leftover, args.alpha)
    if args.child:
        print(json.dumps(run_form(args.child, args.dk[0], *shape)))
        return {}
    results, rows = {"settings": vars(args) | {"child": None}, "runs": [], "comparison": {}}, []
    for d_k in args.dk:
        runs = {}
        for form in FORMS:
            runs[form] = run_child(
                Path(__file__),
                "--child",
                form,
                "--dk",
                str(d_k),
                "--batches",
                str(args.batches),
                "--keys",
                str(args.keys),
                "--decay",
                str(args.decay),
                "--leftover",
                str(args.leftover),
                "--alpha",
                str(args.alpha),
            )
            results["runs"].append(runs[form])
        comparison = compare(d_k, *shape)
        results["comparison"][str(d_k)] = comparison
        timed = min(len(runs["exact"]["batches"]), len(runs["published"]["batches"]))
        mean = {
            form: sum(b["propose_s"] + b["commit_s"] for b in runs[form]["batches"][:timed]) / max(timed, 1)
            for form in FORMS
        }
        for form in FORMS:
            run = runs[form]
            rows.append(
                {
                    "d_k": d_k,
                    "form": form,
                    "setup s": f"{run['setup_s']:.2f}",
                    "batches": len(run["batches"]),
                    "s / batch": f"{mean[form]:.3f}",
                    "speed-up": f"{mean['published'] / mean[form]:.1f}x" if form == "exact" else "",
                    "state MB": f"{run['state_mb']:.1f}",
                    "peak RSS MB": f"{run['peak_rss_mb']:.0f}",
                    "refused at": run["refused_at"]["batch"] if run["refused_at"] else "-",
                    "max leak": f"{max((c[f'leak_{form}'] for c in comparison), default=0):.1e}",
                    "P distance (last)": f"{comparison[-1]['projector_distance']:.3f}" if comparison else "",
                }
            )
        results.setdefault("summary", {})[str(d_k)] = {
            "mean_batch_s": mean,
            "speedup": mean["published"] / mean["exact"],
            "batches_timed": timed,
        }
    print(table(rows, list(rows[0])))
    save("projector", results)
    return results


if __name__ == "__main__":
    main()
