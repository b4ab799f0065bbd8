"""Benchmark 4: the covariance (second-moment) pass: tokens per second, flat memory, a cache hit.

The pocket corpus's held-out texts are repeated 1x, 2x, 4x and 8x; each size runs in a fresh
process, so its peak resident memory is its own. Memory should stay flat (the running sum is
d_k x d_k whatever the corpus size) while time grows linearly. Then the same call again: a cache hit.

    python benchmarks/covariance.py [--sizes 1 2 4 8] [--texts N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, run_child, save, table  # noqa: E402


def one(size: int, cache_dir: str | None, limit: int | None = None) -> dict:
    from langedit_mini.model.statistics import key_second_moments
    from langedit_mini.pocket import POCKET_EDIT_LAYERS, covariance_texts, load_pocket_model

    model, tokenizer = load_pocket_model()
    texts = covariance_texts()[:limit] * size
    base = peak_rss_mb()
    start = time.perf_counter()
    moments = key_second_moments(model, tokenizer, texts, list(POCKET_EDIT_LAYERS), cache_dir=cache_dir, progress=False)
    seconds = time.perf_counter() - start
    moment = next(iter(moments.values()))
    return {
        "size": size,
        "texts": len(texts),
        "tokens": moment.n_samples,
        "seconds": seconds,
        "from_cache": moment.from_cache,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": base,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=int, help="use the corpus's first N texts (default: all; the tests use few)")
    args = parser.parse_args(argv)
    if args.texts is not None and args.texts < 1:
        parser.error(f"--texts must be a positive integer, got {args.texts}")
    limit = [] if args.texts is None else ["--texts", str(args.texts)]
    if args.child:
        print(json.dumps(one(args.child, args.cache, args.texts)))
        return {}
    runs = [run_child(Path(__file__), "--child", str(size), *limit) for size in args.sizes]
    with tempfile.TemporaryDirectory() as cache:
        first = run_child(Path(__file__), "--child", str(args.sizes[0]), "--cache", cache, *limit)
        hit = run_child(Path(__file__), "--child", str(args.sizes[0]), "--cache", cache, *limit)
    rows = [
        {
            "corpus x": r["size"],
            "tokens": r["tokens"],
            "seconds": f"{r['seconds']:.1f}",
            "tokens / s": f"{r['tokens'] / r['seconds']:.0f}",
            "peak RSS MB": f"{r['peak_rss_mb']:.0f}",
        }
        for r in runs
    ]
    print(table(rows, list(rows[0])))
    print(
        f"cache: first call {first['seconds']:.2f} s (from cache: {first['from_cache']}), "
        f"second call {hit['seconds']:.3f} s (from cache: {hit['from_cache']})"
    )
    return save("covariance", {"runs": runs, "cache_miss": first, "cache_hit": hit})


if __name__ == "__main__":
    main()
