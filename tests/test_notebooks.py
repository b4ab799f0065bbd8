"""The chapters as notebooks: structure, papermill parameters, and parameter validation.

The book build executes each notebook on its defaults and ``test_executed_chapters.py`` checks that
execution; these tests check the rest: that every chapter is in the book, starts with the Colab
cell and its parameters, has strict cells with stored outputs, and runs with other parameters too.
"""

import ast
import re
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_every_notebook_is_a_chapter_and_every_chapter_exists():
    listed = toc_files()
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in listed, f"{path.name} is not in _toc.yml"
    for entry in listed:
        assert any((ROOT / f"{entry}{suffix}").exists() for suffix in (".ipynb", ".md")), f"{entry} has no file"


def test_intro_lists_the_chapters_in_the_order_of_the_table_of_contents():
    """The intro's numbered list names every chapter, in the book's order, by the start of its title."""
    intro = (ROOT / "book" / "intro.md").read_text()
    named = re.findall(r"^\d+\. \*\*(.+?)\*\*", intro, flags=re.MULTILINE)
    chapters = [entry for entry in toc_files() if entry.startswith("notebooks/")]
    titles = []
    for entry in chapters:
        notebook = nbformat.read(ROOT / f"{entry}.ipynb", as_version=4)
        first = next(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
        titles.append(first.splitlines()[0].removeprefix("# "))
    assert len(named) == len(titles), f"the intro lists {len(named)} chapters, the book has {len(titles)}"
    for name, title in zip(named, titles):
        assert title.lower().startswith(name.lower()), f"the intro says {name!r} where the book has {title!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_colab_cell_then_parameters(path):
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    first = code_cells[0].source
    assert first.count('"google.colab" in sys.modules') == 2 and "pip" in first and "git clone" in first, (
        "first cell must fetch and install the project only in Colab"
    )
    assert "parameters" in code_cells[1].metadata.get("tags", []), "second code cell must be the papermill parameters"
    assert notebook.metadata["kernelspec"]["name"] == "python3"


HIDDEN = {"hide-input", "hide-cell", "remove-input", "remove-cell"}


def import_count(source: str) -> int:
    """How many top-level import statements a cell's code holds (IPython magics and all)."""
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    return sum(isinstance(node, (ast.Import, ast.ImportFrom)) for node in tree.body)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_plumbing_cells_are_collapsed(path):
    """A reader sees prose, figures and tables first: the set-up cell after the parameters (imports, loading)
    is collapsed behind a toggle, and no visible cell is mostly imports."""
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    setup = code_cells[2]
    assert HIDDEN & set(setup.metadata.get("tags", [])), f"the set-up cell {setup.id} needs a hide-input tag"
    for cell in code_cells:
        if HIDDEN & set(cell.metadata.get("tags", [])) or "parameters" in cell.metadata.get("tags", []):
            continue
        assert import_count(cell.source) <= 5, f"cell {cell.id} is visible and holds more than five imports"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_strict_cells_with_stored_checks(path):
    """Tagged cells are compared with their stored outputs: they must exist and state checked claims."""
    notebook = nbformat.read(path, as_version=4)
    strict = [cell for cell in notebook.cells if "nbval-check-output" in cell.metadata.get("tags", [])]
    assert strict, "a chapter needs at least one cell tagged nbval-check-output"
    stored = "".join(output.get("text", "") for cell in strict for output in cell.outputs)
    assert stored.count("holds: ") >= 2, "strict cells must store the claims they check (run `make notebooks`)"
    assert "claim failed" not in stored


def run_notebook(name: str, tmp_path: Path, **parameters) -> str:
    """Execute a chapter with papermill and return all its stream output."""
    output = tmp_path / name
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(output),
        parameters=parameters,
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    executed = nbformat.read(output, as_version=4)
    return "".join(o.get("text", "") for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs)


@pytest.mark.chapter
def test_theory_chapter_holds_for_other_parameters(tmp_path):
    text = run_notebook("01_theory.ipynb", tmp_path, d_k=20, d_v=3, n=2, n_previous=7, alpha=0.5, seed=7)
    assert text.count("holds: ") == 10
    assert "null space: 10 of d_k=20 dimensions" in text


@pytest.mark.chapter
def test_guarantee_chapter_with_a_small_world_runs_out_of_capacity(tmp_path):
    text = run_notebook(
        "02_guarantee.ipynb", tmp_path, d_k=128, d_v=8, edits_per_language=6, n_languages=4, capacity_d_k=64, seed=3
    )
    assert "holds: LangEdit-exact: max interference (<= 1e-08)" in text
    assert "LangEdit-exact refused the batch that did not fit" in text
    assert "null space exhausted" in text


@pytest.mark.chapter
@pytest.mark.parametrize(
    "name, parameters, message",
    [
        ("02_guarantee.ipynb", {"edits_per_language": -1}, "edits_per_language must be a positive integer"),
        ("02_guarantee.ipynb", {"spectrum": "flat"}, "spectrum must be one of"),
        ("02_guarantee.ipynb", {"alpha": 0.0}, "parameter alpha must be a positive number"),
        ("01_theory.ipynb", {"n": 5}, "need 2 \\* n <= d_k // 2"),
        ("01_theory.ipynb", {"d_k": "12"}, "d_k must be a positive integer"),
        ("05_sequential.ipynb", {"schedule": "blocks"}, "parameter schedule must be one of"),
        ("05_sequential.ipynb", {"batch_size": 0}, "parameter batch_size must be a positive integer"),
        ("05_sequential.ipynb", {"languages": ["en", "xx"]}, "unknown language code 'xx'"),
        ("05_sequential.ipynb", {"methods": ["ROME"]}, "methods must be a non-empty list"),
        ("05_sequential.ipynb", {"alpha": -1}, "parameter alpha must be None or a positive number"),
        ("05_sequential.ipynb", {"model_name": "llama"}, "parameter model_name='llama'"),
        ("06_ablations.ipynb", {"batch_sizes": [3]}, "parameter batch_sizes must be positive integers dividing"),
        ("06_ablations.ipynb", {"leftover_fractions": [1.5]}, r"leftover_fractions must be a list .* in \(0, 1\)"),
        ("06_ablations.ipynb", {"languages": ["en"]}, "parameter languages must be a list of at least 2 language"),
        ("10_performance.ipynb", {"results_dir": "/nonexistent"}, "parameter results_dir='/nonexistent'"),
        ("05a_main_study.ipynb", {"models": ["llama"]}, "each one of smollm2-135m, gemma-3-270m, got \\[.llama.\\]"),
        ("05a_main_study.ipynb", {"models": []}, "parameter models must be a list"),
        ("09_density.ipynb", {"model_name": "llama"}, "parameter model_name must be one of"),
        ("08_real_llms.ipynb", {"run_mode": "gpu"}, "run_mode must be one of"),
        ("08_real_llms.ipynb", {"general_tasks": ["squad"]}, "unknown general-ability task 'squad'"),
        ("08_real_llms.ipynb", {"edits_per_language": 0}, "parameter edits_per_language must be a positive integer"),
        ("08_real_llms.ipynb", {"edit_layers": 3}, "parameter edit_layers must be None or a list"),
        ("09_density.ipynb", {"guide_facts": 0}, "parameter guide_facts must be a positive integer"),
    ],
)
def test_bad_parameters_stop_the_notebook_with_a_message_naming_them(monkeypatch, name, parameters, message):
    with pytest.raises(Exception, match=message):
        run_opening_cells(name, monkeypatch, **parameters)


@pytest.mark.chapter
def test_a_bad_parameter_stops_the_chapter_in_its_kernel(tmp_path):
    """The end-to-end form of the test above, once: papermill, a fresh kernel, the chapter's error."""
    with pytest.raises(papermill.PapermillExecutionError, match="parameter model_name='llama'"):
        run_notebook("05_sequential.ipynb", tmp_path, model_name="llama")


def run_opening_cells(name: str, monkeypatch, cells: int = 3, **parameters) -> dict:
    """Execute a chapter's first ``cells`` code cells in this process, the way papermill would run them (the
    parameters cell, then ``parameters`` injected after it, in the notebooks folder), and return the namespace.

    Every chapter checks its parameters in its third code cell, before any heavy work, so a bad parameter
    raises here in a fraction of a second instead of after a kernel's start-up and imports (about 8 s each on
    2 cores); ``test_a_bad_parameter_stops_the_chapter_in_its_kernel`` runs the same path through papermill.
    """
    from IPython.display import display

    monkeypatch.chdir(ROOT / "notebooks")
    code = [cell for cell in nbformat.read(ROOT / "notebooks" / name, as_version=4).cells if cell.cell_type == "code"]
    assert "parameters" in code[1].metadata.get("tags", []), f"{name}: the second code cell holds the parameters"
    namespace = {"__name__": "__main__", "display": display}
    for index, cell in enumerate(code[:cells]):
        exec(compile(cell.source, f"{name}, code cell {index}", "exec"), namespace)
        if index == 1:
            namespace.update(parameters)
    return namespace


@pytest.mark.chapter
def test_sequential_chapter_runs_on_a_real_dataset(tmp_path):
    """MzsRE from ../shared/datasets, a few edits in two languages on the pocket model. BMIKE-53 takes the same
    path after its loader (``test_datasets.test_a_sequential_study_edits_bmike53_records_as_loaded``)."""
    dataset = "mzsre"
    root = ROOT.parent / "shared" / "datasets"
    if not (root / "MzsRE").exists():
        pytest.skip(f"no shared datasets at {root}")
    text = run_notebook(
        "05_sequential.ipynb",
        tmp_path,
        dataset=dataset,
        dataset_root=str(root),
        languages=["en", "de"],
        edits_per_language=2,
        batch_size=2,
        seeds=[0],
        methods=["MEMIT", "LangEdit-exact"],
    )
    assert "delta: 2 batches (2 x 2 edits), 4 edits in en, de" in text
    # the structural claims hold on any dataset; the reliability bound is a pocket-world claim
    assert text.count("holds: ") == 2
    assert f"not required on {dataset}: its facts are foreign to the pocket model" in text
    assert "claim failed" not in text


@pytest.mark.chapter
def test_the_study_command_runs_in_parts_resumes_and_the_chapter_shows_them(tmp_path):
    """`make study`'s script at toy size: one run per seed and method (a direct call of the study code, its
    claims recorded as data), resumed where it stopped, merged into tables and provenance that the chapter
    reads back, with a warning once the editing code has changed."""
    import json
    import subprocess
    import sys

    from langedit_mini.study.findings import describe, stale_runs
    from langedit_mini.study.runner import merge as merge_parts

    output = tmp_path / "main"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "run_study.py"),
        "--edits-per-language",
        "2",
        "--batch-size",
        "2",
        "--seeds",
        "0",
        "--languages",
        "en",
        "de",
        "--methods",
        "MEMIT",
        "LangEdit-exact",
        "--output",
        str(output),
    ]
    subprocess.run(command + ["--max-runs", "1"], check=True, cwd=ROOT, capture_output=True)
    provenance = json.loads((output / "provenance.json").read_text())
    assert [part["name"] for part in provenance["parts"]] == ["seed0-MEMIT"]
    assert provenance["missing"] == ["seed0-LangEdit-exact"] and not provenance["complete"]
    assert "INCOMPLETE: not run yet: seed0-LangEdit-exact" in describe(provenance)
    second = subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True)
    assert "seed0-MEMIT: on disk" in second.stdout and "seed0-LangEdit-exact: running" in second.stdout
    provenance = json.loads((output / "provenance.json").read_text())
    assert provenance["complete"] and not stale_runs(provenance) and provenance["wall_s"] > 0
    part = json.loads((output / "parts" / "seed0-LangEdit-exact" / "part.json").read_text())
    assert {claim["claim"].split(" (")[0] for claim in part["claims"]} == {
        "every edit so far is scored after every batch",
        "LangEdit-exact never ran out of null space",
        "every method writes its edits",
    }
    assert part["failed_claims"] == [c for c in part["failed_claims"] if c.startswith("claim failed: ")]
    assert not (output / "parts" / "seed0-LangEdit-exact" / "05_sequential.ipynb").exists()  # a direct call
    table = (output / "main_table_teacher_forced.csv").read_text()
    assert "MEMIT" in table and "LangEdit-exact" in table
    assert "WARNING" not in describe(provenance)

    # a run made by other editing code is flagged; an interrupted one is reported, not merged
    part = output / "parts" / "seed0-MEMIT" / "part.json"
    info = json.loads(part.read_text())
    part.write_text(json.dumps(info | {"package_hash": "0" * 16}))
    (output / "parts" / "seed1-MEMIT.running").mkdir()
    merge_parts(output, [0, 1], ["MEMIT", "LangEdit-exact"])
    text = run_notebook(
        "05_sequential.ipynb",
        tmp_path,
        languages=["en", "de"],
        edits_per_language=2,
        batch_size=2,
        seeds=[0],
        methods=["MEMIT"],
        full_results=str(output),
    )
    assert f"made at commit(s) {info['commit']}" in text
    assert "WARNING: the editing code has changed since these full-scale results were made (runs seed0-MEMIT)" in text
    assert "interrupted, not merged: seed1-MEMIT.running" in text
    assert "2 of 4 planned runs" in text and "no full-scale results" not in text

    # parts that ran with other parameters are not one study
    other = output / "parts" / "seed0-LangEdit-exact" / "part.json"
    info = json.loads(other.read_text())
    other.write_text(json.dumps(info | {"parameters": info["parameters"] | {"edits_per_language": 3}}))
    with pytest.raises(ValueError, match="ran with edits_per_language=2 but part seed0-LangEdit-exact with 3"):
        merge_parts(output, [0], ["MEMIT", "LangEdit-exact"])


@pytest.mark.chapter
def test_the_density_chapter_reads_a_study_on_disk_and_says_what_is_missing(toy_density, tmp_path):
    """On a toy density study made by the study command's run_part (two points, two methods, two seeds) the
    chapter shows the runs, judges nothing at the paper's density (not run) and says which points are missing."""
    root = toy_density
    text = run_notebook(
        "09_density.ipynb", tmp_path, density_results=str(root), depth_results=str(tmp_path / "none"), guide_facts=1
    )
    assert "points not run yet: e007, e014, e028, e028-mt, e049" in text
    assert f"no depth probe under {tmp_path / 'none'}" in text
    assert "e028: not run yet" in text
    assert "not judged (not run)" in text or "not judged (no run of" in text
    assert "claim failed" not in text and text.count("holds: ") == 1  # the paper's point has no runs to check
