"""Are committed runs still what today's code computes? Rerun some with today's code and compare.

The run hash (``study.provenance.package_hash``) changes with any change to the code a run executes,
including a refactor that computes exactly what it did. This reruns committed runs of one study with
today's code, each with the parameters it recorded, into a scratch folder, and compares every raw table
(evaluations, probes, cross-lingual transfer, batches; timings left out) with the committed one. When every
rerun run agrees to ``--tolerance`` and all were made by one earlier version of the code, that version is
recorded as equivalent to today's in ``results/equivalences.json`` with the evidence (``--record``), and
every run it made reads as current (``study.provenance.is_current``).

    python scripts/verify_runs.py --model pocket --study density/pocket/e007 --seeds 0 [--methods ...] [--record]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from langedit_mini.interface.arguments import ROOT, add_methods, add_seeds, study_parser, testbed_from
from langedit_mini.study.provenance import record_equivalence
from langedit_mini.study.runner import verify_runs


def main(argv=None) -> list[dict]:
    parser = study_parser(__doc__, settings=False)
    parser.add_argument("--study", nargs="+", required=True, help="studies under results/, e.g. density/pocket/e007")
    parser.add_argument("--tolerance", type=float, default=1e-9, help="the largest difference that agrees")
    parser.add_argument("--record", action="store_true", help="record the equivalence when every run agrees")
    add_seeds(parser, default=(0,))
    add_methods(parser)
    args = parser.parse_args(argv)
    folders = [ROOT / "results" / study for study in args.study]
    missing = [str(folder) for folder in folders if not (folder / "parts").is_dir()]
    if missing:
        parser.error(f"no study at {', '.join(missing)}")
    testbed = testbed_from(parser, args)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for folder in folders:
            rows += verify_runs(testbed, folder, Path(scratch) / folder.name, seeds=args.seeds, methods=args.methods)
    tables = ("evaluations", "probes", "transfer", "batches")
    largest = max(row[table] for row in rows for table in tables)
    earlier = {row["made by"] for row in rows}
    later = {row["rerun by"] for row in rows}
    print(f"{len(rows)} runs rerun; largest difference {largest:.2e} (tolerance {args.tolerance:g})")
    if largest > args.tolerance:
        print("NOT EQUIVALENT: the runs differ; rerun the studies with today's code")
    elif args.record and len(earlier) == 1 and len(later) == 1 and earlier != later:
        record_equivalence(earlier.pop(), later.pop(), rows)
        print("recorded in results/equivalences.json")
    elif args.record:
        print(f"nothing recorded: made by {sorted(earlier)}, rerun by {sorted(later)}")
    return rows


if __name__ == "__main__":
    main()
