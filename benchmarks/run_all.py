"""Run every CPU benchmark in turn and write benchmarks/results/*.json (``make benchmarks``).

About an hour on 2 cores, half of it ``projector_large`` (d_k 14336). ``--skip NAME ...`` leaves
benchmarks out (their earlier JSON stays). The GPU benchmark (``gpu_projector.py``) runs only where
CUDA is present and is not part of this.

    python benchmarks/run_all.py [--skip projector_large]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import covariance  # noqa: E402
import end_to_end  # noqa: E402
import projector  # noqa: E402
import projector_large  # noqa: E402
import scaling  # noqa: E402
import values  # noqa: E402

BENCHMARKS = {
    "projector": projector,
    "projector_large": projector_large,
    "values": values,
    "covariance": covariance,
    "scaling": scaling,
    "end_to_end": end_to_end,
}

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--skip", nargs="*", default=[], choices=sorted(BENCHMARKS))
arguments = parser.parse_args()
for name, module in BENCHMARKS.items():
    if name in arguments.skip:
        print(f"\n=== {name}: skipped ===", flush=True)
        continue
    start = time.perf_counter()
    print(f"\n=== {name} ===", flush=True)
    module.main([])
    print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
