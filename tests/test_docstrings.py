"""The docstrings the API reference renders (``book/api.md``, autodoc with ``:members:``) are valid
reStructuredText: the book build fails on any Sphinx warning (``-W``), so a docstring with ``Claim``s or an
unindented example would fail CI after a 10-minute build. Checked here in seconds with docutils, on the
markup errors autodoc reports (roles and directives that only Sphinx knows are not errors here)."""

import importlib
import inspect
import re
from pathlib import Path

import pytest
from docutils import nodes
from docutils.core import publish_doctree

ROOT = Path(__file__).resolve().parents[1]
MODULES = re.findall(r"automodule:: (\S+)", (ROOT / "book" / "api.md").read_text())
# what Sphinx adds to plain docutils, and so not an error in a docstring
SPHINX_ONLY = ("Unknown interpreted text role", "Unknown directive type", "No role entry", "No directive entry")


def _documented(module):
    """The module's docstring and those of what autodoc's ``:members:`` shows: public functions and classes
    defined in the module, and the public methods of those classes."""
    yield module.__name__, module.__doc__
    for name, member in vars(module).items():
        if name.startswith("_") or getattr(member, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(member) or inspect.isclass(member):
            yield f"{module.__name__}.{name}", member.__doc__
        if inspect.isclass(member):
            for method_name, method in vars(member).items():
                if not method_name.startswith("_") and inspect.isfunction(method):
                    yield f"{module.__name__}.{name}.{method_name}", method.__doc__


def _problems(text: str) -> list[str]:
    tree = publish_doctree(
        inspect.cleandoc(text), settings_overrides={"report_level": 5, "halt_level": 5, "warning_stream": False}
    )
    return [
        f"line {message.get('line')}: {message.astext().splitlines()[0]}"
        for message in tree.findall(nodes.system_message)
        if message["level"] >= 2 and not any(known in message.astext() for known in SPHINX_ONLY)
    ]


def test_the_api_reference_names_modules():
    assert len(MODULES) > 30 and "langedit_mini.study.verdicts" in MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_every_rendered_docstring_is_valid_restructured_text(module_name):
    module = importlib.import_module(module_name)
    found = {where: problems for where, text in _documented(module) if text and (problems := _problems(text))}
    assert not found, f"docstrings the book build would reject: {found}"


def test_the_check_finds_the_markup_errors_the_book_build_failed_on():
    assert _problems("as ``Claim``s a chapter requires")
    assert _problems('"+0.014 ± 0.008 *" for a row')
    assert _problems("A summary.\n\n    from x import y\nreport.summary")
    assert not _problems("as ``Claim`` objects, see :func:`edit`.\n\nFor example::\n\n    from x import y\n")
