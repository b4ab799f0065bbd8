"""The declared dependency bounds are the ones the code's APIs need, and the installed versions meet them.

The lower bounds themselves are exercised by ``make lower-bounds``, which installs exactly them in a separate
environment and runs the editing and scoring tests there (the README gives the last result)."""

import inspect
import re
import tomllib
from importlib import metadata
from pathlib import Path

import transformers
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
#: what the code needs, and why: the lowest version of each that has it
NEEDED = {
    # model/values.py passes a cached prefix as `cache=` and reads `output.cache` (before 5.24: past_key_values)
    "transformers": "5.24",
    # transformers 5.24 asks for torch 2.6 (its `torch` extra)
    "torch": "2.6",
}


def declared_lower_bounds() -> dict[str, str]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {}
    for requirement in dependencies:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", requirement)
        if match:
            bounds[match.group(1)] = match.group(2)
    return bounds


def test_the_declared_lower_bounds_are_what_the_code_needs():
    declared = declared_lower_bounds()
    assert {name: declared.get(name) for name in NEEDED} == NEEDED


def test_the_installed_versions_meet_the_bounds_and_have_the_apis():
    for name, lowest in NEEDED.items():
        assert Version(metadata.version(name)) >= Version(lowest), name
    forward = inspect.signature(transformers.LlamaModel.forward).parameters
    assert "cache" in forward  # the name model/values.py passes
    assert "cache" in transformers.modeling_outputs.BaseModelOutputWithPast.__dataclass_fields__
    lowest = (ROOT / "Makefile").read_text()
    assert "lower-bounds:" in lowest  # the target that installs exactly the lower bounds
