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

import math
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


def _run_row(name: str, point: dict, method: str, seed: int, **values) -> dict:
    """One row of a per-run table: the point, its density and schedule, the method and seed, and ``values``."""
    identity = {"point": name, "density": point["density"], "schedule": point["schedule"]}
    return identity | {"method": method, "seed": seed} | values


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
            rows.append(_run_row(name, point, method, seed, **{"relative ability": float(ratio.mean())}))
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
            rows.append(_run_row(name, point, method, seed, **{"null space left": int(last.capacity_left.min())}))
    return pd.DataFrame(rows)


# --- gates and verdicts at the paper's density ---------------------------------------------------------

#: the verdict for a claim when the testbed fails a calibration gate
UNTESTABLE = "cannot be tested on a CPU testbed"


def interval_reading(mean: float, half: float, seeds: int) -> str:
    """What a difference's 95% interval over ``seeds`` shows: "above" or "below" when it excludes 0,
    "not separated" when it spans 0, "one seed" when there is no interval."""
    if seeds < 2:
        return "one seed"
    if mean - half > 0:
        return "above"
    if mean + half < 0:
        return "below"
    return "not separated"


def paired_verdict(
    finals: pd.DataFrame,
    metric: str,
    methods=("LangEdit-exact", "LangEdit-published"),
    baselines=("MEMIT", "AlphaEdit"),
    value: str = "teacher_forced",
    *,
    calibrated: bool = True,
) -> dict:
    """Does every one of ``methods`` score above every one of ``baselines`` on ``metric``?

    ``finals``: final scores of one point (``final_by_run`` rows of one point). For each pair, the mean and
    95% half-width over seeds of the difference, paired by seed (``calibration.paired_difference``).
    Verdict: "reproduced" when every pair's interval lies above 0, "not reproduced" when some pair's lies
    below 0, "not separated" otherwise; ``UNTESTABLE`` when the testbed is not ``calibrated`` (the pairs
    are still measured and returned). With one seed there is no interval: the verdict is "not judged"."""
    from langedit_mini.study.calibration import paired_difference

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
        f"{method} - {baseline}: {mean:+.3f} ± {half:.3f}" for (method, baseline), (mean, half) in pairs.items()
    )
    return {"verdict": verdict, "pairs": pairs, "standing": standing, "seeds": min(seeds)}


def gate_table(calibration: dict, finals_at_paper: pd.DataFrame | None, paper_density: float) -> pd.DataFrame:
    """Every gate's claims, measured value, bound and whether it holds: G1 and G3 from a calibration record
    (``scripts/calibrate.py``'s ``calibration.json``), G2 from the final scores at the paper's density
    (``None``: not run yet, listed as not passed)."""
    from langedit_mini.study.calibration import sequential_gate

    rows = []
    for name in ("G1", "G3"):
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
    table = pd.DataFrame(rows)
    return table[["gate", "claim", "value", "bound", "holds"]]


# --- tables for the chapter ------------------------------------------------------------------------------


def operating_points(model: str = "pocket") -> pd.DataFrame:
    """The published runs' operating points, the book's earlier full-scale study and this grid's points:
    edits, d_k, batch, edits per key dimension and batch per key dimension."""
    grid = DENSITY_GRIDS[model]
    rows = [
        ("LangEdit, main run (Llama-3-8B-Instruct, MzsRE 6 x 400)", 2400, REFERENCE_D_K, REFERENCE_BATCH),
        ("AlphaEdit, sequential runs (Llama-3-8B)", 2000, REFERENCE_D_K, REFERENCE_BATCH),
        ("this book before: full-scale study (pocket, 6 x 100)", 600, grid["d_k"], 100),
    ]
    rows += [
        (f"this grid: {point_name(e)} ({model}, 6 x {e})", e * len(LANGUAGES), grid["d_k"], grid["batch_size"])
        for e in grid["edits_per_language"]
    ]
    table = pd.DataFrame(rows, columns=["run", "edits", "d_k", "batch"])
    table["edits / d_k"] = table.edits / table.d_k
    table["batch / d_k"] = table.batch / table.d_k
    return table.set_index("run")


def runs_on_disk(points: dict[str, dict], current_hash: str | None = None) -> pd.DataFrame:
    """Per point and method: the seeds finished, the mean wall time per run (minutes), and how many runs were
    made by other code than ``current_hash`` (stale)."""
    rows = []
    for name, point in points.items():
        for method, part in point["runs"].groupby("method"):
            rows.append(
                {
                    "point": name,
                    "density": round(point["density"], 3),
                    "schedule": point["schedule"],
                    "method": method,
                    "seeds": ", ".join(str(s) for s in sorted(part.seed)),
                    "minutes per run": round(part.wall_s.mean() / 60, 1),
                    "stale": int((part.package_hash != current_hash).sum()) if current_hash else 0,
                }
            )
    return pd.DataFrame(rows)


def mean_cell(part: pd.DataFrame, value: str, digits: int = 3) -> str:
    """ "0.931 ± 0.010" over the seeds of ``part`` (one row per seed), to ``digits`` decimals; the mean alone
    for one seed; "not run" for none."""
    from langedit_mini.study.experiment import interval

    if part.empty:
        return "not run"
    mean, half = interval(part[value])
    return f"{mean:.{digits}f}" + ("" if math.isnan(half) else f" ± {half:.{digits}f}")


