"""The readings of the chapter "The main study on real LLMs": every committed run at a real LLM's paper point,
read from disk, without loading a model.

A model's paper point is the density grid's point of ``density.PAPER_BATCHES`` batches per language of the
batch size its calibration chose (``results/calibration/<model>/``), e.g. ``e044`` on SmolLM2: 264 edits in
batches of 11, 0.17 edits per key dimension. Its runs lie under ``results/density/<model>/<point>/`` (delta) and
``<point>-mt/`` (languages mixed in every batch), made by ``scripts/run_density.py`` one seed and method at a
time. ``ModelStudy.load`` reads them once; each ``*_reading`` returns a ``readings.Reading`` whose glue names
carry the model (``smollm2_135m_...``). Runs are checked against the model's own run hash
(``testbeds.run_hash``); a run made by other code is counted and named, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from langedit_mini.data.languages import LANGUAGES
from langedit_mini.editing.registry import METHODS
from langedit_mini.study import store
from langedit_mini.study.findings import glue_key
from langedit_mini.study.intervals import final_scores, format_interval, interval_reading, paired_difference
from langedit_mini.study.provenance import is_current
from langedit_mini.study.readings import Reading, methods_table, ordered, paper_point_table, runs_on_disk
from langedit_mini.study.real_llm_chapter import key

#: the comparisons the study's question rests on, (first, second): first minus second, paired by seed
COMPARISONS = (
    ("LangEdit-exact", "AlphaEdit"),
    ("LangEdit-published", "AlphaEdit"),
    ("LangEdit-exact", "MEMIT"),
    ("LangEdit-published", "MEMIT"),
    ("AlphaEdit", "MEMIT"),
)
#: the metrics of the final table and of the paired differences
FINAL_METRICS = ("reliability", "generality", "locality", "portability")


@dataclass
class ModelStudy:
    """The runs of one model at its paper point under one schedule, read back from disk (``store.read_study``;
    None when no run is finished), and the model's run hash today."""

    model: str
    point: str | None  # None: the model has no calibration record, so no batch size
    schedule: str
    study: dict | None
    current_hash: str

    @classmethod
    def load(
        cls, model: str, density_root, calibration_root, schedule: str = "delta", current_hash: str | None = None
    ) -> ModelStudy:
        """``model``'s runs at its paper point under ``schedule``; ``current_hash``: the run hash they are checked
        against (default: ``testbeds.run_hash(model)``, today's code for that model)."""
        from langedit_mini.study.density import PAPER_BATCHES, point_name
        from langedit_mini.study.testbeds import run_hash

        if schedule not in ("delta", "mt"):
            raise ValueError(f"schedule must be 'delta' or 'mt', got {schedule!r}")
        calibration = store.read_calibration(Path(calibration_root) / model)
        point = None if calibration is None else point_name(calibration["batch_size"] * PAPER_BATCHES, schedule)
        study = None if point is None else store.read_study(Path(density_root) / model / point)
        return cls(model, point, schedule, study, current_hash or run_hash(model))

    @property
    def prefix(self) -> str:
        """The glue prefix of this study: the model's (``key``), with ``_mt`` for the mixed schedule."""
        return key(self.model) + ("" if self.schedule == "delta" else "_mt")

    @property
    def command(self) -> str:
        """The command that makes (and resumes) this study's runs."""
        return f"python scripts/run_density.py --model {self.model} --points {self.point} --max-runs 1"

    @property
    def runs(self) -> pd.DataFrame:
        """One row per finished run: method, seed, package_hash, wall_s, finished, and ``current`` (made by today's
        code for this model, or by code recorded as equivalent to it)."""
        if self.study is None:
            return pd.DataFrame(columns=["method", "seed", "package_hash", "wall_s", "finished", "current"])
        runs = self.study["runs"]
        return runs.assign(current=[is_current(h, self.current_hash) for h in runs.package_hash])

    @property
    def finals(self) -> pd.DataFrame:
        """Per method, seed and metric: the mean scores of every edit after the run's last batch."""
        if self.study is None:
            return pd.DataFrame(columns=["method", "seed", "metric", "teacher_forced", "exact_match"])
        return final_scores(self.study["evaluations"])

    @property
    def methods(self) -> list[str]:
        """The methods with at least one finished run, in the registry's order."""
        return ordered(self.runs.method)

    @cached_property
    def ability(self) -> pd.DataFrame | None:
        """The offline general-ability proxies, unedited and after each method's last batch
        (``real_llm_chapter.ability_table``); None when no run measured them."""
        from langedit_mini.study.real_llm_chapter import ability_table

        probes = self.study["probes"] if self.study is not None else None
        return None if probes is None or probes.empty else ability_table(probes, self.methods)


