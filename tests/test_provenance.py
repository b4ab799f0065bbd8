"""The run hash follows what a run executes, not the prose around it; recorded equivalences keep verified runs
current; a run's record says which libraries computed it."""

import shutil

import pytest

from langedit_mini.study import provenance
from langedit_mini.study.provenance import code_digest, is_current, package_hash, read_equivalences

SOURCE = '''"""A module docstring."""

import math


def area(radius):
    """The area of a circle."""
    return math.pi * radius**2  # pi r squared
'''


def test_the_digest_ignores_comments_docstrings_and_layout_but_not_a_token():
    same = [
        SOURCE.replace("# pi r squared", "# the area, from the radius"),
        SOURCE.replace('"""The area of a circle."""', '"""The area of a disc, in squared units."""'),
        SOURCE.replace('"""A module docstring."""\n', ""),
        SOURCE.replace("radius**2", "radius ** 2").replace("\n\n\ndef", "\n\ndef"),
    ]
    assert all(code_digest(text) == code_digest(SOURCE) for text in same)
    other = [SOURCE.replace("radius**2", "radius**3"), SOURCE.replace("math.pi", "math.tau"), SOURCE + "x = 1\n"]
    assert all(code_digest(text) != code_digest(SOURCE) for text in other)


def test_the_run_hash_keeps_a_prose_fix_and_changes_with_one_token_of_code(tmp_path, monkeypatch):
    """On a copy of the package: a comment and a docstring changed in a module every run executes leave the
    hash as it was; one token of its code changes it."""
    copy = tmp_path / "langedit_mini"
    shutil.copytree(provenance.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE", copy)
    before = package_hash()
    updates = copy / "core" / "updates.py"
    text = updates.read_text()
    assert "alpha: float = 10.0" in text and '"""' in text
    prose = text.replace('"""', '"""Reworded. ', 1).replace("\n", "\n# a new comment\n", 1)
    updates.write_text(prose)
    assert package_hash() == before
    updates.write_text(prose.replace("alpha: float = 10.0", "alpha: float = 1.0", 1))  # one token
    assert package_hash() != before


def test_a_run_is_current_through_recorded_equivalences(tmp_path):
    path = tmp_path / "equivalences.json"
    assert read_equivalences(path) == {} and not is_current("a" * 16, "c" * 16, {})
    provenance.record_equivalence("a" * 16, "b" * 16, [{"run": "e007/seed0-MEMIT", "evaluations": 0.0}], path)
    provenance.record_equivalence("b" * 16, "c" * 16, [], path)
    records = read_equivalences(path)
    assert records["a" * 16]["equivalent_to"] == "b" * 16 and records["a" * 16]["evidence"][0]["evaluations"] == 0.0
    assert is_current("a" * 16, "c" * 16, records)  # through b
    assert is_current("c" * 16, "c" * 16, records) and not is_current("d" * 16, "c" * 16, records)
    assert not is_current("a" * 16, "e" * 16, records)  # the chain ends elsewhere
    with pytest.raises(ValueError, match="two different hashes"):
        provenance.record_equivalence("a" * 16, "a" * 16, [], path)


def test_the_record_names_the_libraries_that_computed_a_run():
    facts = provenance.machine()
    assert {"torch", "transformers", "numpy", "pandas", "torch_threads"} <= set(facts)
