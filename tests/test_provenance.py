"""The run hash follows what a run executes, not the prose around it; recorded equivalences keep verified runs
current; a run's record says which libraries computed it."""

import hashlib
import shutil
import time

import pytest

from langedit_mini.study import provenance
from langedit_mini.study.provenance import STUDY_ENTRY, code_digest, is_current, package_hash, read_equivalences

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


def test_a_large_file_is_hashed_once_per_version_and_a_rewrite_is_seen(tmp_path, hash_work, monkeypatch):
    """Weights are read once while they stay as they are; rewritten in place with as many bytes, they are read
    again, also when the rewrite comes within the file system's time resolution of the first hash."""
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * provenance.LARGE_FILE)
    first = provenance.file_digest(weights)
    weights.write_bytes(b"b" * provenance.LARGE_FILE)  # at once: too fresh to be remembered, so read again
    second = provenance.file_digest(weights)
    assert first != second and provenance.file_digest(weights) == second and hash_work.read == 3
    monkeypatch.setattr(provenance, "SETTLED_S", 0.05)  # well above the file times' resolution (a few ms here)
    time.sleep(0.1)
    assert provenance.file_digest(weights) == provenance.file_digest(weights) == second and hash_work.read == 4
    weights.write_bytes(b"c" * provenance.LARGE_FILE)
    assert provenance.file_digest(weights) not in (first, second) and hash_work.read == 5
    small = tmp_path / "config.json"
    small.write_text("{}")
    assert provenance.file_digest(small) == hashlib.sha256(b"{}").hexdigest()


def test_a_module_is_parsed_once_per_content(hash_work):
    """Hashing the package again parses nothing; an edited module (another content) would be parsed anew."""
    assert package_hash() == package_hash() and hash_work.parsed > 0
    parsed = hash_work.parsed
    assert package_hash() and hash_work.parsed == parsed
    assert provenance.read_source(provenance.module_path(STUDY_ENTRY))[1] == code_digest(
        provenance.module_path(STUDY_ENTRY).read_text(encoding="utf-8")
    )
