"""The repository address behind the Colab buttons is one setting: _config.yml and every chapter agree,
and scripts/set_repository.py moves both to a fork."""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from set_repository import configured_repository, notebook_clone_urls, set_repository  # noqa: E402


def test_every_chapter_clones_the_configured_repository():
    url, _ = configured_repository()
    urls = notebook_clone_urls()
    assert len(urls) == len(list((ROOT / "notebooks").glob("*.ipynb"))) >= 9
    assert set(urls.values()) == {url}


def test_a_fork_is_one_command(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.csv", "_*"))
    set_repository("https://github.com/someone/fork", "dev", root=tmp_path)
    assert configured_repository(tmp_path) == ("https://github.com/someone/fork", "dev")
    assert set(notebook_clone_urls(tmp_path).values()) == {"https://github.com/someone/fork"}
    text = (tmp_path / "notebooks" / "01_theory.ipynb").read_text()
    assert "--branch dev https://github.com/someone/fork" in text
