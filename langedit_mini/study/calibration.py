"""Is a testbed fit to judge an editing method? The calibration gates and the measures that explain a failure.

A small model can stand in for an LLM in a study of editing only if it reproduces, with the
methods' own recipes, what is established on real LLMs (``SPEC`` section 9). Three gates, each a
list of ``Claim``s (passed when every claim holds):

* **G1 write** (``write_gate``): one batch of the study's batch size, written by MEMIT and by
  AlphaEdit, reaches teacher-forced reliability >= 0.95 and generality >= 0.85 and keeps locality
  >= 0.90.
* **G2 sequential** (``sequential_gate``): at the paper's density AlphaEdit's final reliability
  exceeds MEMIT's by a margin whose 95% interval over seeds (paired by seed) excludes 0, and its
  locality is no worse (the interval of its locality difference reaches 0 or above).
* **G3 mechanism** (``mechanism_gate``): causal tracing (``model.tracing.causal_trace``) finds the
  largest MLP indirect effect at the subject's last token inside the edited band, and restoring the
  band's MLP outputs there together brings back at least a third of the subject's total effect.
  The third is this project's bar for "the fact passes through there", fixed before any testbed was
  traced.

And two measures of what may explain a failure: ``key_distinctness`` (are the keys of different
subjects different at a layer: the key is the only thing that tells edits apart) and
``covariance_coverage`` (how much of the edit keys' energy lies in the null space of the preserved
covariance, where a null-space method may write, at several cuts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch

from langedit_mini.core.projection import tau_for_leftover
from langedit_mini.study.claims import Claim
from langedit_mini.study.experiment import interval

G1_RELIABILITY, G1_GENERALITY, G1_LOCALITY = 0.95, 0.85, 0.90
G3_BAND_SHARE = 1 / 3
GATE_METHODS = ("MEMIT", "AlphaEdit")


@dataclass
class Gate:
    name: str
    question: str
    claims: list[Claim]

    @property
    def passed(self) -> bool:
        return bool(self.claims) and all(claim.holds for claim in self.claims)

    def table(self) -> pd.DataFrame:
        """One row per claim: the claim, the measured value, the bound, and whether it holds."""
        return pd.DataFrame(
            [
                {
                    "gate": self.name,
                    "claim": c.claim,
                    "value": c.value,
                    "bound": f"{c.relation} {c.bound:g}",
                    "holds": c.holds,
                }
                for c in self.claims
            ]
        )


def write_gate(scores: pd.DataFrame, batch_size: int, methods=GATE_METHODS) -> Gate:
    """G1 from the evaluation of one written batch: ``scores`` has rows ``method``, ``metric``,
    ``teacher_forced`` (``evaluate_requests`` of each method's edited model, with a ``method`` column)."""
    claims = []
    for method in methods:
        part = scores[scores.method == method]
        if part.empty:
            raise ValueError(f"write_gate needs the scores of {method}; present: {sorted(scores.method.unique())}")
        means = part.groupby("metric").teacher_forced.mean()
        for metric, bound in (
            ("reliability", G1_RELIABILITY),
            ("generality", G1_GENERALITY),
            ("locality", G1_LOCALITY),
        ):
            if metric not in means:
                raise ValueError(f"write_gate: no {metric} scores for {method}")
            claims.append(
                Claim(f"{method} writes a batch of {batch_size}: {metric} (TF)", means[metric], bound, at_least=True)
            )
    return Gate("G1 write", f"is one batch of {batch_size} written without breaking unrelated facts?", claims)


def paired_difference(
    finals: pd.DataFrame, metric: str, first: str, second: str, value: str = "teacher_forced"
) -> tuple[float, float, int]:
    """Mean and 95% half-width over seeds of ``first - second`` on ``metric`` (paired by seed).

    ``finals``: rows ``method``, ``seed``, ``metric``, ``value`` (``teacher_forced`` or ``exact_match``; e.g.
    ``final_scores``); the values are averaged per (method, seed, metric) first."""
    part = finals[finals.metric == metric].groupby(["method", "seed"])[value].mean()
    if first not in part.index.get_level_values(0) or second not in part.index.get_level_values(0):
        raise ValueError(f"paired_difference needs {first} and {second} for {metric}")
    a, b = part.xs(first), part.xs(second)
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        raise ValueError(f"{first} and {second} share no seed")
    mean, half = interval([a[s] - b[s] for s in seeds])
    return mean, half, len(seeds)


def sequential_gate(finals: pd.DataFrame, density: float) -> Gate:
    """G2 from the final scores of a sequential study at the paper's density (at least 2 seeds for an interval)."""
    mean, half, seeds = paired_difference(finals, "reliability", "AlphaEdit", "MEMIT")
    locality, locality_half, _ = paired_difference(finals, "locality", "AlphaEdit", "MEMIT")
    lower = mean - half if seeds > 1 else float("-inf")
    upper = locality + locality_half if seeds > 1 else locality
    claims = [
        Claim(
            f"AlphaEdit - MEMIT final reliability (TF), lower end of the 95% interval over {seeds} seeds",
            lower,
            0.0,
            at_least=True,
        ),
        Claim("AlphaEdit - MEMIT final locality (TF), upper end of the 95% interval", upper, 0.0, at_least=True),
    ]
    return Gate("G2 sequential", f"at density {density:.2f}, does AlphaEdit keep its edits better than MEMIT?", claims)


def mechanism_gate(summary: pd.DataFrame, band) -> Gate:
    """G3 from ``model.tracing.trace_summary`` of a trace run with ``band=band``."""
    band = sorted(band)
    mlp = summary[(summary.site == "mlp") & (summary.position == "subject last")].set_index("layer")
    together = summary[(summary.site == "mlp band") & (summary.position == "subject last")]
    if mlp.empty or together.empty:
        raise ValueError("mechanism_gate needs a trace with per-layer MLP sites and band= set")
    peak = int(mlp.indirect_effect.idxmax())
    claims = [
        Claim(
            f"the largest MLP indirect effect at the subject's last token is inside the band {band} "
            f"(peak at layer {peak}: 1 if inside)",
            float(peak in band),
            1.0,
            at_least=True,
        ),
        Claim(
            "restoring the band's MLP outputs at the subject's last token: share of the total effect",
            float(together.share_of_total.iloc[0]),
            G3_BAND_SHARE,
            at_least=True,
        ),
    ]
    return Gate(
        "G3 mechanism", "does the recall pass through the subject's last token's MLP states in the band?", claims
    )


def known_facts(model, tokenizer, requests, per_language: int, seed: int = 0, languages=None) -> list[dict]:
    """Facts the model answers right (greedy exact match on the true answer), ``per_language`` per language,
    drawn with ``seed``: the dicts ``model.tracing.causal_trace`` takes (prompt, subject, answer, joiner, lang)."""
    import random

    from langedit_mini.data.languages import LANGUAGES
    from langedit_mini.evaluation.scoring import score

    facts = []
    for language in languages or LANGUAGES:
        pool = [r for r in requests if r.lang == language]
        pool = random.Random(seed).sample(pool, min(len(pool), 6 * per_language))
        scores = score(
            model,
            tokenizer,
            [r.question for r in pool],
            [r.true_answers[0] for r in pool],
            [r.joiner for r in pool],
            predictions=False,
        )
        known = [r for r, right in zip(pool, scores.exact_match) if right][:per_language]
        facts += [
            {
                "prompt": r.question,
                "subject": r.subject,
                "answer": r.true_answers[0],
                "joiner": r.joiner,
                "lang": language,
            }
            for r in known
        ]
    return facts


@dataclass
class MechanismTrace:
    """What ``trace_mechanism`` read: the traced facts, the per-fact trace, its summary, and G3."""

    facts: list[dict]
    trace: pd.DataFrame
    summary: pd.DataFrame
    gate: Gate


def trace_known_facts(model, tokenizer, requests, per_language: int, seed: int = 0, samples: int = 10, **options):
    """``per_language`` facts the model knows in each language (``known_facts``) and their causal trace over
    every layer (``model.tracing.causal_trace``; ``options``: its ``band`` and ``positions``).
    Returns ``(facts, trace)``; raises ``ValueError`` when the model answers none of the sampled facts right."""
    from langedit_mini.model.tracing import causal_trace

    facts = known_facts(model, tokenizer, requests, per_language, seed)
    if not facts:
        raise ValueError("the model answers none of the sampled facts right: nothing to trace")
    return facts, causal_trace(model, tokenizer, facts, samples=samples, seed=seed, **options)


def trace_mechanism(model, tokenizer, requests, band, per_language: int, seed: int = 0, samples: int = 10):
    """G3 from start to end: ``trace_known_facts`` with ``band`` restored together, its ``trace_summary``,
    and ``mechanism_gate`` on it.

    Raises ``ValueError`` when the band is outside the model or the model answers none of the sampled
    facts right (nothing to trace).
    """
    from langedit_mini.model.architecture import detect_architecture, num_layers
    from langedit_mini.model.tracing import trace_summary

    last = num_layers(model, detect_architecture(model)) - 1
    if not all(0 <= layer <= last for layer in band):  # checked before the facts are scored
        raise ValueError(f"band {sorted(band)} is not inside the model's layers 0..{last}")
    facts, trace = trace_known_facts(model, tokenizer, requests, per_language, seed, samples, band=sorted(band))
    summary = trace_summary(trace)
    return MechanismTrace(facts, trace, summary, mechanism_gate(summary, band))


def subject_last_hidden_share(summary: pd.DataFrame) -> float:
    """The largest share of the total effect that restoring the whole hidden state at the subject's last
    token, after any one layer, brings back (a ``model.tracing.trace_summary``; NaN without hidden sites)."""
    hidden = summary[(summary.site == "hidden") & (summary.position == "subject last")]
    return float(hidden.share_of_total.max()) if len(hidden) else math.nan


PROBE_COLUMNS = ["layers", "band", "peak layer", "band share", "hidden share", "G3 passed", "final loss"]
PROBE_COLUMNS += ["training hours", "traced facts", "commit"]


def read_depth_probes(folder) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The depth probes of ``scripts/probe_depth.py`` under ``folder`` (``L<layers>/probe.json`` and
    ``trace_summary.csv``): one row per probe (layers, band, the layer of the largest MLP effect at the
    subject's last token, the band's share of the total effect, the largest share any layer's whole hidden
    state at the subject's last token restores, whether G3 passed, the final training loss, training hours,
    traced facts, commit), and each probe's per-layer MLP share of the total effect
    at the subject's last token (layers, layer, share_of_total). Both empty when no probe has run."""
    import json
    from pathlib import Path

    def depth(path):
        if not path.parent.name[1:].isdigit():
            raise ValueError(f"{path}: a probe folder is named L<layers>, not {path.parent.name}")
        return int(path.parent.name[1:])

    rows, curves = [], []
    for path in sorted(Path(folder).glob("L*/probe.json"), key=depth):
        info = json.loads(path.read_text())
        summary = pd.read_csv(path.parent / "trace_summary.csv")
        at_subject = summary[summary.position == "subject last"]
        band = at_subject[at_subject.site == "mlp band"]
        mlp = at_subject[at_subject.site == "mlp"]
        if band.empty or mlp.empty:
            raise ValueError(f"{path.parent / 'trace_summary.csv'} has no per-layer MLP or band rows")
        rows.append(
            {
                "layers": info["layers"],
                "band": info["band"],
                "peak layer": int(mlp.set_index("layer").indirect_effect.idxmax()),
                "band share": float(band.share_of_total.iloc[0]),
                "hidden share": subject_last_hidden_share(summary),
                "G3 passed": info["G3"]["passed"],
                "final loss": info["final_loss"],
                "training hours": info["training_seconds"] / 3600,
                "traced facts": info["traced_facts"],
                "commit": info["commit"][:8],
            }
        )
        curves.append(mlp[["layer", "share_of_total"]].assign(layers=info["layers"]))
    if not rows:
        return pd.DataFrame(columns=PROBE_COLUMNS), pd.DataFrame(columns=["layer", "share_of_total", "layers"])
    return pd.DataFrame(rows, columns=PROBE_COLUMNS), pd.concat(curves, ignore_index=True)


def read_position_traces(folder) -> pd.DataFrame:
    """The traces of ``scripts/trace_positions.py`` under ``folder`` (``<model>/trace_summary.csv`` and
    ``positions.json``), one row per model: its layers, traced facts, the subjects' mean token count, the
    share of the total effect that restoring the whole hidden state after the first layer brings back at
    the subject's first token, its last token and all its tokens together, and the first layer after
    which the prompt's last token alone brings back at least half (``half at last from``: where the
    subject has been read into the last position; NaN if never). Empty when nothing has been traced."""
    import json
    from pathlib import Path

    from langedit_mini.model.tracing import ALL_POSITIONS

    columns = ["model", "layers", "traced facts", "subject tokens", "first token", "last token", "whole subject"]
    columns += ["half at last from"]
    rows = []
    for path in sorted(Path(folder).glob("*/positions.json")):
        info = json.loads(path.read_text())
        summary = pd.read_csv(path.parent / "trace_summary.csv")
        hidden = summary[summary.site == "hidden"].pivot(index="layer", columns="position", values="share_of_total")
        missing = set(ALL_POSITIONS) - set(hidden.columns)
        if missing:
            raise ValueError(f"{path.parent / 'trace_summary.csv'} has no hidden-state rows at {sorted(missing)}")
        first = hidden.index.min()
        half = hidden.index[hidden["last"] >= 0.5]
        rows.append(
            {
                "model": info["model"],
                "layers": info["layers"],
                "traced facts": info["traced_facts"],
                "subject tokens": info["subject_tokens_mean"],
                "first token": hidden.loc[first, "subject first"],
                "last token": hidden.loc[first, "subject last"],
                "whole subject": hidden.loc[first, "subject span"],
                "half at last from": int(half.min()) if len(half) else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=columns).sort_values("layers", ignore_index=True)


def key_distinctness(model, tokenizer, requests, layers, *, architecture=None) -> pd.DataFrame:
    """Per layer: how alike the edit keys of different subjects are (one request per subject).

    Columns: ``subjects``, ``distinct_last_tokens`` (how many different token ids the subjects end
    in, tokenized alone), ``mean_cosine`` and ``p95_cosine`` of the pairwise cosine
    similarity of raw keys, ``share_above_0.95`` (pairs nearly parallel), ``effective_dimension``
    (participation ratio of the centred keys' covariance spectrum, from 1 to the number of subjects).
    """
    from langedit_mini.model.architecture import detect_architecture
    from langedit_mini.model.keys import compute_keys

    architecture = architecture or detect_architecture(model)
    chosen, seen = [], set()
    for request in requests:
        if request.subject not in seen:
            seen.add(request.subject)
            chosen.append(request)
    if len(chosen) < 2:
        raise ValueError("key_distinctness needs requests about at least two subjects")
    last_tokens = {tokenizer(r.subject, add_special_tokens=False)["input_ids"][-1] for r in chosen}
    rows = []
    for layer in layers:
        keys = compute_keys(model, tokenizer, architecture, chosen, layer).double()  # (d_k, n)
        unit = keys / keys.norm(dim=0, keepdim=True).clamp_min(1e-12)
        cosine = unit.T @ unit
        pairs = cosine[torch.triu(torch.ones_like(cosine, dtype=torch.bool), diagonal=1)]
        centred = keys - keys.mean(dim=1, keepdim=True)
        spectrum = torch.linalg.svdvals(centred) ** 2
        rows.append(
            {
                "layer": layer,
                "subjects": len(chosen),
                "distinct_last_tokens": len(last_tokens),
                "mean_cosine": float(pairs.mean()),
                "p95_cosine": float(pairs.quantile(0.95)),
                "share_above_0.95": float((pairs > 0.95).double().mean()),
                "effective_dimension": float(spectrum.sum() ** 2 / (spectrum**2).sum()),
            }
        )
    return pd.DataFrame(rows)


def covariance_coverage(statistics: dict, keys: dict, leftovers=(0.01, 0.05, 0.10)) -> pd.DataFrame:
    """Per layer and null-space cut: the share of the edit keys' energy in the null space of ``C0``.

    ``statistics``: layer -> ``SecondMoment``; ``keys``: layer -> (d_k, n) edit keys. A cut
    ``leftover=f`` discards the smallest eigenvalues holding ``f`` of trace(C0) (the cut the pocket
    defaults use). ``null_share`` near 0: the edit keys look like preserved keys, and a projected
    update can barely reach them; near 1: they lie where C0 has almost no energy. ``preserved_null_share``
    is the same share for C0's own keys (= the leftover fraction, by construction), for comparison.
    """
    rows = []
    for layer, moment in statistics.items():
        if layer not in keys:
            continue
        covariance = moment.covariance.double()
        values, vectors = torch.linalg.eigh(covariance)
        k = keys[layer].double()
        for fraction in leftovers:
            tau = tau_for_leftover(covariance, fraction)
            null = vectors[:, values < tau]
            energy = (null.T @ k).pow(2).sum(dim=0) / k.pow(2).sum(dim=0).clamp_min(1e-300)
            rows.append(
                {
                    "layer": layer,
                    "cut": f"leftover={fraction:.0%}",
                    "null_dim": int(null.shape[1]),
                    "d_k": int(values.numel()),
                    "null_share": float(energy.mean()),
                    "null_share_p10": float(energy.quantile(0.10)),
                    "preserved_null_share": float(values[values < tau].clamp_min(0).sum() / values.clamp_min(0).sum()),
                }
            )
    return pd.DataFrame(rows)
