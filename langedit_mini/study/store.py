"""The store of results on disk: every file a study writes, written and read here, in one place.

Layout (``results/<study>/<model>/``; a study entry point writes nothing elsewhere):

* a **study** (``results/main/<model>/``, a density point ``results/density/<model>/<point>/``): one folder
  per run (seed and method) under ``parts/``, holding the raw tables (``RAW``, gzipped CSV) and
  ``part.json`` (the run's record: seed, method, parameters, claims, provenance). A run is written into
  ``<name>.running`` and renamed when it has finished, so an interrupted run is never taken for a finished
  one. Beside ``parts/``: the merged tables (CSV) and ``provenance.json`` (``write_merged``).
* a **tuning** (``results/tuning/<model>/``): ``runs.csv`` (one row per configuration run), ``tuning.json``
  (the grid, the choice, the provenance) and ``recheck.csv``.
* a **calibration** (``results/calibration/<model>/``): ``calibration.json`` (gates and provenance) and
  one CSV per measurement (``CALIBRATION_TABLES``).
* an **exploration** (``results/exploration/depth/L<layers>/``, ``results/exploration/positions/<model>/``):
  a trace summary and a JSON record each.
* a **diagnosis** (``results/diagnostics/<model>/forgetting.json``): rows and provenance in one JSON file.
* a **sweep** (``results/calibration/<model>/bands/``, ``.../preserved/``; ``Sweep``): one JSON record (the
  settings first, then the progress, then the summary with its provenance) and tables to which each finished
  unit of the sweep (a band, a sample size) appends its rows.

Every file is written under a temporary name and renamed (``write_atomic``), so a killed job never leaves
half a file. Readers raise an error that names the file and what it lacks.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

#: the raw result tables of a run (``experiment.StudyResult`` fields), one gzipped CSV each
RAW = ("evaluations", "probes", "transfer", "batches")
#: what identifies a row of each raw table (every other column but the timings is a measured value)
RAW_KEYS = {
    "evaluations": ("method", "seed", "after_batch", "batch", "request", "fact_id", "lang", "metric"),
    "probes": ("method", "seed", "after_batch", "lang", "probe", "metric"),
    "transfer": ("method", "seed", "edited in", "scored in", "fact_id"),
    "batches": ("method", "seed", "batch", "lang"),
}
PART_RECORD = "part.json"
PROVENANCE = "provenance.json"


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def write_json(path: str | Path, data: dict) -> Path:
    return write_atomic(path, json.dumps(data, indent=1, default=str) + "\n")


def read_json(path: str | Path, *, required=()) -> dict:
    """A JSON record; ``ValueError`` naming the file and the fields of ``required`` it lacks."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = [field for field in required if field not in data]
    if missing:
        raise ValueError(f"{path} lacks {missing}")
    return data


def write_table(path: str | Path, frame: pd.DataFrame, *, index: bool = False) -> Path:
    path = Path(path)
    return write_atomic(path, frame.to_csv(index=index))


# --- a study: one folder per run --------------------------------------------------------------------------


def part_name(seed: int, method: str) -> str:
    return f"seed{seed}-{method}"


def begin_part(output: str | Path, name: str) -> Path:
    """The empty work folder ``output/parts/<name>.running`` of a run that starts now."""
    work = Path(output) / "parts" / f"{name}.running"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def finish_part(output: str | Path, name: str, study, record: dict) -> Path:
    """Write the run's raw tables and its record into its work folder, then rename it finished."""
    output = Path(output)
    work, final = output / "parts" / f"{name}.running", output / "parts" / name
    for table in RAW:
        getattr(study, table).to_csv(work / f"{table}.csv.gz", index=False)
    write_json(work / PART_RECORD, record)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return final


def read_part_record(output: str | Path, name: str) -> dict | None:
    """The record of the finished run ``name`` under ``output``, None if it has not finished."""
    path = Path(output) / "parts" / name / PART_RECORD
    return read_json(path) if path.exists() else None


def read_parts(folder: str | Path) -> tuple[list[tuple[Path, dict]], list[str]]:
    """Finished runs under ``folder/parts`` (path, record) sorted by name, and the unfinished folders."""
    parts_folder = Path(folder) / "parts"
    if not parts_folder.is_dir():
        return [], []
    finished, unfinished = [], []
    for path in sorted(p for p in parts_folder.iterdir() if p.is_dir()):
        if (path / PART_RECORD).exists():
            finished.append((path, read_json(path / PART_RECORD)))
        else:
            unfinished.append(path.name)
    return finished, unfinished


def read_raw_part(path: str | Path, name: str) -> pd.DataFrame:
    """One raw table (``RAW``) of the run folder ``path``."""
    if name not in RAW:
        raise ValueError(f"unknown raw table {name!r}; the raw tables are {', '.join(RAW)}")
    try:
        return pd.read_csv(Path(path) / f"{name}.csv.gz")
    except pd.errors.EmptyDataError:  # a table a run had nothing for (no probes)
        return pd.DataFrame()