def _not_run(study: ModelStudy) -> str:
    if study.point is None:
        return f"{study.model}: no calibration record, so no batch size and no paper point yet"
    return f"{study.model}, {study.point}: no finished run yet ({study.command})"


def _with_runs(studies: list[ModelStudy], reading: Reading):
    """The studies of ``studies`` with finished runs, in order; for each of the others ``reading`` says why it
    shows nothing (``_not_run``)."""
    for study in studies:
        if study.study is None:
            reading.say(_not_run(study))
        else:
            yield study


def runs_reading(studies: list[ModelStudy]) -> Reading:
    """Per model: the point, its edits and batches, and per method the seeds finished, minutes per run and runs made
    by other code than today's (stale); the methods not run yet."""
    reading = Reading()
    for study in studies:
        prefix = study.prefix
        if study.study is None:
            reading.say(_not_run(study))
            reading.glue |= {f"{prefix}_main_runs": "none yet", f"{prefix}_main_stale": 0}
            continue
        parameters = study.study["parameters"]
        edits = parameters["edits_per_language"] * len(parameters["languages"])
        runs = study.runs
        on_disk = runs_on_disk({study.point: {"runs": runs}})  # stale read from the runs' `current` column
        table = on_disk.drop(columns="point").set_index("method").reindex(study.methods)
        unrun = [m for m in METHODS if m not in study.methods]
        reading.say(
            f"{study.model}, {study.point} ({study.schedule}): {edits} edits in batches of {parameters['batch_size']}; "
            f"{len(runs)} runs; not run yet: {', '.join(unrun) or 'none'}"
        )
        reading.table(f"{study.model}: runs on disk (run hash today {study.current_hash})", table)
        stale = int(table.stale.sum())
        if stale:
            reading.say(f"WARNING: {stale} runs were made by other code than this build's for {study.model}")
        reading.glue |= {
            f"{prefix}_main_runs": "; ".join(f"{m} seeds {row.seeds}" for m, row in table.iterrows()),
            f"{prefix}_main_stale": stale,
            f"{prefix}_main_minutes": f"{runs.wall_s.mean() / 60:.0f}",
        }
    return reading


def finals_reading(studies: list[ModelStudy]) -> Reading:
    """Per model, the paper-style table: per method the final reliability, generality, locality and portability,
    teacher-forced and greedy exact match side by side (mean ± 95% interval over seeds) and the seeds."""
    reading = Reading()
    for study in _with_runs(studies, reading):
        prefix = study.prefix
        table = paper_point_table(study.finals, metrics=FINAL_METRICS)
        reading.table(f"{study.model}, {study.point}: final scores (mean ± 95% interval over seeds)", table)
        for method, row in table.iterrows():
            reading.glue[f"{prefix}_final_{glue_key(method)}"] = (
                f"{row['reliability TF']} / {row['generality TF']} / {row['locality TF']} "
                f"(EM {row['reliability EM']} / {row['generality EM']} / {row['locality EM']})"
            )
    return reading


