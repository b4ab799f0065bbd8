"""Run every CPU benchmark in turn and write benchmarks/results/*.json (``make benchmarks``).

The GPU benchmark (``gpu_projector.py``) runs only where CUDA is present and is not part of this.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import covariance  # noqa: E402
import end_to_end  # noqa: E402
import projector  # noqa: E402
import scaling  # noqa: E402
import values  # noqa: E402

for name, module in (
    ("projector", projector),
    ("values", values),
    ("covariance", covariance),
    ("scaling", scaling),
    ("end_to_end", end_to_end),
):
    start = time.perf_counter()
    print(f"\n=== {name} ===", flush=True)
    module.main([])
    print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