def read_raw(folder: str | Path, name: str) -> pd.DataFrame:
    """One raw table (``RAW``) of every finished run under ``folder``, joined; the unedited model's probes,
    which every run measured, are kept once."""
    if name not in RAW:
        raise ValueError(f"unknown raw table {name!r}; the raw tables are {', '.join(RAW)}")
    finished, _ = read_parts(folder)
    if not finished:
        raise FileNotFoundError(f"no finished part under {Path(folder) / 'parts'}")
    frames = []
    for index, (path, _record) in enumerate(finished):
        frame = read_raw_part(path, name)
        if name == "probes" and index > 0 and len(frame):
            frame = frame[frame.method != "unedited"]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write_merged(folder: str | Path, tables: dict[str, pd.DataFrame], provenance: dict) -> None:
    """The merged tables of a study (``<name>.csv``, index kept) and its ``provenance.json``."""
    for name, table in tables.items():
        write_table(Path(folder) / f"{name}.csv", table, index=True)
    write_json(Path(folder) / PROVENANCE, provenance)


def read_provenance(folder: str | Path) -> dict | None:
    """A study's ``provenance.json`` (``write_merged``), None when there is none."""
    path = Path(folder) / PROVENANCE
    return read_json(path, required=("parts", "planned", "missing")) if path.exists() else None


def read_study(folder: str | Path) -> dict | None:
    """One study's finished runs: ``parameters`` (the first run's), every raw table joined (``RAW``), and
    ``runs``: method, seed, package hash, wall seconds and finish time per run. None without a finished run."""
    finished, _ = read_parts(folder)
    if not finished:
        return None
    runs = pd.DataFrame(
        [
            {key: record[key] for key in ("method", "seed", "package_hash", "wall_s", "finished")}
            for _, record in finished
        ]
    )
    return {"parameters": finished[0][1]["parameters"], "runs": runs} | {name: read_raw(folder, name) for name in RAW}


# --- a sweep ---------------------------------------------------------------------------------------------


class Sweep:
    """A sweep resumable unit by unit (a band, a sample size) in ``output``: the record ``record_name`` (JSON)
    holds ``settings`` from the start, so that a sweep stopped midway refuses to be resumed with others, and
    the progress (``timings_s`` per unit, and any ``progress`` fields given, e.g. tokens per size), kept across
    resumes; each of ``tables`` (CSV, read with ``dtypes``) gets the rows of each finished unit appended, and
    the first of them says which units are done (its column ``unit``)."""

    def __init__(self, output, record_name: str, settings: dict, *, tables, unit: str, progress=None, dtypes=None):
        self.output, self.settings, self.unit = Path(output), dict(settings), unit
        self.record_path = self.output / record_name
        if self.record_path.exists():
            self.record = read_json(self.record_path)
            if {key: self.record.get(key) for key in self.settings} != self.settings:
                raise ValueError(f"{self.output} holds a sweep with other settings; choose another --output")
        else:
            self.record = self.settings | dict(progress or {}) | {"timings_s": {}}
            write_json(self.record_path, self.record)
        self.timings = dict(self.record.get("timings_s", {}))
        self.tables = {}
        for name in tables:
            path = self.output / f"{name}.csv"
            self.tables[name] = pd.read_csv(path, dtype=dtypes) if path.exists() else pd.DataFrame()

    def done(self, value) -> bool:
        """Whether the unit ``value`` has its rows in the first table."""
        first = next(iter(self.tables.values()))
        return not first.empty and value in set(first[self.unit])

    def add(self, name: str, seconds: float, rows: dict, **progress) -> None:
        """A finished unit: its rows appended to each table (``rows``: table name -> frame), its seconds and
        any ``progress`` fields kept in the record; every file written before the next unit starts."""
        self.timings[name] = round(seconds, 1)
        for table, frame in rows.items():
            self.tables[table] = pd.concat([self.tables[table], frame], ignore_index=True)
            write_table(self.output / f"{table}.csv", self.tables[table])
        self.record |= progress | {"timings_s": self.timings}
        write_json(self.record_path, self.record)

    def finish(self, info: dict) -> dict:
        """The sweep's final record (the settings, the timings and ``info``), written; returns it."""
        self.record = self.settings | {"timings_s": self.timings} | info
        write_json(self.record_path, self.record)
        return self.record


# --- a tuning --------------------------------------------------------------------------------------------


def read_tuning_runs(folder: str | Path) -> pd.DataFrame:
    """The configurations run so far (``runs.csv``; empty with columns method and config when none)."""
    path = Path(folder) / "runs.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["method", "config"])


def write_tuning_runs(folder: str | Path, runs: pd.DataFrame) -> Path:
    return write_table(Path(folder) / "runs.csv", runs)


def read_tuning_scores(folder: str | Path) -> pd.DataFrame:
    """The per-request final scores of the configurations run so far (``scores.csv``; empty with columns
    method and config when none: rows made before the tuning kept them have none)."""
    path = Path(folder) / "scores.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["method", "config"])