def paired_table(finals: pd.DataFrame, comparisons=COMPARISONS, metrics=FINAL_METRICS[:3]) -> pd.DataFrame:
    """Each comparison of ``comparisons`` whose two methods share a seed: first minus second per metric (TF and
    EM), mean ± 95% interval paired by seed, what the interval shows (``interval_reading``), and the seeds."""
    rows = []
    seeds_of = finals.groupby("method").seed.apply(set).to_dict()
    for first, second in comparisons:
        shared = seeds_of.get(first, set()) & seeds_of.get(second, set())
        if not shared:
            continue
        row = {"comparison": f"{first} - {second}"}
        for metric in metrics:
            for value, label in (("teacher_forced", "TF"), ("exact_match", "EM")):
                mean, half, seeds = paired_difference(finals, metric, first, second, value)
                row[f"{metric} {label}"] = format_interval(mean, half, signed=True)
                if value == "teacher_forced":
                    row[f"{metric} reads"] = interval_reading(mean, half, seeds)
        rows.append(row | {"seeds": len(shared)})
    return pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()


def paired_reading(studies: list[ModelStudy]) -> Reading:
    """Per model: the differences the study's question rests on, paired by seed (``paired_table``)."""
    reading = Reading()
    for study in studies:
        prefix = study.prefix
        table = paired_table(study.finals) if study.study is not None else pd.DataFrame()
        if table.empty:
            reading.say(f"{study.model}: no two methods share a seed yet")
            reading.glue[f"{prefix}_paired"] = "no two methods share a seed yet"
            continue
        reading.table(f"{study.model}, {study.point}: differences paired by seed (first minus second)", table)
        reading.glue[f"{prefix}_paired"] = "; ".join(
            f"{name}: reliability {row['reliability TF']} ({row['reliability reads']}), locality "
            f"{row['locality TF']} ({row['locality reads']})"
            for name, row in table.iterrows()
        )
    return reading


def write_forget_reading(studies: list[ModelStudy]) -> Reading:
    """Per model and method (mean over seeds): each batch's reliability right after its own write and at the end,
    and by exact match the shares of edits kept, forgotten and never written
    (``real_llm_chapter.write_forget_table``)."""
    from langedit_mini.study.real_llm_chapter import write_forget_table

    reading = Reading()
    for study in _with_runs(studies, reading):
        prefix = study.prefix
        table = write_forget_table(study.study["evaluations"], study.study["batches"], study.methods)
        reading.table(
            f"{study.model}, {study.point}: written, then kept or forgotten (mean over seeds)", table.round(3)
        )
        reading.glue[f"{prefix}_written"] = "; ".join(
            f"{method} {row.written:.3f} right after its write, {row.final:.3f} at the end"
            for method, row in table.iterrows()
        )
    return reading


def written_by_language(evaluations: pd.DataFrame, methods) -> pd.DataFrame:
    """Languages x methods: each edit's teacher-forced reliability right after its own batch was written, the
    mean over the edits of the language and over seeds."""
    part = evaluations[(evaluations.metric == "reliability") & (evaluations.after_batch == evaluations.batch)]
    table = part[part.method.isin(methods)].groupby(["lang", "method"]).teacher_forced.mean().unstack()
    return table.reindex(index=[lang for lang in LANGUAGES if lang in table.index], columns=ordered(table.columns))


