"""Verdicts and claims as data: what a run must show, whether a testbed is fit to judge, and whether a claim of
the paper is reproduced.

* ``study_claims``: what every sequential run must show (every edit scored as planned; LangEdit's exact
  form never out of null space; every method writes its edits), as ``Claim`` objects a chapter passes to
  ``require`` and a committed run records.
* The calibration gates (``SPEC`` section 9; fixed before any testbed was measured), each a list of
  ``Claim`` objects, passed when every claim holds:

  - **G1 write** (``write_gate``): one batch of the study's batch size, written by MEMIT and by AlphaEdit,
    reaches teacher-forced reliability >= 0.95 and generality >= 0.85 and keeps locality >= 0.90;
  - **G2 sequential** (``sequential_gate``): at the paper's density AlphaEdit's final reliability exceeds
    MEMIT's by a margin whose 95% interval over seeds (paired by seed) excludes 0, and its locality is no
    worse (the interval of its locality difference reaches 0 or above);
  - **G3 mechanism** (``mechanism_gate``): causal tracing finds the largest MLP indirect effect at the
    subject's last token inside the edited band, and restoring the band's MLP outputs there together
    brings back at least a third of the subject's total effect (this project's bar for "the fact passes
    through there").

* ``paired_verdict``: the one verdict on a claim "LangEdit scores higher": every pair (a LangEdit form
  against a baseline) is read from the 95% interval of its difference paired by seed
  (``intervals.interval_reading``): "reproduced" when every pair lies above 0, "not reproduced" when one
  lies below, "not separated" otherwise; "cannot be tested on a CPU testbed" when the testbed fails a gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from langedit_mini.study.claims import Claim
from langedit_mini.study.intervals import after_last_batch, format_interval, interval_reading, paired_difference

G1_RELIABILITY, G1_GENERALITY, G1_LOCALITY = 0.95, 0.85, 0.90
G3_BAND_SHARE = 1 / 3
#: the seeds of a study (its runs are paired by seed): the runners' default, and every one of them G2 asks for
STUDY_SEEDS = (0, 1, 2)
#: how many seeds G2 asks for; a reading with fewer is provisional
G2_SEEDS = len(STUDY_SEEDS)
GATE_METHODS = ("MEMIT", "AlphaEdit")
#: the smallest mean reliability (teacher-forced) after the last batch at which a method counts as writing its edits
WRITES_EDITS = 0.5
#: the verdict for a claim when the testbed fails a calibration gate
UNTESTABLE = "cannot be tested on a CPU testbed"
#: the LangEdit forms a claim is about, and the baselines they are compared with
LANGEDIT_FORMS = ("LangEdit-exact", "LangEdit-published")
CLOSED_FORM_BASELINES = ("MEMIT", "AlphaEdit")


def study_claims(study, evaluate_every: int = 1) -> dict[str, Claim]:
    """What a sequential study (``experiment.StudyResult``) must show, as data: ``scored``, ``capacity``,
    ``writes``.

    ``scored``: the number of scores missing from, or beyond, the plan: every edit so far after every
    ``evaluate_every``-th batch and after the last, and each batch in between on its own edits right after
    its write (``run_study(evaluate_every=...)``); ``capacity``: LangEdit's exact form never ran out of null
    space (smallest capacity left, >= 1; 1 when it was not run); ``writes``: every method writes its edits
    (smallest mean teacher-forced reliability after the last batch, >= ``WRITES_EDITS``), a claim about a
    world whose facts the model knows.
    """
    if not isinstance(evaluate_every, int) or evaluate_every < 1:
        raise ValueError(f"evaluate_every must be a positive integer, got {evaluate_every!r}")
    reliability = study.evaluations[study.evaluations.metric == "reliability"]
    counts = reliability.groupby(["method", "seed", "after_batch"]).size()
    missing = 0
    for method, seed in reliability[["method", "seed"]].drop_duplicates().itertuples(index=False):
        batches = study.schedules[seed].batches
        for after in range(len(batches)):
            full = after % evaluate_every == evaluate_every - 1 or after == len(batches) - 1
            expected = sum(len(batch) for batch in batches[: after + 1]) if full else len(batches[after])
            missing += abs(int(counts.get((method, seed, after), 0)) - expected)
    plan = (
        "every edit so far is scored after every batch"
        if evaluate_every == 1
        else f"every edit so far is scored every {evaluate_every} batches and after the last, each batch in "
        "between right after its write"
    )
    smallest = study.batches.dropna(subset=["capacity_left"]).groupby("method").capacity_left.min()
    exact = smallest.get("LangEdit-exact", 1)
    final = after_last_batch(reliability)
    return {
        "scored": Claim(f"{plan} (missing scores)", missing, 0),
        "capacity": Claim(
            "LangEdit-exact never ran out of null space (smallest capacity left)", exact, 1, at_least=True
        ),
        "writes": Claim(
            "every method writes its edits (smallest mean reliability, teacher-forced)",
            final.groupby("method").teacher_forced.mean().min(),
            WRITES_EDITS,
            at_least=True,
        ),
    }


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
                {"gate": self.name, "claim": c.claim, "value": c.value, "bound": f"{c.relation} {c.bound:g}"}
                | {"holds": c.holds}
                for c in self.claims
            ]
        )

    def as_dict(self) -> dict:
        """What a calibration record stores of the gate."""
        return {"passed": self.passed, "claims": [claim.as_dict() for claim in self.claims]}


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


def gate_table(calibration: dict, finals_at_paper: pd.DataFrame | None, paper_density: float) -> pd.DataFrame:
    """Every gate's claims, measured value, bound and whether it holds: G1 and G3 from a calibration record
    (``store.read_calibration``; a gate it did not measure is listed as not passed), G2 from the final scores
    at the paper's density (``None`` or fewer than two seeds: not measured, listed as not passed)."""
    rows = []
    for name in ("G1", "G3"):
        if name not in calibration["gates"]:  # a calibration of some parts only
            rows.append({"gate": name, "claim": "not measured", "value": float("nan"), "bound": "", "holds": False})
            continue
        for claim in calibration["gates"][name]["claims"]:
            rows.append(
                {
                    "gate": name,
                    "claim": claim["claim"],
                    "value": claim["value"],
                    "bound": f"{'>=' if claim['at_least'] else '<='} {claim['bound']:g}",
                    "holds": bool(claim["holds"]),
                }
            )
    if finals_at_paper is None or finals_at_paper.empty or finals_at_paper.seed.nunique() < 2:
        rows.append(
            {
                "gate": "G2",
                "claim": "AlphaEdit above MEMIT at the paper's density (needs >= 2 seeds)",
                "value": float("nan"),
                "bound": "> 0",
                "holds": False,
            }
        )
    else:
        rows += sequential_gate(finals_at_paper, paper_density).table().assign(gate="G2").to_dict("records")
    return pd.DataFrame(rows)[["gate", "claim", "value", "bound", "holds"]]