def write_tuning_scores(folder: str | Path, scores: pd.DataFrame) -> Path:
    return write_table(Path(folder) / "scores.csv", scores)


def read_tuning_unedited(folder: str | Path) -> dict | None:
    """The unedited model scored on the tuning's requests (``tuning.unedited_run``): ``row`` (with its
    provenance, ``unedited.json``) and ``scores`` (``unedited_scores.csv``); None when not measured."""
    folder = Path(folder)
    if not (folder / "unedited.json").exists():
        return None
    return {
        "row": read_json(folder / "unedited.json", required=("objective", "reliability TF", "package_hash")),
        "scores": pd.read_csv(folder / "unedited_scores.csv"),
    }


def write_tuning_unedited(folder: str | Path, row: dict, scores: pd.DataFrame) -> Path:
    """The scores first: a stop between the two writes leaves no ``unedited.json``, so the next tuning remakes
    both."""
    folder = Path(folder)
    write_table(folder / "unedited_scores.csv", scores)
    return write_json(folder / "unedited.json", row)


def read_tuning(folder: str | Path) -> dict | None:
    """A finished tuning: ``record`` (``tuning.json``), ``runs`` and ``recheck`` (None when not rechecked);
    None when the folder holds no ``tuning.json``."""
    folder = Path(folder)
    if not (folder / "tuning.json").exists():
        return None
    recheck = folder / "recheck.csv"
    return {
        "record": read_json(folder / "tuning.json", required=("point", "chosen", "objective", "commit")),
        "runs": read_tuning_runs(folder),
        "recheck": pd.read_csv(recheck) if recheck.exists() else None,
    }


# --- a calibration and the explorations ------------------------------------------------------------------

#: what a calibration writes beside its record, one CSV each
CALIBRATION_TABLES = ("write", "write_100", "trace", "trace_summary", "distinctness", "coverage")


def write_calibration(folder: str | Path, record: dict, tables: dict[str, pd.DataFrame]) -> Path:
    unknown = sorted(set(tables) - set(CALIBRATION_TABLES))
    if unknown:
        raise ValueError(f"unknown calibration tables {unknown}; known: {', '.join(CALIBRATION_TABLES)}")
    for name, table in tables.items():
        write_table(Path(folder) / f"{name}.csv", table)
    return write_json(Path(folder) / "calibration.json", record)


def read_calibration(folder: str | Path) -> dict | None:
    """A calibration record (``calibration.json``: band, batch size, gates, provenance), None when absent."""
    path = Path(folder) / "calibration.json"
    return read_json(path, required=("band", "batch_size", "gates", "commit")) if path.exists() else None


def read_calibration_table(folder: str | Path, name: str) -> pd.DataFrame | None:
    """One of a calibration's tables (``CALIBRATION_TABLES``), None when it was not measured."""
    if name not in CALIBRATION_TABLES:
        raise ValueError(f"unknown calibration table {name!r}; known: {', '.join(CALIBRATION_TABLES)}")
    path = Path(folder) / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else None


def write_trace_record(folder: str | Path, record_name: str, record: dict, summary, trace=None) -> Path:
    """An exploration's trace: ``trace_summary.csv``, optionally ``trace.csv``, and its JSON record."""
    folder = Path(folder)
    write_table(folder / "trace_summary.csv", summary)
    if trace is not None:
        write_table(folder / "trace.csv", trace)
    return write_json(folder / record_name, record)


def read_trace_records(folder: str | Path, record_name: str, pattern: str = "*") -> list[tuple[dict, pd.DataFrame]]:
    """Every exploration under ``folder`` whose subfolder matches ``pattern`` and holds ``record_name``: its
    record and its trace summary, in the subfolders' order."""
    found = []
    for path in sorted(Path(folder).glob(f"{pattern}/{record_name}")):
        summary = path.parent / "trace_summary.csv"
        if not summary.exists():
            raise ValueError(f"{path.parent} holds {record_name} but no trace_summary.csv")
        found.append((read_json(path) | {"folder": path.parent.name}, pd.read_csv(summary)))
    return found


# --- the forgetting diagnosis ----------------------------------------------------------------------------

_DIAGNOSIS_FIELDS = ("rows", "parameters", "commit", "package_hash", "finished", "wall_s")


def write_diagnosis(path: str | Path, rows: list[dict], parameters: dict, record: dict) -> Path:
    return write_json(path, {"rows": rows, "parameters": parameters, **record})


def read_diagnosis(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """A forgetting diagnosis (``write_diagnosis``): its rows and everything else (parameters, provenance).

    Raises ValueError naming what is missing when the file is not such a result."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = [field for field in _DIAGNOSIS_FIELDS if field not in data]
    if missing:
        raise ValueError(f"{path} is not a result of the forgetting diagnosis: it lacks {missing}")
    return pd.DataFrame(data["rows"]), {field: value for field, value in data.items() if field != "rows"}