def projector_reading(studies: list[ModelStudy], projector_root) -> Reading:
    """Per model with a projector record at its paper point (``scripts/projector_action.py``, under
    ``projector_root/<model>/<point>-seed0``): per language at the first edited layer (where the unedited
    model's keys are a run's keys exactly), what of a batch's keys each null-space method's projector leaves
    (mean of ``||P k||^2 / ||k||^2``), how much of them lies in the span of the same facts' keys of earlier
    batches and of the other facts', the facts whose subject is the English text, and each method's
    reliability right after its write (its seed-0 run on disk: the same schedule; left out for a model without
    runs, whose record reads the schedule the density runner would edit); then the record's provenance."""
    from langedit_mini.study.key_overlap import PROJECTED

    reading = Reading()
    for study in studies:
        path = None if study.point is None else Path(projector_root) / study.model / f"{study.point}-seed0"
        if path is None or not path.with_suffix(".csv").is_file():
            reading.say(
                _not_run(study)
                if study.study is None
                else f"{study.model}, {study.point}: no projector record yet "
                f"(python scripts/projector_action.py --model {study.model} --point {study.point})"
            )
            continue
        rows = pd.read_csv(path.with_suffix(".csv"))
        info = store.read_json(path.with_suffix(".json"), required=("shared_subjects", "commit", "package_hash"))
        first = rows[rows.exact_keys]
        kept = first.groupby(["lang", "method"]).kept.mean().unstack()
        spans = first[first.method == PROJECTED[0]].groupby("lang")[["in_same_facts", "in_other_facts"]].mean()
        same = pd.DataFrame(info["shared_subjects"]).set_index("lang")
        columns = [
            kept[[m for m in PROJECTED if m in kept]].add_suffix(" keeps"),
            spans.rename(columns={"in_same_facts": "in same facts' span", "in_other_facts": "in others' span"}),
            (same.same.astype(str) + " of " + same.facts.astype(str)).rename("subject as in en"),
        ]
        if study.study is not None:
            evaluations = study.study["evaluations"]
            seed_0 = evaluations[evaluations.seed == 0]  # the runs of the schedule the record read
            columns.append(written_by_language(seed_0, PROJECTED).add_suffix(" written"))
        table = pd.concat(columns, axis=1).reindex([lang for lang in LANGUAGES if lang in kept.index])
        layer = int(first.layer.iloc[0])
        reading.table(
            f"{study.model}, {study.point}, layer {layer}: what each projector leaves of a batch's keys", table.round(3)
        )
        later = first[first.lang != "en"].groupby("method").kept.mean()
        english = first[(first.lang == "en") & (first.batch > 0)].groupby("method").kept.mean()
        reading.glue[f"{study.prefix}_projector"] = (
            f"at layer {layer} the projectors leave, of a batch's keys in a fact's later languages, "
            + ", ".join(f"{m} {later[m]:.3f}" for m in PROJECTED if m in later)
            + "; of a batch of new facts (English, after the first), "
            + ", ".join(f"{m} {english[m]:.3f}" for m in PROJECTED if m in english)
        )
        before = first[first.batch == first.batch.min()].groupby("method").null_dim.first()
        reading.glue[f"{study.prefix}_projector_null"] = "before the first batch the null space is " + ", ".join(
            f"{m} {int(before[m])}" for m in PROJECTED if m in before
        )
        schedule = "seed 0's schedule" + ("" if study.study is not None else ", no run yet: the density runner's plan")
        reading.say(
            f"{study.model}: python scripts/projector_action.py --model {study.model} --point {study.point} "
            f"({schedule}; commit {info['commit']}, code {info['package_hash']}, {info['finished']}, "
            f"{info['wall_s'] / 60:.0f} min)"
        )
    return reading


