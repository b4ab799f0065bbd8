"""Every Python block of the README runs as written, in order, in one fresh interpreter."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_shows_the_package_in_python():
    blocks = python_blocks()
    assert len(blocks) >= 4
    assert any("EditingSession" in block for block in blocks) and any("run_schedule" in block for block in blocks)


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(tmp_path):
    script = "import torch\ntorch.set_num_threads(2)\n" + "\n".join(python_blocks())
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=1200
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    assert "teacher_forced" in out and "('FT', 'MEMIT', 'AlphaEdit', 'LangEdit-published', 'LangEdit-exact')" in out
    assert "ExactBasisSettings(" in out and "FineTuningSettings(learning_rate=0.005, steps=10" in out
    assert (tmp_path / "runs" / "demo").is_dir()  # the resumable run kept its records
