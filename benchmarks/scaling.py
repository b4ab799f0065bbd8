"""Benchmark 5: how the cost grows with the number of edits and with d_k, with fitted exponents.

* Edits: one LangEdit-exact batch of n pocket requests (keys, values, solve, projector) for n in
  ``--edits``; the exponent of seconds ~ n^b.
* d_k: one batch of 100 keys through each projector form (propose + commit) after setup, for d_k
  in ``--dk``; LangEdit-published's per-batch eigendecomposition should grow like d_k^3, the exact
  form's thin update like d_k^1 to d_k^2.

    python benchmarks/scaling.py [--edits 10 25 50 100] [--dk 512 1024 2048 4096] [--texts N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_texts_argument, preserved_texts, save, table  # noqa: E402
from projector import make_rule, world  # noqa: E402

from langedit_mini.core.projection import tau_for_leftover  # noqa: E402
from langedit_mini.data.datasets import load_pocket  # noqa: E402
from langedit_mini.editing import EditingSession  # noqa: E402
from langedit_mini.editing.defaults import default_config, load_pocket_editing  # noqa: E402


def exponent(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, nargs="+", default=[10, 25, 50, 100])
    parser.add_argument("--dk", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    add_texts_argument(parser)
    args = parser.parse_args(argv)

    model, tokenizer, statistics = load_pocket_editing(preserved_texts(parser, args), cache_dir=None)
    requests, _ = load_pocket(languages=("en",))
    by_subject = {}
    for request in random.Random(0).sample(requests, len(requests)):
        by_subject.setdefault(request.subject, request)  # distinct subjects
    pool = list(by_subject.values())
    edit_rows = []
    for n in args.edits:
        session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
        start = time.perf_counter()
        record = session.apply(pool[:n])
        edit_rows.append({"edits": n, "seconds": time.perf_counter() - start, **record.seconds})
    dk_rows = []
    for d_k in args.dk:
        covariance, keys, residuals = world(d_k, 2, 100, 1.5)
        tau = tau_for_leftover(covariance, 0.05)
        row = {"d_k": d_k}
        for form in ("exact", "published"):
            rule = make_rule(form, covariance, tau, 10.0)
            rule.propose(residuals[0], keys[0])
            rule.commit(keys[0])  # timed: the second batch, after one commit
            start = time.perf_counter()
            rule.propose(residuals[1], keys[1])
            rule.commit(keys[1])
            row[form] = time.perf_counter() - start
        dk_rows.append(row)
    fits = {
        "edits": exponent([r["edits"] for r in edit_rows], [r["seconds"] for r in edit_rows]),
        "dk_exact": exponent([r["d_k"] for r in dk_rows], [r["exact"] for r in dk_rows]),
        "dk_published": exponent([r["d_k"] for r in dk_rows], [r["published"] for r in dk_rows]),
    }
    print(
        table(
            [{k: f"{v:.2f}" if isinstance(v, float) else v for k, v in r.items()} for r in edit_rows],
            list(edit_rows[0]),
        )
    )
    print(
        table([{k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()} for r in dk_rows], list(dk_rows[0]))
    )
    print("fitted exponents: " + ", ".join(f"{k} {v:.2f}" for k, v in fits.items()))
    return save("scaling", {"settings": vars(args), "edits": edit_rows, "dk": dk_rows, "exponents": fits})


if __name__ == "__main__":
    main()