def paired_verdict(
    finals: pd.DataFrame,
    metric: str,
    methods=LANGEDIT_FORMS,
    baselines=CLOSED_FORM_BASELINES,
    value: str = "teacher_forced",
    *,
    calibrated: bool = True,
) -> dict:
    """Does every one of ``methods`` score above every one of ``baselines`` on ``metric``?

    ``finals``: final scores of one study (``intervals.final_scores``). For each pair, the mean and 95%
    half-width over seeds of the difference, paired by seed. Verdict: "reproduced" when every pair's
    interval lies above 0, "not reproduced" when some pair's lies below 0, "not separated" otherwise;
    ``UNTESTABLE`` when the testbed is not ``calibrated`` (the pairs are still measured and returned); "not
    judged (...)" with one seed (no interval) or a method without a run. Returns ``verdict``, ``pairs``
    ((method, baseline) -> (mean, half)), ``standing`` (the pairs as text) and ``seeds`` (the fewest shared).
    """
    present = set(finals.method)
    missing = [m for m in (*methods, *baselines) if m not in present]
    if missing:
        return {"verdict": f"not judged (no run of {', '.join(missing)})", "pairs": {}, "standing": "", "seeds": 0}
    pairs, seeds, readings = {}, set(), set()
    for method in methods:
        for baseline in baselines:
            mean, half, count = paired_difference(finals, metric, method, baseline, value)
            pairs[method, baseline] = (mean, half)
            seeds.add(count)
            readings.add(interval_reading(mean, half, count))
    if "one seed" in readings:
        verdict = "not judged (one seed: no interval)"
    elif not calibrated:
        verdict = UNTESTABLE
    elif readings == {"above"}:
        verdict = "reproduced"
    elif "below" in readings:
        verdict = "not reproduced"
    else:
        verdict = "not separated"
    standing = "; ".join(
        f"{method} - {baseline}: {format_interval(mean, half, signed=True)}"
        for (method, baseline), (mean, half) in pairs.items()
    )
    return {"verdict": verdict, "pairs": pairs, "standing": standing, "seeds": min(seeds)}
