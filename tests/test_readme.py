"""Every code block of the README runs as written, each on its own in a fresh interpreter or shell.

The blocks read and fill the package's caches where the environment puts them (``LANGEDIT_CACHE``, else
``~/.cache/langedit_mini``), as they do for a user who followed the README's set-up (``make book`` fills them).
A first load that checksums and dequantises a GGUF file runs in CI's book build, which starts from empty caches
(``.ci/run``); preserved-key statistics computed from nothing, in the session's ``pocket`` fixture."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_shows_the_package_in_python():
    python = blocks("python")
    assert len(python) >= 6
    assert any("edit(" in block for block in python) and any("run_schedule" in block for block in python)
    assert any("langedit-mini edit" in block for block in blocks("bash"))


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_every_python_block_of_the_readme_runs_on_its_own(tmp_path, index):
    script = "import torch\ntorch.set_num_threads(2)\n" + blocks("python")[index]
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=1200
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    expected = {
        "edit(": ["reliability", "teacher-forced"],
        "list_hparams": ["llama-3-8b", "pocket-wide", "ExactBasisSettings("],
        "run_schedule": [],
        "save_statistics": ["[0, 1]"],
        "METHODS": [
            "('FT', 'MEMIT', 'AlphaEdit', 'LangEdit-published', 'LangEdit-exact')",
            "FineTuningSettings(learning_rate=0.0003, steps=10, norm_constraint=0.01)",  # pocket.json, tuned
        ],
    }
    for marker, texts in expected.items():
        if marker in blocks("python")[index]:
            for text in texts:
                assert text in out, (text, out[-2000:])
    if "run_schedule" in blocks("python")[index]:
        assert (tmp_path / "runs" / "demo").is_dir()  # the resumable run kept its records


@pytest.mark.slow
def test_the_command_line_block_of_the_readme_runs(tmp_path):
    [block] = [b for b in blocks("bash") if "langedit-mini edit" in b]
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    completed = subprocess.run(
        ["bash", "-e", "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=1200, env=env
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "runs" / "one" / "requests.csv").exists() and (
        tmp_path / "runs" / "seq" / "summary.csv"
    ).exists()
