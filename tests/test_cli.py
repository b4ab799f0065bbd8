"""The command line on the pocket model: one batch, a resumable sequence, shareable statistics, clear errors."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from langedit_mini.data.datasets import load_pocket
from langedit_mini.interface.cli import main
from langedit_mini.model.statistics import load_statistics

REQUESTS, _ = load_pocket(languages=["en"])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    records = [{"prompts": r.question, "subject": r.subject, "target_new": r.target} for r in REQUESTS[:4]]
    path = folder / "requests.json"
    path.write_text(json.dumps(records))
    return folder, path


def test_edit_writes_the_report_the_records_and_shareable_statistics(data, capsys):
    folder, path = data
    out = folder / "edit"
    assert main(["edit", "--model", "pocket", "--data", str(path), "--method", "MEMIT", "--out", str(out)]) == 0
    table = pd.read_csv(out / "requests.csv")
    assert len(table) == 4 and {"before", "after", "reliability TF", "target reached"} <= set(table.columns)
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert summary.loc["reliability", "teacher-forced"] > 0.5
    statistics, metadata = load_statistics(out / "statistics.safetensors")
    assert list(statistics) == [0] and metadata["corpus"] == "pocket preserved-knowledge corpus"
    assert (out / "records" / "batch_000.safetensors").exists() and json.loads((out / "config.json").read_text())
    assert "MEMIT on layers [0]: 4 requests" in capsys.readouterr().out
    # the statistics file is importable by the next run
    again = folder / "edit-again"
    arguments = ["edit", "--model", "pocket", "--data", str(path), "--method", "AlphaEdit", "--out", str(again)]
    assert main(arguments + ["--statistics", str(out / "statistics.safetensors"), "--set", "alpha=100"]) == 0
    assert "statistics from" in capsys.readouterr().out
    assert json.loads((again / "config.json").read_text())["settings"]["alpha"] == 100


def test_sequence_prints_a_line_per_batch_and_resumes(data, capsys):
    folder, path = data
    out = folder / "sequence"
    arguments = [
        "sequence",
        "--model",
        "pocket",
        "--data",
        str(path),
        "--method",
        "LangEdit-exact",
        "--out",
        str(out),
        "--batch-size",
        "2",
    ]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "batch 1/2 (en)" in printed and "batch 2/2 (en)" in printed and "null space left" in printed
    first = pd.read_csv(out / "summary.csv", index_col=0)
    assert main(arguments) == 0  # everything on disk: replayed, nothing edited again
    assert "batch 1/2" not in capsys.readouterr().out
    assert pd.read_csv(out / "summary.csv", index_col=0).equals(first)


def test_bad_input_gives_a_message_and_exit_status_2(data, tmp_path):
    folder, _ = data
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"prompts": "The capital of France is", "subject": "Spain", "target_new": "Lyon"}]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "langedit_mini.interface.cli",
            "edit",
            "--model",
            "pocket",
            "--data",
            str(bad),
            "--method",
            "FT",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "does not occur in the prompt" in result.stderr
    assert "Traceback" not in result.stderr


def test_records_that_cannot_be_requests_are_skipped_counted_and_listed_when_asked(data, tmp_path, capsys):
    records = [{"prompts": r.question, "subject": r.subject, "target_new": r.target} for r in REQUESTS[:2]]
    records.insert(1, {"prompts": "The capital of France is", "subject": "Spain", "target_new": "Lyon"})
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(records))
    out = tmp_path / "skipping"
    arguments = ["edit", "--model", "pocket", "--data", str(path), "--method", "FT", "--out", str(out)]
    assert main(arguments) == 2  # without the flag: an error naming the record
    assert main(arguments + ["--skip-invalid"]) == 0
    assert "skipped 1 of 3 records" in capsys.readouterr().out
    assert [entry["record"] for entry in json.loads((out / "skipped.json").read_text())] == [1]
    assert len(pd.read_csv(out / "requests.csv")) == 2
