"""One call to edit a model: ``edit(model, tokenizer, requests, method=..., **settings)``.

What the six steps of the editing interface do, in one function: read the requests in any accepted
form (``data.requests.as_requests``: EditRequest, EasyEdit's fields, MzsRE / BMIKE-53 records, a
prompt and a subject), pick the model's defaults (``editing.defaults``; or the layers you give),
load or compute the preserved-key statistics (cached; or a statistics file, ``model.statistics``),
build the session on a copy of the model, write the batch, and score it. Returns an ``EditReport``:
the edited model, the session (for more batches or a rollback), the batch record, per request the
prompt, the target, what the model said before and after (greedy text) and the metrics, and a
summary with named metric columns. For example::

    from langedit_mini.interface import edit
    report = edit(model, tokenizer, [{"prompts": "The capital of France is", "subject": "France",
                                      "target_new": "Lyon"}], method="AlphaEdit")
    report.summary          # reliability / generality / locality, teacher-forced and exact match
    report.table            # one row per request
    report.model            # the edited copy; `model` itself is untouched
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from langedit_mini.data.requests import as_requests
from langedit_mini.editing.config import EditConfig
from langedit_mini.editing.defaults import default_config, defaults_for
from langedit_mini.editing.session import BatchRecord, EditingSession
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference
from langedit_mini.evaluation.scoring import score
from langedit_mini.model.architecture import check_model_and_tokenizer
from langedit_mini.model.statistics import DEFAULT_CACHE, key_second_moments
from langedit_mini.pocket import POCKET_MODELS
from langedit_mini.study.testbeds import default_texts

METRICS = ("reliability", "generality", "locality", "portability")


@dataclass
class EditReport:
    model: object  # the edited model (a copy unless in_place)
    session: EditingSession
    record: BatchRecord
    table: pd.DataFrame  # one row per request: prompt, target, before, after, metric columns
    summary: pd.DataFrame  # rows: metrics; columns: teacher-forced, exact match, n

    def __repr__(self) -> str:
        unreached = f", {self.record.unreached} targets unreached" if self.record.unreached else ""
        return (
            f"EditReport({self.session.config.method} on layers {list(self.session.config.layers)}, "
            f"{len(self.table)} requests{unreached})\n{self.summary.round(3).to_string()}"
        )


def model_defaults_name(model) -> str | None:
    """The name a loaded model's defaults are looked up by: "pocket" / "pocket-wide" for the bundled models
    (by their directory), else the name it was loaded from (``meta-llama/Meta-Llama-3-8B-Instruct``; passed
    to ``editing.defaults.defaults_for``), None when its config does not say."""
    path = str(getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", ""))
    for name, directory in POCKET_MODELS.items():
        if path and Path(path).resolve() == Path(directory).resolve():
            return name
    return path or None


def _statistics(model, tokenizer, layers, texts, statistics, cache_dir, progress):
    if statistics is not None:
        missing = [layer for layer in layers if layer not in statistics]
        if missing:
            raise ValueError(f"the statistics given have no layers {missing}; they hold {sorted(statistics)}")
        return statistics
    if texts is None:
        raise ValueError(
            "this method needs the preserved-key statistics C0 of the edited layers: pass statistics= (e.g. "
            "load_statistics(path)) or statistics_texts= (texts of the knowledge to preserve, such as Wikipedia "
            "articles: data.corpora.wikipedia_texts)"
        )
    return key_second_moments(model, tokenizer, texts, list(layers), cache_dir=cache_dir, progress=progress)


def summarise(scores: pd.DataFrame, metrics=None) -> pd.DataFrame:
    """Rows: metrics (``metrics`` only, in that order, when given); columns: teacher-forced and exact
    match (means over the rows of ``scores``, ``evaluate_requests`` rows) and n."""
    if metrics is not None:
        scores = scores[scores.metric.isin(metrics)]
    summary = scores.groupby("metric").agg(
        **{
            "teacher-forced": ("teacher_forced", "mean"),
            "exact match": ("exact_match", "mean"),
            "n": ("teacher_forced", "size"),
        }
    )
    return summary if metrics is None else summary.reindex([m for m in metrics if m in summary.index])


def predictions(model, tokenizer, requests) -> list[str]:
    """The greedy continuation of each request's edit prompt, as many tokens as its target."""
    result = score(
        model,
        tokenizer,
        [r.question for r in requests],
        [r.target for r in requests],
        [r.joiner for r in requests],
        predictions=True,
    )
    return [text.strip() for text in result.predictions]


