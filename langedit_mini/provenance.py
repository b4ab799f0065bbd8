"""Where a result came from: the commit, a hash of the package's code, the machine, the parameters."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

#: modules that cannot change a pocket-world study's numbers: the real-LLM loaders and tasks, and the
#: bookkeeping of results themselves. ``package_hash`` leaves them out so that work on them does not
#: mark the full-scale results as stale.
NOT_IN_HASH = ("downloads.py", "general.py", "llm.py", "provenance.py", "results.py")


def package_hash() -> str:
    """A hash of the package's editing code (every source file but ``NOT_IN_HASH``): it changes whenever
    something that could change an editing result changes."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() in NOT_IN_HASH:
            continue
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def git_commit(directory: Path = PACKAGE) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=directory).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_dirty(directory: Path = PACKAGE, exclude=()) -> bool | None:
    """Whether the working tree has uncommitted changes to tracked files outside the paths ``exclude``
    (relative to ``directory``; None when git is not available)."""
    pathspecs = ["--", "."] + [f":(exclude){path}" for path in exclude] if exclude else []
    try:
        return bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", *pathspecs],
                                   capture_output=True, text=True, check=True, cwd=directory).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict:
    import torch

    facts = {"platform": platform.platform(), "cores": os.cpu_count(), "torch": torch.__version__,
             "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts
