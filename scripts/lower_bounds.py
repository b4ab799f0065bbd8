"""Print the lowest torch and transformers that pyproject.toml allows, as pip requirements
(``torch==2.6 transformers==5.24``): ``make lower-bounds`` installs exactly these in a separate environment
and runs the editing and scoring tests there."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("torch", "transformers")


def lower_bounds() -> dict[str, str]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {}
    for requirement in dependencies:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", requirement)
        if match and match.group(1) in CHECKED:
            bounds[match.group(1)] = match.group(2)
    missing = [name for name in CHECKED if name not in bounds]
    if missing:
        raise SystemExit(f"pyproject.toml declares no lower bound for {missing}")
    return bounds


if __name__ == "__main__":
    print(" ".join(f"{name}=={version}" for name, version in lower_bounds().items()))