def paper_point_table(finals: pd.DataFrame, metrics=("reliability", "generality", "locality", "portability")):
    """Rows: methods (in ``METHODS`` order); columns: "<metric> TF" and "<metric> EM", cells mean ± 95%
    half-width over seeds; and the seed count. ``finals``: ``final_by_run`` rows of one point."""
    from langedit_mini.editing.registry import METHODS

    rows = {}
    for method in [m for m in METHODS if m in set(finals.method)]:
        part = finals[finals.method == method]
        row = {}
        for metric in metrics:
            scores = part[part.metric == metric]
            row[f"{metric} TF"] = mean_cell(scores, "teacher_forced")
            row[f"{metric} EM"] = mean_cell(scores, "exact_match")
        row["seeds"] = part.seed.nunique()
        rows[method] = row
    return pd.DataFrame(rows).T


def holds_up_to(finals: pd.DataFrame, thresholds=(0.9, 0.8, 0.5), metric: str = "reliability") -> pd.DataFrame:
    """Per method: the largest density of the grid up to which the mean final ``metric`` (teacher-forced,
    mean over seeds) stays at or above each threshold at every point (None when it is below already at the
    lowest point): a capacity curve read off the grid."""
    from langedit_mini.editing.registry import METHODS

    means = finals[finals.metric == metric].groupby(["method", "density"]).teacher_forced.mean()
    rows = {}
    for method in [m for m in METHODS if m in means.index.get_level_values(0)]:
        curve = means.xs(method).sort_index()
        row = {}
        for threshold in thresholds:
            below = curve[curve < threshold]
            kept = curve[curve.index < below.index.min()] if len(below) else curve
            row[f">= {threshold:g} up to"] = round(float(kept.index.max()), 3) if len(kept) else None
        rows[method] = row
    return pd.DataFrame(rows).T


def order_by_density(finals: pd.DataFrame, metric: str = "reliability", value: str = "teacher_forced") -> pd.DataFrame:
    """Per density: the methods ordered by their mean final ``metric`` (over seeds), best first, with the
    means and the number of seeds behind them; ties (equal to three decimals) share a place."""
    means = finals[finals.metric == metric].groupby(["density", "method"])[value].agg(["mean", "count"])
    rows = []
    for density, part in means.groupby(level=0):
        part = part.droplevel(0).sort_values("mean", ascending=False)
        order, previous = "", None
        for method, mean in part["mean"].items():
            if previous is not None:
                order += " = " if round(mean, 3) == round(previous, 3) else " > "
            order += method
            previous = mean
        rows.append(
            {"density": round(float(density), 3), "order": order, "seeds": int(part["count"].min())}
            | {method: round(float(mean), 3) for method, mean in part["mean"].items()}
        )
    return pd.DataFrame(rows)


def below_from(finals: pd.DataFrame, method: str, other: str, metric: str = "reliability") -> float | None:
    """The lowest density of the grid from which ``method``'s mean final ``metric`` (teacher-forced, mean
    over seeds) is below ``other``'s at that point and at every denser one (None: not at the densest)."""
    means = finals[finals.metric == metric].groupby(["density", "method"]).teacher_forced.mean().unstack()
    for name in (method, other):
        if name not in means:
            raise ValueError(f"below_from: no final {metric} scores for {name}; present: {sorted(means.columns)}")
    below = (means[method] < means[other]).sort_index()
    if not below.iloc[-1]:
        return None
    start = below.index[-1]
    for density in reversed(below.index):
        if not below[density]:
            break
        start = density
    return round(float(start), 3)


def paired_by_density(
    finals: pd.DataFrame, methods, reference: str, metric: str = "reliability", value: str = "teacher_forced"
) -> pd.DataFrame:
    """Per density and method: ``method - reference`` on the final ``metric``, paired by seed
    (``calibration.paired_difference``), with the 95% half-width and the number of shared seeds.

    ``reading``: ``interval_reading`` of the difference ("above", "below", "not separated", "one seed"),
    or "not run" when the method and the reference share no seed at that density.
    Columns: density, method, mean, half, seeds, reading."""
    from langedit_mini.study.calibration import paired_difference

    rows = []
    for density_, part in finals[finals.metric == metric].groupby("density"):
        seeds_of = part.groupby("method").seed.agg(set)
        for method in methods:
            row = {"density": round(float(density_), 3), "method": method}
            if not seeds_of.get(method, set()) & seeds_of.get(reference, set()):
                rows.append(row | {"mean": math.nan, "half": math.nan, "seeds": 0, "reading": "not run"})
                continue
            mean, half, seeds = paired_difference(part, metric, method, reference, value)
            reading = interval_reading(mean, half, seeds)
            rows.append(row | {"mean": mean, "half": half, "seeds": seeds, "reading": reading})
    return pd.DataFrame(rows, columns=["density", "method", "mean", "half", "seeds", "reading"])


def paired_cell(row) -> str:
    """ "+0.014 ± 0.008 *" for a ``paired_by_density`` row (``*``: the 95% interval excludes 0); the
    difference alone for one seed; the reading for a cell not run."""
    if row["reading"] == "not run":
        return "not run"
    if row["reading"] == "one seed":
        return f"{row['mean']:+.3f}"
    star = " *" if row["reading"] in ("above", "below") else ""
    return f"{row['mean']:+.3f} ± {row['half']:.3f}{star}"


def densities_read(paired: pd.DataFrame, method: str, reading: str) -> list[float]:
    """The densities at which ``paired_by_density`` reads ``method`` as ``reading`` ("above", "below"...)."""
    return sorted(paired[(paired.method == method) & (paired.reading == reading)].density.tolist())