def edit(
    model,
    tokenizer,
    requests,
    method: str = "LangEdit-exact",
    *,
    model_name: str | None = None,
    lang: str = "en",
    statistics: dict | None = None,
    statistics_texts: list[str] | None = None,
    cache_dir=DEFAULT_CACHE,
    in_place: bool = False,
    evaluate: bool = True,
    progress: bool = True,
    config: EditConfig | None = None,
    **settings,
) -> EditReport:
    """Edit ``requests`` into (a copy of) ``model`` with ``method`` in one batch; see the module docstring.

    ``settings``: any field every method shares (``layers``, ``values``, ``seed``) or one of the method's
    own settings (``alpha``, ``tau``, ``leftover_fraction``, ``mom2_weight``, FT's ``steps`` ...),
    overriding the model's defaults (``model_name``: which defaults; found from the model when None; a
    model without defaults needs ``layers`` and takes the reference values, ``editing.defaults.defaults_for``).
    Statistics: ``statistics`` (layer -> SecondMoment, e.g. from ``load_statistics``), else computed from
    ``statistics_texts`` (default: the pocket models' preserved-knowledge corpus; for the registered real LLMs,
    MzsRE's training questions, ``study.testbeds.default_texts``) and cached under ``cache_dir``.
    ``config``: a complete ``EditConfig`` instead of the defaults and ``settings``
    (its method is used, not ``method``).
    """
    check_model_and_tokenizer(model, tokenizer)
    requests = as_requests(requests, lang=lang)
    model_name = model_name or model_defaults_name(model)
    if config is None:
        config = default_config(method, defaults_for(model_name, layers_given="layers" in settings), **settings)
    elif settings:
        raise ValueError(f"give config= or settings, not both (settings: {', '.join(sorted(settings))})")
    editing_method = config.editing_method
    if statistics_texts is None and statistics is None and editing_method.needs_statistics:
        found = default_texts(model_name) if model_name else None  # the pocket corpus, MzsRE's questions
        statistics_texts = found[0] if found else None
    needed = (
        _statistics(model, tokenizer, config.layers, statistics_texts, statistics, cache_dir, progress)
        if (editing_method.needs_statistics)
        else None
    )
    before = predictions(model, tokenizer, requests) if evaluate else None
    reference = locality_reference(model, tokenizer, requests) if evaluate else None
    session = EditingSession(model, tokenizer, config, needed, in_place=in_place, progress=progress)
    record = session.apply(requests)
    if not evaluate:
        return EditReport(session.model, session, record, pd.DataFrame(), pd.DataFrame())
    after = predictions(session.model, tokenizer, requests)
    scores = evaluate_requests(session.model, tokenizer, requests, reference, progress=progress)
    wide = scores.pivot_table(index="request", columns="metric", values=["teacher_forced", "exact_match"])
    rows = []
    for index, request in enumerate(requests):
        row = {
            "prompt": request.question,
            "target": request.target,
            "before": before[index],
            "after": after[index],
            "target reached": record.target_reached[index] if record.target_reached else None,
        }
        for metric in METRICS:
            for value, label in (("teacher_forced", "TF"), ("exact_match", "EM")):
                key = (value, metric)
                row[f"{metric} {label}"] = wide[key].get(index) if key in wide.columns else None
        rows.append(row)
    table = pd.DataFrame(rows)
    summary = summarise(scores, METRICS)
    return EditReport(session.model, session, record, table, summary)
