"""Where a result came from: the commit, a hash of the code that made it, the machine, the parameters.

**The run hash** (``package_hash``) covers what a run executes and reads: every ``langedit_mini`` module that
importing the study's entry (``STUDY_ENTRY``) and the testbed's loader can run (``imported_modules``), the
bundled pocket files and the hyperparameter files. A module enters by its *behaviour*: its syntax tree with
every docstring and every other bare string statement removed (comments are not in the tree), written out
field by field (``code_digest``). A fix to prose leaves the hash as it was; any change to code, a single
token, changes it. Moving a module keeps it; moving code between modules changes it.

**Equivalences** (``EQUIVALENCES``, ``results/equivalences.json``): when code that made committed runs is
changed without changing what it computes (a refactor), the hash changes although the runs are still right.
``scripts/verify_runs.py`` reruns committed runs with the code of today and compares their results; when
they agree, it records that the old hash is equivalent to today's, with the evidence. ``is_current`` follows
these records, so a run is current when it was made by today's code or by code verified equivalent to it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from langedit_mini.data.downloads import sha256

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parent

#: where a study run starts: the package modules it imports, directly or not, are its code
STUDY_ENTRY = "langedit_mini.study.experiment"
#: the loader of the bundled pocket models (``testbeds.Testbed.loader``)
POCKET_LOADER = "langedit_mini.pocket"
#: the bundled files a pocket run reads: the editing dataset, the probes, the models and their tokenizer, and the
#: pocket models' hyperparameter files (their defaults)
POCKET_INPUTS = (
    "data/pocket/edits.json",
    "data/pocket/probes.json",
    "data/pocket/model/config.json",
    "data/pocket/model/model.safetensors",
    "data/pocket/model/tokenizer.json",
    "data/pocket/model/tokenizer_config.json",
    "data/pocket/model-wide/config.json",
    "data/pocket/model-wide/model.safetensors",
    "langedit_mini/editing/hparams/pocket-wide.json",
    "langedit_mini/editing/hparams/pocket.json",
)
#: a module's imports and code digest per SHA-256 of its text (``read_source``): parsing is most of a hash's cost
_SOURCES: dict[str, tuple[tuple[str, ...], str]] = {}
#: files of this many bytes or more are hashed once per version in a process (``file_digest``): the pocket
#: world's 78 MB of weights, edits and probes are the rest of a hash's cost
LARGE_FILE = 1 << 20
#: how old a large file's last change must be for its digest to be remembered
SETTLED_S = 2.0
_LARGE_FILES: dict[tuple, str] = {}
#: which earlier run hashes were verified to compute what today's code computes (``scripts/verify_runs.py``)
EQUIVALENCES = ROOT / "results" / "equivalences.json"


def module_path(module: str) -> Path | None:
    """The source file of a ``langedit_mini`` module (a package's ``__init__.py``), None if there is none."""
    if module == "langedit_mini":
        return PACKAGE / "__init__.py"
    relative = Path(*module.split(".")[1:])
    for candidate in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.Module) -> tuple[str, ...]:
    """The ``langedit_mini`` names a module's import statements name, anywhere in it (also inside functions):
    modules, and for ``from m import n`` also ``m.n``, since a name may be a submodule."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.startswith("langedit_mini.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("langedit_mini"):
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return tuple(names)


def read_source(path: Path) -> tuple[tuple[str, ...], str]:
    """A module's imports (``_imports``) and its ``code_digest``, parsed once per content in a process
    (``_SOURCES``, keyed by the SHA-256 of the text, so an edited module is parsed again)."""
    text = path.read_text(encoding="utf-8")
    key = hashlib.sha256(text.encode()).hexdigest()
    if key not in _SOURCES:
        tree = ast.parse(text)
        _SOURCES[key] = (_imports(tree), _tree_digest(tree))
    return _SOURCES[key]


def imported_modules(*entries: str) -> list[str]:
    """Every ``langedit_mini`` module that importing ``entries`` (default: ``STUDY_ENTRY``) can run, found
    by reading the sources: the import statements anywhere in a module (also inside functions) and the
    packages above each module."""
    seen, pending = set(), list(entries or (STUDY_ENTRY,))
    while pending:
        module = pending.pop()
        if module in seen or module_path(module) is None:
            continue
        seen.add(module)
        parts = module.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages' __init__ run first
        pending += read_source(module_path(module))[0]
    return sorted(seen)


def _is_prose(statement: ast.stmt) -> bool:
    """A bare string statement: a docstring, or a string left in a body for the reader. It does nothing."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _written_out(node) -> object:
    """A syntax tree as nested lists: each node's type and its non-empty fields, without positions and
    without prose statements (so also without fields a newer Python adds empty, such as ``type_params``)."""
    if isinstance(node, ast.AST):
        fields = []
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                value = [item for item in value if not (isinstance(item, ast.stmt) and _is_prose(item))]
            if value is None or value == []:
                continue
            fields.append([name, _written_out(value)])
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [_written_out(item) for item in node]
    return repr(node)


def _tree_digest(tree: ast.Module) -> str:
    return hashlib.sha256(json.dumps(_written_out(tree)).encode()).hexdigest()


