"""Point the book at another repository (a fork): the one setting behind the Colab buttons.

    python scripts/set_repository.py https://github.com/<you>/langedit-mini [--branch main]

The repository address lives in ``_config.yml`` (``repository.url``, ``repository.branch``): the
book's repository and Colab buttons open ``<url>/blob/<branch>/notebooks/<chapter>.ipynb``. Each
chapter's first cell clones the same address when it runs in Colab (a notebook opened in Colab has
nothing else to read it from), so this script rewrites both; ``tests/test_book.py`` checks they agree.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CLONE = re.compile(r"git clone --depth 1 (?:--branch \S+ )?(\S+) /content/langedit-mini")


def configured_repository(root: Path = ROOT) -> tuple[str, str]:
    text = (root / "_config.yml").read_text(encoding="utf-8")
    url = re.search(r"^repository:\n(?:  .*\n)*?  url: (\S+)", text, flags=re.M).group(1)
    branch = re.search(r"^repository:\n(?:  .*\n)*?  branch: (\S+)", text, flags=re.M).group(1)
    return url, branch


def notebook_clone_urls(root: Path = ROOT) -> dict[str, str]:
    urls = {}
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            found = CLONE.search(cell.source)
            if found:
                urls[path.name] = found.group(1)
                break
    return urls


def set_repository(url: str, branch: str = "main", root: Path = ROOT) -> None:
    if not re.fullmatch(r"https://\S+", url):
        raise SystemExit(f"expected an https:// repository address, got {url!r}")
    config = root / "_config.yml"
    text = config.read_text(encoding="utf-8")
    old_url, old_branch = configured_repository(root)
    text = text.replace(f"  url: {old_url}", f"  url: {url}", 1).replace(
        f"  branch: {old_branch}", f"  branch: {branch}", 1
    )
    config.write_text(text, encoding="utf-8")
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        changed = False
        for cell in notebook.cells:
            if CLONE.search(cell.source):
                clone = f"git clone --depth 1 --branch {branch} {url} /content/langedit-mini"
                cell.source = re.sub(
                    r"git clone --depth 1 (--branch \S+ )?\S+ /content/langedit-mini", clone, cell.source
                )
                changed = True
        if changed:
            nbformat.write(notebook, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--branch", default="main")
    arguments = parser.parse_args(argv)
    set_repository(arguments.url, arguments.branch)
    print(f"the book and its chapters now point at {arguments.url} ({arguments.branch})")


if __name__ == "__main__":
    main()
