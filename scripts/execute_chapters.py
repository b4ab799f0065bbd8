"""Execute the book's chapters that its execution cache does not hold yet, ``--jobs`` at a time, and store
them in that cache (``_build/.jupyter_cache``), so that ``jupyter-book build`` then executes none and only
renders. ``make book`` runs this first.

Why: the chapters run small models whose matrix products gain little from a second thread, so on 2 cores two
chapters with one thread each finish in about two thirds of the time of the same chapters one after the
other with two threads (chapters 05 and 06: 222 s against 340 s), with the same outputs but for their printed
timings. Each kernel gets ``--threads`` threads (``OMP_NUM_THREADS``); a chapter that sets its own thread
count keeps at most that many.

The cache is the one jupyter-book reads: a chapter is looked up by the hash of its code cells and kernel, as
the build looks it up, and stored as the build stores it (executed in the chapter's folder, with the
``execute`` timeout and ``allow_errors`` of ``_config.yml``). A chapter that fails is not stored: this script
prints its error and exits with status 1 once the others are done (``make book`` stops there).

Each worker gets its own package cache (``$LANGEDIT_CACHE``, ``data.caches``): the package writes a cache entry
in place, so two chapters filling the same entry at once could read each other's half-written file. A worker's
cache starts as links to every file of the shared cache; what a worker adds is moved into the shared cache
when all chapters are done (an entry two workers made is kept once).

    python scripts/execute_chapters.py [--jobs 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chapters(root: Path) -> list[Path]:
    """The notebooks of the book's table of contents (``_toc.yml``), in its order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    found = [root / f"{name}.ipynb" for name in [toc.get("root", ""), *files]]
    return [path for path in found if path.is_file()]


def linked_copy(source: Path, target: Path) -> None:
    """``target`` as a tree of folders whose files are symbolic links to ``source``'s."""
    for path in source.rglob("*") if source.is_dir() else []:
        if path.is_file():
            link = target / path.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())


def merge_back(worker: Path, shared: Path) -> int:
    """Move the files ``worker`` made (not its links) into ``shared`` where ``shared`` lacks them; returns how
    many were moved. A file both had is kept as ``shared`` has it."""
    moved = 0
    for path in sorted(worker.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.name.endswith(".partial"):
            target = shared / path.relative_to(worker)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), str(target))
                moved += 1
    return moved


def _start_worker(caches, threads: int) -> None:
    """A worker process: its own package cache (taken from the queue ``caches``) and thread count, which the
    kernels it starts inherit."""
    os.environ["LANGEDIT_CACHE"] = caches.get()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def execute(path: str, timeout: int | None, allow_errors: bool) -> tuple[str, str | None, float, str | None]:
    """Execute one chapter in its folder: ``(path, executed notebook as JSON or None, seconds, error)``."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(
        notebook, cwd=str(Path(path).parent), timeout=timeout, allow_errors=allow_errors, meta_override=True
    )
    if result.err is not None:
        return path, None, result.time, result.exc_string or repr(result.err)
    return path, nbformat.writes(notebook), result.time, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per chapter's kernel (default 1)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder (default: this repository)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        parser.error(f"--jobs and --threads must be at least 1, got {args.jobs} and {args.threads}")
    import multiprocessing

    import nbformat
    import yaml
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    root = args.root.resolve()
    execute_config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")).get("execute", {})
    if execute_config.get("execute_notebooks") != "cache":
        print(f"{root / '_config.yml'}: execute_notebooks is not 'cache'; nothing to do here")
        return 0
    timeout, allow_errors = execute_config.get("timeout", 30), execute_config.get("allow_errors", False)
    cache = get_cache(str(root / "_build" / ".jupyter_cache"))
    todo = []
    for path in chapters(root):
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            todo.append(path)
    print(f"{len(todo)} chapters to execute, {args.jobs} at a time with {args.threads} thread(s) each")
    if not todo:
        return 0

    from langedit_mini.data.caches import cache_root

    shared = cache_root()
    workers = root / "_build" / ".chapter-caches"
    shutil.rmtree(workers, ignore_errors=True)
    queue = multiprocessing.Manager().Queue()
    for index in range(args.jobs):
        folder = workers / f"worker-{index}"
        folder.mkdir(parents=True)
        linked_copy(shared, folder)
        queue.put(str(folder))
    failed, start = [], time.perf_counter()
    with ProcessPoolExecutor(args.jobs, initializer=_start_worker, initargs=(queue, args.threads)) as pool:
        futures = [pool.submit(execute, str(path), timeout, allow_errors) for path in todo]
        for future in as_completed(futures):
            path, text, seconds, error = future.result()
            name = Path(path).relative_to(root)
            if error is not None:
                failed.append(name)
                print(f"{name}: FAILED after {seconds:.0f} s\n{error}", file=sys.stderr)
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(
                CacheBundleIn(nbformat.reads(text, as_version=4), record.uri, data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            print(f"{name}: {seconds:.0f} s")
    moved = sum(merge_back(folder, shared) for folder in sorted(workers.iterdir()))
    shutil.rmtree(workers, ignore_errors=True)
    seconds = time.perf_counter() - start
    print(f"{len(todo) - len(failed)} chapters executed in {seconds:.0f} s; {moved} cache files kept")
    if failed:
        print(f"failed: {', '.join(map(str, failed))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
