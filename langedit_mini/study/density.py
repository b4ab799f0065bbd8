"""Edit density as the study's axis: how many edits fit into an edited layer before each method fails.

**Edit density** = total edits / ``d_k`` of an edited layer (every edit adds its key to every edited
layer). It decides which regime a study is in (reference, section 4): LangEdit's main run writes
2,400 edits into ``d_k`` 14336 (0.167), AlphaEdit's sequential runs 2,000 (0.140).

A testbed's grid (``density_grid``): six languages in language blocks (the delta schedule), the same facts in
every language (the paper's shape), and a batch size that keeps the paper's batch-to-``d_k`` ratio
(100 / 14336): on the pocket model (``d_k`` 1024) a batch of 7, on SmolLM2 (1536) 11. The density changes
with the number of edits per language only (1, 2, 4, 7, 11, 14 and 20 batches per language; 4 is the
paper's density), so every point writes batches of the same size into the same layer. The paper's density
is run with the 'mt' schedule too (the paper's second setting).

``density_plan`` orders the runs (the paper's density first, with every seed; then seed 0 at every point;
then the other seeds), each step a ``StudyPlan`` that ``runner.run_parts`` runs under ``<point>/``.
"""

from __future__ import annotations

from langedit_mini.data.languages import LANGUAGES
from langedit_mini.study.experiment import StudyPlan
from langedit_mini.study.verdicts import STUDY_SEEDS

#: the paper's batch of 100 edits into Llama-3-8B's d_k
REFERENCE_D_K, REFERENCE_BATCH = 14336, 100
#: operating points of the published runs (edits / d_k)
PAPER_DENSITY = 2400 / REFERENCE_D_K  # LangEdit, 6 languages x 400 MzsRE edits, Llama-3-8B-Instruct
ALPHAEDIT_DENSITY = 2000 / REFERENCE_D_K  # AlphaEdit's sequential runs
#: quoted, not measured here: an independent capacity curve of AlphaEdit on Llama-3-8B (layers 4-8, batches
#: of 100): (edits, efficacy). An unpublished study (reference, section 4): a rule of thumb, labelled as such.
QUOTED_CAPACITY_CURVE = ((2000, 0.955), (4000, 0.913), (6000, 0.840), (7000, 0.754), (8000, 0.619), (10000, 0.315))
#: batches per language at each point of a grid; the paper's density is 4 (at the paper's batch-to-d_k ratio,
#: 6 x 4 batches of 100 / 14336 x d_k edits = 0.167 d_k)
BATCHES_PER_LANGUAGE = (1, 2, 4, 7, 11, 14, 20)
PAPER_BATCHES = 4
#: facts set aside for tuning on the pocket world (``data.schedules.split_facts``)
POCKET_TUNING_FACTS = 200


def density(edits_per_language: int, d_k: int, languages: int = len(LANGUAGES)) -> float:
    """Edits per key dimension of an edited layer."""
    return edits_per_language * languages / d_k


def point_name(edits_per_language: int, schedule: str = "delta") -> str:
    """The folder of a grid point: ``e028`` (delta) or ``e028-mt``."""
    return f"e{edits_per_language:03d}" + ("" if schedule == "delta" else f"-{schedule}")


def grid_for(d_k: int, *, tuning_facts: int = POCKET_TUNING_FACTS) -> dict:
    """The density grid of an edited layer of ``d_k``: ``d_k``, ``batch_size`` (the paper's batch-to-d_k
    ratio), ``edits_per_language`` (``BATCHES_PER_LANGUAGE`` batches each), ``paper`` (the point at the
    paper's density) and ``tuning_facts``."""
    if not isinstance(d_k, int) or d_k < 1:
        raise ValueError(f"d_k must be a positive integer, got {d_k!r}")
    batch = max(1, round(d_k * REFERENCE_BATCH / REFERENCE_D_K))
    return {
        "d_k": d_k,
        "batch_size": batch,
        "edits_per_language": tuple(batch * k for k in BATCHES_PER_LANGUAGE),
        "paper": batch * PAPER_BATCHES,
        "tuning_facts": tuning_facts,
    }


def density_grid(testbed) -> dict:
    """``grid_for`` the ``d_k`` of the testbed's first edited layer (``testbeds.Testbed``)."""
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.model.architecture import detect_architecture, key_dimension

    layer = default_config("MEMIT", testbed.hparams).layers[0]
    return grid_for(key_dimension(testbed.model, detect_architecture(testbed.model), layer))


def density_plan(grid: dict, *, points=None, seeds=STUDY_SEEDS) -> list[dict]:
    """The runs of ``grid`` in order: the paper's point (delta, then mt) with every seed, then seed 0 at every
    other point (lowest density first), then the other seeds. Each step: ``point``, ``schedule``, ``seeds``
    and ``plan``, the ``StudyPlan`` (six languages, parallel facts; every batch scored at the paper's point,
    where the forgetting matrix is shown, else about eight full evaluations a run with each batch also scored
    right after its write; general-ability probes after every six batches at the paper's point, else after
    the last batch only)."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    known = {point_name(e): (e, "delta") for e in grid["edits_per_language"]}
    known[point_name(grid["paper"], "mt")] = (grid["paper"], "mt")
    chosen = list(known) if points is None else list(points)
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise ValueError(f"unknown points {unknown}; the grid: {', '.join(known)}")

    def step(name, step_seeds):
        edits, schedule = known[name]
        batches = edits * len(LANGUAGES) // grid["batch_size"]
        paper = edits == grid["paper"]
        plan = StudyPlan(
            languages=LANGUAGES,
            edits_per_language=edits,
            batch_size=grid["batch_size"],
            schedule=schedule,
            facts="parallel",
            evaluate_every=1 if paper else max(1, batches // 8),
            probe_every=6 if paper else batches,
            probe_limit=50,
        )
        return {"point": name, "schedule": schedule, "seeds": step_seeds, "plan": plan}

    paper_points = [p for p in chosen if known[p][0] == grid["paper"]]
    others = sorted((p for p in chosen if p not in paper_points), key=lambda p: known[p][0])
    plan = [step(p, seeds) for p in paper_points]
    plan += [step(p, seeds[:1]) for p in others]
    if len(seeds) > 1:
        plan += [step(p, seeds[1:]) for p in others]
    return plan


def operating_points(grid: dict, model: str) -> list[tuple[str, int, int, int]]:
    """The published runs' operating points, the book's earlier full-scale study and ``grid``'s points, as
    (run, edits, d_k, batch)."""
    rows = [
        ("LangEdit, main run (Llama-3-8B-Instruct, MzsRE 6 x 400)", 2400, REFERENCE_D_K, REFERENCE_BATCH),
        ("AlphaEdit, sequential runs (Llama-3-8B)", 2000, REFERENCE_D_K, REFERENCE_BATCH),
        ("this book before: full-scale study (pocket, 6 x 100)", 600, 1024, 100),
    ]
    return rows + [
        (f"this grid: {point_name(e)} ({model}, 6 x {e})", e * len(LANGUAGES), grid["d_k"], grid["batch_size"])
        for e in grid["edits_per_language"]
    ]