def code_digest(source: str) -> str:
    """SHA-256 of what ``source`` does: its syntax tree without docstrings, comments or positions."""
    return _tree_digest(ast.parse(source))


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes. A large one (weights, ``LARGE_FILE`` bytes or more) is read once per
    version in a process (``_LARGE_FILES``, keyed by its path, size, times and inode) once its last change is
    ``SETTLED_S`` old: a rewrite then gets a later time, so the key changes; a file changed more recently
    is read every time, as git rechecks a file changed in the same second as its index."""
    status = path.stat()
    if status.st_size < LARGE_FILE:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    key = (str(path.resolve()), status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
    if key in _LARGE_FILES:
        return _LARGE_FILES[key]
    digest = sha256(path)  # streamed in 1 MiB blocks: a weights file is never in memory whole
    if time.time_ns() - max(status.st_mtime_ns, status.st_ctime_ns) > SETTLED_S * 1e9:
        _LARGE_FILES[key] = digest
    return digest


def package_hash(*entries: str, inputs=POCKET_INPUTS) -> str:
    """A hash of what defines a study run: the behaviour (``code_digest``) of every module that importing
    ``entries`` can run (default: ``STUDY_ENTRY`` and ``POCKET_LOADER``) and the files a run reads (``inputs``,
    paths relative to the repository; default: the pocket world's and the pocket models' hyperparameter files;
    a real LLM's weights are recorded by their own SHA-256). Contents only, not paths or names: moving a
    module leaves it unchanged. Asked again in the same process (once per run on disk, say), it parses no
    unchanged module and reads no settled large file again (``read_source``, ``file_digest``)."""
    modules = imported_modules(*(entries or (STUDY_ENTRY, POCKET_LOADER)))
    digests = sorted(read_source(module_path(module))[1] for module in modules)
    digests += [file_digest(ROOT / name) for name in inputs if (ROOT / name).is_file()]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]


def read_equivalences(path: Path = EQUIVALENCES) -> dict:
    """``{earlier hash: {"equivalent_to": later hash, "evidence": ...}}`` (empty when there is no file)."""
    return json.loads(path.read_text(encoding="utf-8")) if Path(path).is_file() else {}


def is_current(run_hash: str, current: str | None = None, equivalences: dict | None = None) -> bool:
    """Whether a run made by code ``run_hash`` is current: made by today's code (``current``, default
    ``package_hash()``), or by code recorded as equivalent to it, directly or through later versions."""
    current = current or package_hash()
    equivalences = read_equivalences() if equivalences is None else equivalences
    seen = set()
    while run_hash not in seen:
        if run_hash == current:
            return True
        seen.add(run_hash)
        run_hash = equivalences.get(run_hash, {}).get("equivalent_to", run_hash)
    return False


def record_equivalence(earlier: str, later: str, evidence: list[dict], path: Path = EQUIVALENCES) -> dict:
    """Record that code ``earlier`` computes what code ``later`` computes, with the ``evidence`` (the runs
    rerun and their largest differences, ``runner.verify_runs``); returns the records."""
    if earlier == later:
        raise ValueError("an equivalence needs two different hashes")
    records = read_equivalences(path)
    records[earlier] = {
        "equivalent_to": later,
        "verified": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": git_commit(),
        "evidence": evidence,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    return records


def git_commit(directory: Path = PACKAGE) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=directory
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_dirty(directory: Path = PACKAGE, exclude=()) -> bool | None:
    """Whether the working tree has uncommitted changes outside the paths ``exclude`` (relative to ``directory``;
    None when git is not available): a tracked file changed, or a file git does not ignore and does not track yet
    (a new module a run imports is as much a change as an edited one)."""
    pathspecs = ["--", "."] + [f":(exclude){path}" for path in exclude] if exclude else []
    try:
        return bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=normal", *pathspecs],
                capture_output=True,
                text=True,
                check=True,
                cwd=directory,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict:
    """What ran: platform, CPU model, cores, torch and its threads, Python, the versions of transformers, numpy
    and pandas, the GPU when there is one."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    from importlib import metadata

    facts = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    for library in ("transformers", "numpy", "pandas"):  # float results can move with their versions
        facts[library] = metadata.version(library)
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def start_record(
    directory: Path = ROOT, exclude=("results",), loader: str = POCKET_LOADER, inputs=POCKET_INPUTS
) -> dict:
    """The provenance of a run that starts now: the commit, whether the tree had uncommitted changes (outside
    ``exclude``: by default ``results/``, which a job rewrites as it goes), the run hash of the study code, the
    testbed's ``loader`` and the files it reads (``inputs``), the machine, the start time. ``finish_record``
    completes it."""
    return {
        "commit": git_commit(directory),
        "uncommitted_changes": git_dirty(directory, exclude=exclude),
        "package_hash": package_hash(STUDY_ENTRY, loader, inputs=inputs),
        "machine": machine(),
        "started": time.time(),
    }


def finish_record(record: dict) -> dict:
    """``record`` with the run's wall time and the time it finished (instead of its start time)."""
    finished = {key: value for key, value in record.items() if key != "started"}
    return finished | {"wall_s": time.time() - record["started"], "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
