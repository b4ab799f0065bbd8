"""Re-execute the notebooks and store only the outputs that are compared strictly.

``tests/test_executed_chapters.py`` reads the book build's execution of every chapter and compares
the outputs of cells tagged ``nbval-check-output`` with the outputs stored in the notebook (the tag
also serves ``pytest --nbval-lax`` for whoever runs nbval by hand). This script runs each notebook
with papermill on its default parameters, keeps the outputs of those tagged cells and drops every
other output (figures, tables), so the committed notebooks stay small and reviewable. Run it after
changing what a tagged cell prints: ``make notebooks``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

STRICT_TAG = "nbval-check-output"


def refresh(path: Path) -> int:
    """Execute ``path`` and rewrite it in place; returns the number of strict cells kept."""
    source = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        executed_path = Path(scratch) / path.name
        papermill.execute_notebook(str(path), str(executed_path), cwd=str(path.parent), progress_bar=False)
        executed = nbformat.read(executed_path, as_version=4)
    kept = 0
    for original, ran in zip(source.cells, executed.cells):
        if original.cell_type != "code":
            continue
        if STRICT_TAG in original.metadata.get("tags", []):
            # a cell with outputs but no execution count reads as unrun (nbval, the executed-chapter check): keep it.
            original.execution_count = ran.execution_count
            original.outputs = [
                output for output in ran.outputs if output.output_type == "stream" and output.get("name") == "stdout"
            ]
            kept += 1
        else:
            original.execution_count = None
            original.outputs = []
    nbformat.write(source, path)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook under notebooks/")
    arguments = parser.parse_args(argv)
    paths = arguments.notebooks or sorted(Path("notebooks").glob("*.ipynb"))
    for path in paths:
        print(f"{path}: {refresh(path)} strict cells stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
