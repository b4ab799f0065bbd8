"""The book build's execution of every chapter, checked once: no errors, strict cells as stored.

``make book`` executes each chapter on its defaults into the build's execution cache
(``_build/.jupyter_cache``, from which the pages are rendered). These tests read that execution instead of
running every chapter a second time (what ``nbval`` did), looked up as the build looks it up, by the hash of
the chapter's current source (the copies under ``_build/jupyter_execute`` keep no outputs when the build
took a chapter from the cache): it must exist, contain no error, and every cell tagged
``nbval-check-output`` must print what the committed notebook stores for it (after the
substitutions of ``tests/nbval_sanitize.cfg``: addresses, durations, temporary paths). Without a
build they skip, unless ``LANGEDIT_REQUIRE_BOOK=1`` (``make test`` and CI), where a missing build fails.
"""

import configparser
import os
import re

import nbformat
import pytest
from test_notebooks import NOTEBOOKS, ROOT

pytestmark = pytest.mark.chapter

CACHE = ROOT / "_build" / ".jupyter_cache"
STRICT_TAG = "nbval-check-output"


def substitutions() -> list[tuple[re.Pattern, str]]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(re.compile(parser[section]["regex"]), parser[section]["replace"]) for section in parser.sections()]


SANITIZE = substitutions()


def sanitized_stdout(cell) -> str:
    text = "".join(
        o.get("text", "")
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )
    for pattern, replacement in SANITIZE:
        text = pattern.sub(replacement, text)
    return text


def executed_copy(notebook):
    """The build's execution of the chapter's current source, from the build's cache."""
    if not (CACHE / "global.db").exists():
        if os.environ.get("LANGEDIT_REQUIRE_BOOK") == "1":
            raise AssertionError(f"LANGEDIT_REQUIRE_BOOK=1 but {CACHE} is missing: build the book (`make book`)")
        pytest.skip("book not built; run `make book` first (make test and CI set LANGEDIT_REQUIRE_BOOK=1)")
    from jupyter_cache import get_cache

    try:
        _, executed = get_cache(str(CACHE)).merge_match_into_notebook(nbformat.read(notebook, as_version=4))
    except KeyError:
        raise AssertionError(
            f"the build executed another version of {notebook.name}: rebuild the book (`make book`)"
        ) from None
    return executed


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_sanitizing_rules_are_read_and_change_what_they_should():
    text = {"outputs": [{"output_type": "stream", "name": "stdout", "text": "at 0x7f3a in 12.5 s, /tmp/abc x"}]}
    assert len(SANITIZE) == 3
    assert sanitized_stdout(text) == "at 0xADDRESS in DURATION, TMPPATH x"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_executed_from_its_current_source_without_errors(notebook):
    executed = code_cells(executed_copy(notebook))
    source = code_cells(nbformat.read(notebook, as_version=4))
    assert [c.source for c in executed] == [c.source for c in source], (
        f"the build executed another version of {notebook.name}: rebuild the book (`make book`)"
    )
    assert all(cell.execution_count is not None for cell in executed), "a cell of the build was not executed"
    errors = [o for cell in executed for o in cell.outputs if o.output_type == "error"]
    assert errors == [], f"{notebook.name}: {errors[0].ename}: {errors[0].evalue}" if errors else ""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_strict_cells_print_what_the_chapter_stores(notebook):
    executed = code_cells(executed_copy(notebook))
    source = code_cells(nbformat.read(notebook, as_version=4))
    strict = [(index, cell) for index, cell in enumerate(source) if STRICT_TAG in cell.metadata.get("tags", [])]
    assert strict, f"{notebook.name} has no cell tagged {STRICT_TAG}"
    for index, cell in strict:
        stored, ran = sanitized_stdout(cell), sanitized_stdout(executed[index])
        assert stored, f"{notebook.name} code cell {index}: nothing stored (run `make notebooks`)"
        assert ran == stored, f"{notebook.name} code cell {index} printed something else than it stores"
