"""The full-scale study with one command (``make study``): papermill runs the sequential chapter with
the full parameters and keeps the executed notebook, its tables and raw results, and their provenance
(commit, package hash, parameters, machine, wall time) under ``results/main/``.

    python scripts/run_study.py [--edits-per-language 100] [--seeds 0 1 2] [--output results/main]
                                [--languages en de ...] [--methods MEMIT LangEdit-exact ...]

Languages and methods default to the chapter's (all six, all five); the test suite runs this script
with two of each and two edits to check the path end to end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import papermill

from langedit_mini.provenance import git_commit, machine, package_hash

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits-per-language", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", default=str(ROOT / "results" / "main"))
    parser.add_argument("--languages", nargs="+", default=None, help="default: the chapter's six")
    parser.add_argument("--methods", nargs="+", default=None, help="default: the chapter's five")
    args = parser.parse_args(argv)
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    parameters = {"edits_per_language": args.edits_per_language, "batch_size": args.batch_size,
                  "seeds": args.seeds, "probe_every": 2, "probe_limit": 50, "save_to": str(output)}
    parameters |= {name: value for name, value in (("languages", args.languages), ("methods", args.methods))
                   if value is not None}
    start = time.time()
    papermill.execute_notebook(str(ROOT / "notebooks" / "05_sequential.ipynb"), str(output / "05_sequential.ipynb"),
                               parameters=parameters, cwd=str(ROOT / "notebooks"), progress_bar=False)
    provenance = {"commit": git_commit(ROOT), "package_hash": package_hash(), "parameters": parameters,
                  "machine": machine(), "wall_s": time.time() - start,
                  "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    (output / "provenance.json").write_text(json.dumps(provenance, indent=1))
    print(json.dumps(provenance, indent=1))


if __name__ == "__main__":
    main()