def forgetting_reading(studies: list[ModelStudy]) -> Reading:
    """Per model, the forgetting matrix of each method (its lowest seed): rows the batch an edit was made in,
    columns the batch after which it was scored, cells the mean teacher-forced reliability."""
    from langedit_mini.study.sequential import forgetting_matrix

    reading = Reading()
    for study in _with_runs(studies, reading):
        evaluations = study.study["evaluations"]
        methods = study.methods
        fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3), squeeze=False)
        for ax, method in zip(axes[0], methods):
            part = evaluations[evaluations.method == method]
            part = part[part.seed == part.seed.min()]
            image = ax.imshow(forgetting_matrix(part).values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
            ax.set(title=f"{method}, seed {part.seed.min()}", xlabel="scored after batch", ylabel="batch edited")
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
        fig.suptitle(f"{study.model}, {study.point}: reliability (TF) of each batch over time", fontsize=10)
        reading.plot(fig)
    return reading


def transfer_matrices(study: ModelStudy, value: str = "teacher_forced") -> dict[str, pd.DataFrame]:
    """Per method: the 6 x 6 cross-lingual matrix after the last batch (rows: the language an edit was made in,
    columns: the language of the same fact's prompt it was scored on), mean over seeds."""
    from langedit_mini.evaluation.edit_metrics import cross_lingual_matrix

    if study.study is None or study.study["transfer"] is None or study.study["transfer"].empty:
        return {}
    transfer = study.study["transfer"]
    return {m: cross_lingual_matrix(transfer[transfer.method == m], value, LANGUAGES) for m in study.methods}


def transfer_reading(studies: list[ModelStudy]) -> Reading:
    """Per model: each method's cross-lingual matrix after the last batch, and per method the mean of the diagonal
    (an edit scored in its own language) and off it (in the other five).

    Where the study edits the same facts in every language (``facts="parallel"``, the paper's shape), every fact
    has been edited in all six languages by the last batch, so a row of the matrix cannot tell an edit in its own
    language from the same fact's edit in another: every row reads the same. The reading then shows one row, the
    final reliability per language the prompts were scored in, and says that transfer is not measured by it."""
    import numpy as np

    reading = Reading()
    for study in studies:
        prefix = study.prefix
        matrices = transfer_matrices(study)
        if not matrices:
            reading.say(_not_run(study) if study.study is None else f"{study.model}: no cross-lingual scores")
            reading.glue[f"{prefix}_transfer"] = "not measured yet"
            continue
        if study.study["parameters"].get("facts") == "parallel":
            rows = {method: matrix.mean(axis=0) for method, matrix in matrices.items()}
            spread = max(float((m - m.mean(axis=0)).abs().max().max()) for m in matrices.values())
            reading.say(
                f"{study.model}, {study.point}: every fact was edited in all six languages (parallel facts), so after "
                f"the last batch each row of the 6 x 6 matrix is the same (largest difference between rows "
                f"{spread:.1e}); what it shows is the final reliability per language of the prompt, not transfer"
            )
            reading.table(
                f"{study.model}: scored in each language after the last batch (TF)", pd.DataFrame(rows).T.round(3)
            )
            reading.glue[f"{prefix}_transfer"] = (
                f"not measured by this design (every fact edited in all six languages; rows differ by at most "
                f"{spread:.1e})"
            )
            continue
        fig, axes = plt.subplots(1, len(matrices), figsize=(3.0 * len(matrices), 3), squeeze=False)
        rows = {}
        for ax, (method, matrix) in zip(axes[0], matrices.items()):
            values = matrix.to_numpy(dtype=float)
            image = ax.imshow(values, vmin=0, vmax=1, cmap="magma")
            ax.set(title=method, xticks=range(len(matrix.columns)), yticks=range(len(matrix.index)))
            ax.set_xticklabels(matrix.columns, fontsize=7)
            ax.set_yticklabels(matrix.index, fontsize=7)
            ax.set_xlabel("scored in")
            ax.set_ylabel("edited in")
            diagonal = np.eye(len(values), dtype=bool)
            rows[method] = {"own language": values[diagonal].mean(), "other languages": values[~diagonal].mean()}
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
        table = pd.DataFrame(rows).T
        reading.table(f"{study.model}, {study.point}: cross-lingual transfer after the last batch (TF)", table.round(3))
        reading.plot(fig)
        reading.glue[f"{prefix}_transfer"] = "; ".join(
            f"{method} {row['own language']:.3f} in its own language, {row['other languages']:.3f} in the others"
            for method, row in table.iterrows()
        )
    return reading


def null_space_reading(studies: list[ModelStudy]) -> Reading:
    """Per model and null-space method that reports it: the null-space dimensions left after the last batch
    (the smallest over the edited layers, the only figure a run records; mean over seeds)."""
    reading = Reading()
    for study in _with_runs(studies, reading):
        batches = study.study["batches"]
        left = batches.dropna(subset=["capacity_left"]) if "capacity_left" in batches else batches.iloc[:0]
        if left.empty:
            reading.say(f"{study.model}: no run of a method that counts its null space (LangEdit-exact) yet")
            continue
        last = left[left.batch == left.groupby(["method", "seed"]).batch.transform("max")]
        table = (
            last.groupby("method")
            .capacity_left.agg(["min", "mean", "count"])
            .rename(columns={"min": "fewest left", "mean": "mean left", "count": "runs"})
        )
        reading.table(f"{study.model}, {study.point}: null-space dimensions left after the last batch", table)
    return reading


def ability_reading(studies: list[ModelStudy]) -> Reading:
    """Per model: the offline general-ability proxies of the unedited model and of each method after its last
    batch (``real_llm_chapter.ability_table``), and held-out perplexity as the batches accumulate."""
    from langedit_mini.study.real_llm_chapter import pooled_proxies

    reading = Reading()
    for study in studies:
        prefix = study.prefix
        table = study.ability
        if table is None:
            reading.say(_not_run(study) if study.study is None else f"{study.model}: no proxies measured")
            reading.glue[f"{prefix}_ability"] = "not measured yet"
            continue
        reading.table(f"{study.model}, {study.point}: general-ability proxies (mean ± 95% interval over seeds)", table)
        pooled = pooled_proxies(study.study["probes"])
        fig, ax = plt.subplots(figsize=(5, 3))
        unedited = pooled[pooled.method == "unedited"]["held-out text, perplexity"].mean()
        for method in study.methods:
            line = pooled[pooled.method == method].groupby("after_batch")["held-out text, perplexity"].mean()
            ax.plot(line.index + 1, line.values, marker="o", ms=3, label=method)
        ax.axhline(unedited, color="black", lw=0.8, ls=":", label="unedited")
        ax.set(xlabel="batches written", ylabel="held-out perplexity (geometric mean)", title=study.model)
        ax.legend(fontsize=7)
        plt.tight_layout()
        reading.plot(fig)
        retained = table.loc["known facts, retained"]
        reading.glue[f"{prefix}_ability"] = "; ".join(
            f"{state}: perplexity {table.iloc[0][state]}, known facts retained {retained[state]}"
            for state in table.columns
        )
    return reading


def missing_scores(study: ModelStudy) -> int:
    """How many (edit, metric) scores a study lacks: after every batch every edit made so far is scored on every
    metric (the protocol at the paper's point), and after the last each edit in every language of the run."""
    if study.study is None:
        return 0
    missing = 0
    evaluations, transfer = study.study["evaluations"], study.study["transfer"]
    languages = study.study["parameters"]["languages"]
    for (method, seed), run in evaluations.groupby(["method", "seed"]):
        metrics = run.metric.nunique()
        made = run.groupby("batch").apply(lambda b: len(set(zip(b.fact_id, b.lang)))).sort_index().cumsum()
        scored = run.groupby("after_batch").size()
        missing += int((made * metrics - scored.reindex(made.index, fill_value=0)).clip(lower=0).sum())
        edits = int(made.iloc[-1])
        part = transfer[(transfer.method == method) & (transfer.seed == seed)] if transfer is not None else None
        missing += max(0, edits * len(languages) - (0 if part is None else len(part)))
    return missing


def checked_claims(studies: list[ModelStudy]) -> list:
    """The chapter's checked claims (``claims.Claim``): every committed run was made by this build's code (or code
    verified equivalent to it) for its model, and every run scored what the protocol asks."""
    from langedit_mini.study.claims import Claim

    stale = sum(int((~s.runs.current.astype(bool)).sum()) for s in studies)
    missing = sum(missing_scores(s) for s in studies)
    return [
        Claim(
            "every committed run was made by this build's code for its model, or by code verified equivalent "
            "(stale runs)",
            float(stale),
            0.0,
        ),
        Claim(
            "every run scored every edit so far after every batch, and each edit in all six languages after the "
            "last (missing scores)",
            float(missing),
            0.0,
        ),
    ]


# --- what the reproduction report reads -------------------------------------------------------------------------

#: the paper's claims judged on the real LLMs: glue key -> (claim, metric, schedule)
REPORT_CLAIMS = {
    "reliability": ("LangEdit keeps earlier languages' edits better (final reliability)", "reliability", "delta"),
    "locality": ("LangEdit keeps unrelated facts better (locality)", "locality", "delta"),
    "reliability_mt": ("the same with the languages mixed in every batch", "reliability", "mt"),
}


def gate_status(study: ModelStudy, calibration_root) -> dict[str, str]:
    """Each gate of ``study``'s model: G1 and G3 from its calibration record ("passes", "fails", "not run"), G2
    from its MEMIT and AlphaEdit runs at the paper point (``real_llm_chapter.g2_gate``: "passes" or "fails" over
    ``G2_SEEDS`` seeds, "not complete (...)" before)."""
    from langedit_mini.study.real_llm_chapter import g2_gate

    record = store.read_calibration(Path(calibration_root) / study.model) or {}
    gates = record.get("gates", {})
    status = {
        name: ("passes" if gates[name]["passed"] else "fails") if name in gates else "not run" for name in ("G1", "G3")
    }
    status["G2"] = g2_gate(study.finals)[2]
    return {name: status[name] for name in ("G1", "G2", "G3")}


def ability_summary(studies: list[ModelStudy]) -> pd.DataFrame:
    """Rows: the models; columns: the unedited model and every method; cells: held-out perplexity and the share of
    the known facts still answered right after the last batch (``real_llm_chapter.ability_table``, mean and 95%
    interval over seeds), or "not run"."""
    rows = {}
    for study in studies:
        row = dict.fromkeys(["unedited", *METHODS], "not run")
        table = study.ability
        for state in [] if table is None else table.columns:
            kept = table.loc["known facts, retained"][state]
            row[state] = f"perplexity {table.iloc[0][state]}, known facts kept {kept}"
        rows[study.model] = row
    summary = pd.DataFrame(rows).T
    summary.index.name = "model"
    return summary


def report_verdict(finals: pd.DataFrame, metric: str, value: str, gates: dict[str, str]) -> str:
    """The verdict on a claim about ``metric`` from one model's final scores: ``verdicts.UNTESTABLE`` (and which
    gates fail) when the model fails a gate; "not judged" when nothing is run or a gate is not complete; else
    ``verdicts.paired_verdict`` (each LangEdit form against MEMIT and AlphaEdit, paired by seed)."""
    from langedit_mini.study.verdicts import UNTESTABLE, paired_verdict

    failing = [name for name, status in gates.items() if status == "fails"]
    if failing:
        return f"{UNTESTABLE} ({' and '.join(failing)} {'fails' if len(failing) == 1 else 'fail'})"
    if finals.empty:
        return "not judged (not run)"
    pending = [f"{name} {status}" for name, status in gates.items() if status != "passes"]
    if pending:
        return f"not judged ({'; '.join(pending)})"
    return paired_verdict(finals, metric, value=value, calibrated=True)["verdict"]


def report_reading(studies: list[ModelStudy], mixed: list[ModelStudy], calibration_root) -> Reading:
    """What the reproduction report pastes: the gates per model (a table), per claim of ``REPORT_CLAIMS`` a table of
    models x methods (``readings.methods_table``) and per model the verdict (``report_verdict``)."""
    gates = pd.DataFrame({s.model: gate_status(s, calibration_root) for s in studies}).T
    gates.index.name = "model"
    reading = Reading()
    reading.table("the gates per model", gates)
    reading.glue["report_gates"] = gates
    reading.glue["report_ability"] = ability_summary(studies)
    reading.table("general ability, offline proxies after the last batch", reading.glue["report_ability"])
    by_schedule = {"delta": studies, "mt": mixed}
    for name, (claim, metric, schedule) in REPORT_CLAIMS.items():
        chosen = by_schedule[schedule]
        table = methods_table({study.model: study.finals for study in chosen}, metric)
        table.index.name = "model (TF / EM)"
        reading.table(f"{claim} ({metric}, {schedule})", table)
        reading.glue[f"report_{name}"] = table
        for study in chosen:
            for value, label in (("teacher_forced", "tf"), ("exact_match", "em")):
                verdict = report_verdict(study.finals, metric, value, gates.loc[study.model].to_dict())
                reading.glue[f"report_verdict_{name}_{label}_{key(study.model)}"] = verdict
    return reading
