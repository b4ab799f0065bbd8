"""Where a result came from: the commit, a hash of the package's code, the machine, the parameters."""

from __future__ import annotations

import ast
import hashlib
import os
import platform
import subprocess
import time
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parent

#: where a study run starts: the package modules it imports, directly or not, are its code
STUDY_ENTRY = "langedit_mini.study.experiment"
#: the bundled files a pocket run reads: the editing dataset, the probes, the models and their tokenizer
POCKET_INPUTS = (
    "data/pocket/edits.json",
    "data/pocket/probes.json",
    "data/pocket/model/config.json",
    "data/pocket/model/model.safetensors",
    "data/pocket/model/tokenizer.json",
    "data/pocket/model/tokenizer_config.json",
    "data/pocket/model-wide/config.json",
    "data/pocket/model-wide/model.safetensors",
)


def module_path(module: str) -> Path | None:
    """The source file of a ``langedit_mini`` module (a package's ``__init__.py``), None if there is none."""
    if module == "langedit_mini":
        return PACKAGE / "__init__.py"
    relative = Path(*module.split(".")[1:])
    for candidate in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(entry: str = STUDY_ENTRY) -> list[str]:
    """Every ``langedit_mini`` module that importing ``entry`` can run, found by reading the sources:
    the import statements anywhere in a module (also inside functions) and the packages above each module."""
    seen, pending = set(), [entry]
    while pending:
        module = pending.pop()
        if module in seen or module_path(module) is None:
            continue
        seen.add(module)
        parts = module.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages' __init__ run first
        for node in ast.walk(ast.parse(module_path(module).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names if alias.name.startswith("langedit_mini.")]
            elif (
                isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("langedit_mini")
            ):
                pending.append(node.module)
                pending += [f"{node.module}.{alias.name}" for alias in node.names]  # a name may be a submodule
    return sorted(seen)


def package_hash(entry: str = STUDY_ENTRY) -> str:
    """A hash of what defines a study run: the source of every module it imports (``imported_modules``),
    the bundled pocket files it reads and the hyperparameter files. File contents only, not their paths
    or names, so that moving a module leaves it unchanged; any edit of code a run executes changes it."""
    digests = sorted(hashlib.sha256(module_path(module).read_bytes()).hexdigest() for module in imported_modules(entry))
    digests += [
        hashlib.sha256((ROOT / name).read_bytes()).hexdigest() for name in POCKET_INPUTS if (ROOT / name).is_file()
    ]
    # the hyperparameter files are the defaults a run uses
    digests += [
        hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((PACKAGE / "editing" / "hparams").glob("*.json"))
    ]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]


def git_commit(directory: Path = PACKAGE) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=directory
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_dirty(directory: Path = PACKAGE, exclude=()) -> bool | None:
    """Whether the working tree has uncommitted changes to tracked files outside the paths ``exclude``
    (relative to ``directory``; None when git is not available)."""
    pathspecs = ["--", "."] + [f":(exclude){path}" for path in exclude] if exclude else []
    try:
        return bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no", *pathspecs],
                capture_output=True,
                text=True,
                check=True,
                cwd=directory,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict:
    """What ran: platform, CPU model, cores, torch and its threads, Python, the GPU when there is one."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    facts = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def start_record(directory: Path = ROOT, exclude=()) -> dict:
    """The provenance of a run that starts now: the commit, whether the tree had uncommitted changes
    (outside ``exclude``), the code hash, the machine, the start time. ``finish_record`` completes it."""
    return {
        "commit": git_commit(directory),
        "uncommitted_changes": git_dirty(directory, exclude=exclude),
        "package_hash": package_hash(),
        "machine": machine(),
        "started": time.time(),
    }


def finish_record(record: dict) -> dict:
    """``record`` with the run's wall time and the time it finished (instead of its start time)."""
    finished = {key: value for key, value in record.items() if key != "started"}
    return finished | {"wall_s": time.time() - record["started"], "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
