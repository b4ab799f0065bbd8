"""``scripts/execute_chapters.py``: the book's chapters executed in parallel into the cache the build reads."""

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "execute_chapters.py"

#: a chapter that reports its kernel's threads, reads a file of the shared package cache and adds one
CHAPTER = """import os, pathlib
print("threads", os.environ["OMP_NUM_THREADS"])
stats = pathlib.Path(os.environ["LANGEDIT_CACHE"]) / "stats"
print((stats / "seed.txt").read_text())
stats.mkdir(parents=True, exist_ok=True)
(stats / "{name}.txt").write_text("{name}")"""


def load_script():
    """The script as a module, registered by its name: its workers receive its functions by that name."""
    spec = importlib.util.spec_from_file_location("execute_chapters", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["execute_chapters"] = module
    spec.loader.exec_module(module)
    return module


def write_book(root: Path, chapters: dict) -> None:
    root.mkdir(parents=True)
    (root / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 120\n  allow_errors: false\n")
    toc = {"format": "jb-book", "root": "intro", "chapters": [{"file": f"notebooks/{name}"} for name in chapters]}
    (root / "_toc.yml").write_text(json.dumps(toc))  # JSON is YAML
    (root / "intro.md").write_text("# A book\n")
    (root / "notebooks").mkdir()
    for name, source in chapters.items():
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        nbformat.write(notebook, root / "notebooks" / f"{name}.ipynb")


def test_chapters_run_in_parallel_into_the_builds_cache_and_their_caches_are_merged(tmp_path, monkeypatch, capsys):
    from jupyter_cache import get_cache

    script = load_script()
    shared = tmp_path / "shared"
    (shared / "stats").mkdir(parents=True)
    (shared / "stats" / "seed.txt").write_text("seeded")
    monkeypatch.setenv("LANGEDIT_CACHE", str(shared))
    book = tmp_path / "book"
    write_book(book, {"a": CHAPTER.format(name="a"), "b": CHAPTER.format(name="b"), "c": "raise ValueError('boom')"})
    assert [p.name for p in script.chapters(book)] == ["a.ipynb", "b.ipynb", "c.ipynb"]

    assert script.main(["--root", str(book), "--jobs", "2"]) == 1  # c fails: named, not stored, the others are
    err = capsys.readouterr().err
    assert "notebooks/c.ipynb: FAILED" in err and "boom" in err
    cache = get_cache(str(book / "_build" / ".jupyter_cache"))
    for name in ("a", "b"):
        notebook = nbformat.read(book / "notebooks" / f"{name}.ipynb", as_version=4)
        record, executed = cache.merge_match_into_notebook(notebook)  # found as the build finds it
        assert executed.cells[0].outputs[0]["text"] == "threads 1\nseeded\n"
        assert (shared / "stats" / f"{name}.txt").read_text() == name  # what a worker made reaches the shared cache
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(book / "notebooks" / "c.ipynb", as_version=4))
    assert not (shared / "stats" / "seed.txt").is_symlink() and (shared / "stats" / "seed.txt").read_text() == "seeded"
    assert not (book / "_build" / ".chapter-caches").exists()

    (book / "notebooks" / "c.ipynb").unlink()  # now every chapter is cached: nothing runs
    assert script.main(["--root", str(book)]) == 0
    assert "0 chapters to execute" in capsys.readouterr().out


def test_bad_options_are_refused(tmp_path):
    script = load_script()
    for options in (["--jobs", "0"], ["--threads", "-1"]):
        with pytest.raises(SystemExit) as stop:
            script.main(["--root", str(tmp_path), *options])
        assert stop.value.code == 2


def test_the_build_then_executes_nothing(tmp_path, monkeypatch):
    """jupyter-book finds the executed chapter in its cache (a chapter that would write a file if it ran)."""
    import subprocess

    monkeypatch.setenv("LANGEDIT_CACHE", str(tmp_path / "shared"))
    book = tmp_path / "book"
    write_book(book, {"a": "import pathlib\npathlib.Path('ran.txt').write_text('ran')\nprint('executed')"})
    assert load_script().main(["--root", str(book)]) == 0
    (book / "notebooks" / "ran.txt").unlink()
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    build = subprocess.run([str(jupyter_book), "build", str(book)], capture_output=True, text=True, check=True)
    assert "Using cached notebook" in build.stdout + build.stderr
    assert not (book / "notebooks" / "ran.txt").exists()  # not executed again
    assert "executed" in (book / "_build" / "html" / "notebooks" / "a.html").read_text()
