"""Edit density as the study's axis: how many edits fit into an edited layer before each method fails.

**Edit density** = total edits / ``d_k`` of an edited layer (every edit adds its key to every edited
layer). It decides which regime a study is in (reference, section 4): LangEdit's main run writes
2,400 edits into ``d_k`` 14336 (0.167), AlphaEdit's sequential runs 2,000 (0.140).

The grid (``DENSITY_GRIDS``): six languages in language blocks (the delta schedule), the same facts in
every language (the paper's shape), and a batch size that keeps the paper's batch-to-``d_k`` ratio
(100 / 14336): on the pocket model (``d_k`` 1024) a batch of 7. The density changes with the number of
edits per language only, so every point writes batches of the same size into the same layer. The
paper's density is run with the 'mt' schedule too (the paper's second setting).

``density_plan`` orders the runs (the paper's density first, with every seed; then seed 0 at every
point; then the other seeds), ``point_arguments`` turns a step into ``scripts/run_study.py`` arguments,
and the readers below summarise what is on disk.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from langedit_mini.data.languages import LANGUAGES

#: the paper's batch of 100 edits into Llama-3-8B's d_k
REFERENCE_D_K, REFERENCE_BATCH = 14336, 100
#: operating points of the published runs (edits / d_k)
PAPER_DENSITY = 2400 / REFERENCE_D_K  # LangEdit, 6 languages x 400 MzsRE edits, Llama-3-8B-Instruct
ALPHAEDIT_DENSITY = 2000 / REFERENCE_D_K  # AlphaEdit's sequential runs
#: quoted, not measured here: an independent capacity curve of AlphaEdit on Llama-3-8B (layers 4-8, batches
#: of 100): (edits, efficacy). An unpublished study (reference, section 4): a rule of thumb, labelled as such.
QUOTED_CAPACITY_CURVE = ((2000, 0.955), (4000, 0.913), (6000, 0.840), (7000, 0.754), (8000, 0.619), (10000, 0.315))

#: per testbed: its edited layers' d_k, the batch size (the paper's batch-to-d_k ratio), the grid of edits per
#: language (multiples of the batch: the delta schedule fills whole batches) and the point nearest the paper's density
DENSITY_GRIDS = {
    "pocket": {
        "d_k": 1024,
        "batch_size": 7,
        "edits_per_language": (7, 14, 28, 49, 77, 98, 140),
        "paper": 28,
        "tuning_facts": 200,
    },
}


def density(edits_per_language: int, d_k: int, languages: int = len(LANGUAGES)) -> float:
    """Edits per key dimension of an edited layer."""
    return edits_per_language * languages / d_k


def point_name(edits_per_language: int, schedule: str = "delta") -> str:
    """The folder of a grid point: ``e028`` (delta) or ``e028-mt``."""
    return f"e{edits_per_language:03d}" + ("" if schedule == "delta" else f"-{schedule}")


def batches_at(model: str, edits_per_language: int) -> int:
    grid = DENSITY_GRIDS[model]
    return edits_per_language * len(LANGUAGES) // grid["batch_size"]


def density_plan(model: str = "pocket", *, points=None, seeds=(0, 1, 2)) -> list[dict]:
    """The runs in order: the paper's point (delta, then mt) with every seed, then seed 0 at every other
    point (lowest density first), then the other seeds. Each step: ``point``, ``edits_per_language``,
    ``schedule``, ``seeds``, ``evaluate_every`` (every batch at the paper's point, where the forgetting
    matrix is shown; else about eight full evaluations a run, each batch also scored right after its
    write) and ``probe_every`` (general-ability probes after every six batches at the paper's point,
    else after the last batch only)."""
    if model not in DENSITY_GRIDS:
        raise ValueError(f"no density grid for {model!r}; known: {', '.join(DENSITY_GRIDS)}")
    grid = DENSITY_GRIDS[model]
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    known = {point_name(e, s): (e, s) for e in grid["edits_per_language"] for s in ("delta",)}
    known[point_name(grid["paper"], "mt")] = (grid["paper"], "mt")
    chosen = list(known) if points is None else list(points)
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise ValueError(f"unknown points {unknown}; the grid of {model}: {', '.join(known)}")

    def step(name, step_seeds):
        edits, schedule = known[name]
        batches = batches_at(model, edits)
        paper = edits == grid["paper"]
        return {
            "point": name,
            "edits_per_language": edits,
            "schedule": schedule,
            "seeds": step_seeds,
            "evaluate_every": 1 if paper else max(1, batches // 8),
            "probe_every": 6 if paper else batches,
        }

    paper_points = [p for p in chosen if known[p][0] == grid["paper"]]
    others = sorted((p for p in chosen if p not in paper_points), key=lambda p: known[p][0])
    plan = [step(p, seeds) for p in paper_points]
    plan += [step(p, seeds[:1]) for p in others]
    if len(seeds) > 1:
        plan += [step(p, seeds[1:]) for p in others]
    return plan


def point_arguments(model: str, step: dict, output: str | Path) -> list[str]:
    """``scripts/run_study.py`` arguments for one step of ``density_plan``, into ``output/<point>``."""
    grid = DENSITY_GRIDS[model]
    return [
        "--model",
        model,
        "--edits-per-language",
        str(step["edits_per_language"]),
        "--batch-size",
        str(grid["batch_size"]),
        "--seeds",
        *map(str, step["seeds"]),
        "--facts",
        "parallel",
        "--schedule",
        step["schedule"],
        "--tuning-facts",
        str(grid["tuning_facts"]),
        "--evaluate-every",
        str(step["evaluate_every"]),
        "--probe-every",
        str(step["probe_every"]),
        "--output",
        str(Path(output) / step["point"]),
    ]


# --- reading the runs on disk --------------------------------------------------------------------------


def read_point(folder: str | Path) -> dict | None:
    """One point's finished runs: ``parameters`` and, per raw table (``results.RAW``), the parts joined
    (``method`` and ``seed`` columns); ``runs``: (method, seed, package hash, wall seconds) per part.
    None when the folder holds no finished run."""
    from langedit_mini.study.results import RAW, read_parts, read_raw

    finished, _ = read_parts(folder)
    if not finished:
        return None
    parameters = finished[0][1]["parameters"]
    tables = {name: read_raw(folder, name) for name in RAW}
    runs = pd.DataFrame(
        [
            {
                "method": info["method"],
                "seed": info["seed"],
                "package_hash": info["package_hash"],
                "wall_s": info["wall_s"],
                "finished": info["finished"],
            }
            for _, info in finished
        ]
    )
    return {"parameters": parameters, "runs": runs, **tables}


def read_density(root: str | Path, model: str = "pocket") -> dict[str, dict]:
    """Every point of ``model``'s grid found under ``root`` (``results/density/<model>``): point name ->
    ``read_point``, with ``density`` (edits per key dimension) and ``schedule`` added."""
    grid = DENSITY_GRIDS[model]
    points = {}
    for folder in sorted(Path(root).glob("e*")):
        point = read_point(folder)
        if point is None:
            continue
        parameters = point["parameters"]
        edits = parameters["edits_per_language"]
        point["density"] = density(edits, grid["d_k"], len(parameters["languages"]))
        point["schedule"] = parameters.get("schedule", "delta")
        point["edits"] = edits * len(parameters["languages"])
        points[folder.name] = point
    return points


def final_by_run(points: dict[str, dict]) -> pd.DataFrame:
    """Per point, method, seed and metric: the mean teacher-forced and exact-match score of every edit
    after the run's last batch. Columns: point, schedule, density, edits, method, seed, metric,
    teacher_forced, exact_match."""
    from langedit_mini.study.experiment import after_last_batch

    frames = []
    for name, point in points.items():
        final = after_last_batch(point["evaluations"])
        means = final.groupby(["method", "seed", "metric"])[["teacher_forced", "exact_match"]].mean().reset_index()
        frames.append(
            means.assign(point=name, schedule=point["schedule"], density=point["density"], edits=point["edits"])
        )
    columns = ["point", "schedule", "density", "edits", "method", "seed", "metric", "teacher_forced", "exact_match"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def with_intervals(by_run: pd.DataFrame, keys, value: str) -> pd.DataFrame:
    """Mean, 95% half-width over seeds and the seed count of ``value`` per ``keys``."""
    from langedit_mini.study.experiment import interval

    rows = []
    for key, part in by_run.groupby(list(keys)):
        mean, half = interval(part[value])
        rows.append(
            dict(zip(keys, key if isinstance(key, tuple) else (key,)))
            | {"mean": mean, "half": half, "seeds": len(part)}
        )
    return pd.DataFrame(rows)


def write_forget_by_run(points: dict[str, dict]) -> pd.DataFrame:
    """``study.sequential.write_forget`` of every run of every point (reliability): written, final, lost,
    kept, forgotten, never written, late; with point, density and schedule."""
    from langedit_mini.study.sequential import write_forget

    frames = [
        write_forget(point["evaluations"]).assign(point=name, density=point["density"], schedule=point["schedule"])
        for name, point in points.items()
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def general_ability_by_run(points: dict[str, dict]) -> pd.DataFrame:
    """Per point, method and seed: the pocket general-ability probes after the last batch, as the mean over
    probes and languages of the score relative to the unedited model (accuracy-like probes: edited / unedited;
    perplexity: unedited / edited, so 1 = unchanged and lower = worse for every probe)."""
    rows = []
    for name, point in points.items():
        probes = point["probes"]
        if probes is None or probes.empty:
            continue
        unedited = probes[probes.method == "unedited"].set_index(["lang", "probe", "metric"]).value
        edited = probes[probes.method != "unedited"]
        last = edited.groupby(["method", "seed"]).after_batch.transform("max")
        edited = edited[edited.after_batch == last]
        for (method, seed), part in edited.groupby(["method", "seed"]):
            part = part.set_index(["lang", "probe", "metric"]).value
            base = unedited.reindex(part.index)
            ratio = (base / part).where(part.index.get_level_values("metric") == "perplexity", part / base)
            rows.append(
                {
                    "point": name,
                    "density": point["density"],
                    "schedule": point["schedule"],
                    "method": method,
                    "seed": seed,
                    "relative ability": float(ratio.mean()),
                }
            )
    return pd.DataFrame(rows)


def null_space_left(points: dict[str, dict]) -> pd.DataFrame:
    """Per point, method and seed (null-space methods only): the smallest null-space dimension left over the
    edited layers after the last batch (``capacity_left``)."""
    rows = []
    for name, point in points.items():
        batches = point["batches"]
        if "capacity_left" not in batches:
            continue
        with_capacity = batches.dropna(subset=["capacity_left"])
        for (method, seed), part in with_capacity.groupby(["method", "seed"]):
            last = part[part.batch == part.batch.max()]
            rows.append(
                {
                    "point": name,
                    "density": point["density"],
                    "schedule": point["schedule"],
                    "method": method,
                    "seed": seed,
                    "null space left": int(last.capacity_left.min()),
                }
            )
    return pd.DataFrame(rows)
