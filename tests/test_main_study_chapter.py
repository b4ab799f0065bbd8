"""The readings of the chapter "The main study on real LLMs" (``study.main_study_chapter``), on small studies
written to disk as ``scripts/run_density.py`` writes them: which runs are on disk and which are stale, the final
table, the differences paired by seed, written and forgotten, the cross-lingual matrix (and why it says nothing
about transfer when every fact is edited in every language), the null space left, the proxies, and the checks."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest

from langedit_mini.study import main_study_chapter as chapter
from langedit_mini.study import store

METRICS = ("reliability", "generality", "locality", "portability")
LANGS = ("en", "de")


def _run(folder, method, seed, final, *, facts="parallel", package_hash="h", capacity=None, transfer=None):
    """A finished run under ``folder``: two batches (en then de) of two edits each, every edit so far scored after
    each batch on four metrics (1.0 right after its write; ``final`` after the last batch, exact match when
    ``final`` >= 0.5), each edit scored in both languages after the last batch (``transfer``: a function of
    (edited in, scored in) giving the score, default ``final``), ``capacity`` the null space left after each batch."""
    rows = []
    for after in (0, 1):
        for batch in range(after + 1):
            lang = LANGS[batch]
            for request in range(2):
                for metric in METRICS:
                    value = final if after == 1 else 1.0
                    rows.append(
                        {"after_batch": after, "batch": batch, "request": request, "fact_id": f"f{request}"}
                        | {"lang": lang, "metric": metric, "teacher_forced": value, "exact_match": value >= 0.5}
                        | {"method": method, "seed": seed}
                    )
    score = transfer or (lambda edited, scored: final)
    moves = [
        {"edited in": a, "scored in": b, "fact_id": f"f{r}", "teacher_forced": score(a, b)}
        | {"exact_match": False, "method": method, "seed": seed}
        for a in LANGS
        for r in range(2)
        for b in LANGS
    ]
    batches = pd.DataFrame(
        [
            {"method": method, "seed": seed, "batch": b, "lang": LANGS[b], "seconds": 1.0}
            | {"capacity_left": None if capacity is None else capacity - 2 * b, "unreached": b, "refused": False}
            for b in (0, 1)
        ]
    )
    probes = pd.DataFrame(
        [
            {"lang": lang, "probe": probe, "metric": metric, "value": value, "n": n}
            | {"method": who, "seed": s, "after_batch": after}
            for who, s, after, scale in (("unedited", -1, -1, 1.0), (method, seed, 1, 2.0))
            for lang in LANGS
            for probe, metric, value, n in (
                ("held-out text", "perplexity", 10.0 * scale, 50),
                ("real facts", "teacher-forced", 0.3, 50),
                ("real facts", "exact match", 0.1, 50),
                ("known facts", "retained", 1.0 / scale, 2),
            )
        ]
    )
    study = SimpleNamespace(
        evaluations=pd.DataFrame(rows), probes=probes, transfer=pd.DataFrame(moves), batches=batches
    )
    parameters = {"edits_per_language": 12, "batch_size": 3, "languages": list(LANGS), "schedule": "delta"}
    parameters["facts"] = facts
    record = {"method": method, "seed": seed, "parameters": parameters, "package_hash": package_hash}
    record |= {"wall_s": 600.0, "finished": "2026-12-05"}
    name = store.part_name(seed, method)
    store.begin_part(folder, name)
    store.finish_part(folder, name, study, record)


@pytest.fixture
def roots(tmp_path):
    calibration, density = tmp_path / "calibration", tmp_path / "density"
    store.write_calibration(calibration / "a", {"band": [1, 2], "batch_size": 3, "gates": {}, "commit": "c"}, {})
    return density, calibration


def _load(roots, model="a", schedule="delta"):
    return chapter.ModelStudy.load(model, *roots, schedule, current_hash="h")


def _not_run_line(model):
    return (
        f"{model}, e012: no finished run yet (python scripts/run_density.py --model {model} --points e012 --max-runs 1)"
    )


def test_a_model_without_a_calibration_or_runs_says_so_and_names_the_command(roots):
    density, calibration = roots
    studies = [_load(roots), chapter.ModelStudy.load("b", density, calibration, current_hash="h")]
    assert studies[0].point == "e012" and studies[1].point is None  # 4 batches per language of 3
    reading = chapter.runs_reading(studies)
    assert reading.lines[0] == (
        "a, e012: no finished run yet (python scripts/run_density.py --model a --points e012 --max-runs 1)"
    )
    assert reading.lines[1] == "b: no calibration record, so no batch size and no paper point yet"
    assert reading.glue["a_main_runs"] == "none yet" and reading.glue["b_main_stale"] == 0
    assert chapter.paired_reading(studies).glue["a_paired"] == "no two methods share a seed yet"
    assert _load(roots, schedule="mt").point == "e012-mt"
    with pytest.raises(ValueError, match="schedule must be 'delta' or 'mt'"):
        _load(roots, schedule="blocks")


def test_runs_finals_and_differences_paired_by_seed(roots):
    point = roots[0] / "a" / "e012"
    _run(point, "MEMIT", 0, 0.25)
    _run(point, "AlphaEdit", 0, 0.5)
    _run(point, "AlphaEdit", 1, 0.75)
    _run(point, "LangEdit-exact", 0, 0.75, capacity=10)
    _run(point, "LangEdit-exact", 1, 1.0, capacity=10, package_hash="older")
    study = _load(roots)
    runs = chapter.runs_reading([study])
    table = runs.tables["a: runs on disk (run hash today h)"]
    assert list(table.index) == ["MEMIT", "AlphaEdit", "LangEdit-exact"]  # the registry's order
    assert table.loc["AlphaEdit", "seeds"] == "0, 1" and table.loc["LangEdit-exact", "stale"] == 1
    assert table.loc["MEMIT", "minutes per run"] == 10.0 and runs.glue["a_main_stale"] == 1
    assert runs.glue["a_main_stale"] == 1 and any(line.startswith("WARNING: 1 runs") for line in runs.lines)
    assert "not run yet: FT, LangEdit-published" in runs.lines[0]
    finals = chapter.finals_reading([study])
    assert finals.glue["a_final_MEMIT"] == "0.250 / 0.250 / 0.250 (EM 0.000 / 0.000 / 0.000)"
    assert finals.glue["a_final_AlphaEdit"].startswith("0.625 ± ")  # two seeds: the interval
    paired = chapter.paired_table(study.finals)
    # LangEdit-exact - AlphaEdit on seeds 0 and 1: +0.25 both times; the others share seed 0 only
    assert list(paired.index) == ["LangEdit-exact - AlphaEdit", "LangEdit-exact - MEMIT", "AlphaEdit - MEMIT"]
    assert paired.loc["LangEdit-exact - AlphaEdit", "reliability TF"] == "+0.250 ± 0.000"
    assert paired.loc["LangEdit-exact - AlphaEdit", "reliability reads"] == "above"
    assert paired.loc["LangEdit-exact - AlphaEdit", "seeds"] == 2
    assert paired.loc["AlphaEdit - MEMIT", "locality TF"] == "+0.250"
    assert paired.loc["AlphaEdit - MEMIT", "locality reads"] == "one seed"
    assert paired.loc["LangEdit-exact - MEMIT", "reliability EM"] == "+1.000"  # 0.75 >= 0.5: right; 0.25: wrong


def test_written_then_kept_or_forgotten_and_the_null_space_left(roots):
    point = roots[0] / "a" / "e012"
    _run(point, "MEMIT", 0, 0.25)
    _run(point, "LangEdit-exact", 0, 0.75, capacity=10)
    _run(point, "LangEdit-exact", 1, 0.75, capacity=6)
    study = _load(roots)
    written = chapter.write_forget_reading([study])
    table = written.tables["a, e012: written, then kept or forgotten (mean over seeds)"]
    # batch 0 read 1.0 right after its write, batch 1 (the last) 0.25: MEMIT forgot batch 0 and never wrote batch 1
    assert table.loc["MEMIT", "written"] == 0.625 and table.loc["MEMIT", "final"] == 0.25
    assert table.loc["MEMIT", "forgotten"] == 0.5 and table.loc["MEMIT", "never_written"] == 0.5
    assert table.loc["LangEdit-exact", "kept"] == 1.0
    assert table.loc["MEMIT", "unreached targets"] == 1 and table.loc["MEMIT", "edits"] == 4
    assert written.glue["a_written"].startswith("MEMIT 0.625 right after its write, 0.250 at the end")
    left = chapter.null_space_reading([study]).tables["a, e012: null-space dimensions left after the last batch"]
    assert list(left.index) == ["LangEdit-exact"] and left.loc["LangEdit-exact", "fewest left"] == 4  # 6 - 2
    assert left.loc["LangEdit-exact", "runs"] == 2
    assert len(chapter.forgetting_reading([study]).figures) == 1


def test_the_cross_lingual_matrix_is_read_as_transfer_only_where_facts_differ_by_language(roots):
    point = roots[0] / "a" / "e012"
    _run(point, "MEMIT", 0, 0.5)  # parallel facts: every row the same
    parallel = chapter.transfer_reading([_load(roots)])
    assert "every fact was edited in all six languages" in parallel.lines[0]
    assert parallel.glue["a_transfer"].startswith("not measured by this design")
    assert not parallel.figures
    _run(point, "MEMIT", 0, 0.5, facts="distinct", transfer=lambda a, b: 0.9 if a == b else 0.3)
    distinct = chapter.transfer_reading([_load(roots)])
    table = distinct.tables["a, e012: cross-lingual transfer after the last batch (TF)"]
    assert table.loc["MEMIT", "own language"] == 0.9 and table.loc["MEMIT", "other languages"] == 0.3
    assert distinct.glue["a_transfer"] == "MEMIT 0.900 in its own language, 0.300 in the others"


def test_the_proxies_and_the_checked_claims(roots):
    point = roots[0] / "a" / "e012"
    _run(point, "MEMIT", 0, 0.5)
    study = _load(roots)
    ability = chapter.ability_reading([study])
    assert ability.glue["a_ability"] == (
        "unedited: perplexity 10.0, known facts retained 1.000; MEMIT: perplexity 20.0, known facts retained 0.500"
    )
    assert [claim.holds for claim in chapter.checked_claims([study])] == [True, True]
    assert chapter.missing_scores(study) == 0
    evaluations = study.study["evaluations"]
    study.study["evaluations"] = evaluations.drop(index=evaluations.index[-1])  # one score after the last batch
    study.study["transfer"] = study.study["transfer"].iloc[:-2]  # two edits not scored in the other language
    assert chapter.missing_scores(study) == 3
    _run(point, "AlphaEdit", 0, 0.5, package_hash="older")
    claims = chapter.checked_claims([_load(roots)])
    assert [claim.holds for claim in claims] == [False, True] and claims[0].value == 1.0


def test_the_report_reads_the_gates_a_table_per_claim_and_a_verdict_that_waits_for_them(roots):
    density, calibration = roots
    gates = {"G1": {"passed": True, "claims": []}, "G3": {"passed": False, "claims": []}}
    store.write_calibration(calibration / "a", {"band": [1], "batch_size": 3, "gates": gates, "commit": "c"}, {})
    point = density / "a" / "e012"
    for seed, (memit, alpha, exact) in enumerate(((0.25, 0.5, 0.75), (0.3, 0.6, 0.8), (0.2, 0.55, 0.7))):
        _run(point, "MEMIT", seed, memit)
        _run(point, "AlphaEdit", seed, alpha)
        _run(point, "LangEdit-exact", seed, exact)
        if seed == 0:  # one seed of both gate methods: G2 waits, and says for what
            one = chapter.gate_status(_load(roots), calibration)
            assert one["G2"] == "not complete (1 of 3 seeds with both methods)"
    study = _load(roots)
    assert chapter.gate_status(study, calibration) == {"G1": "passes", "G2": "passes", "G3": "fails"}
    mixed = _load(roots, schedule="mt")
    reading = chapter.report_reading([study], [mixed], calibration)
    table = reading.glue["report_reliability"]
    assert list(table.columns) == ["FT", "MEMIT", "AlphaEdit", "LangEdit-published", "LangEdit-exact"]
    assert table.loc["a", "FT"] == "not run" and table.loc["a", "LangEdit-exact"].startswith("0.75 ± ")
    assert reading.glue["report_verdict_reliability_tf_a"] == "cannot be tested on a CPU testbed (G3 fails)"
    assert reading.glue["report_verdict_reliability_mt_em_a"] == "cannot be tested on a CPU testbed (G3 fails)"
    finals = study.finals
    passing = {"G1": "passes", "G2": "passes", "G3": "passes"}
    # LangEdit-published has no run: no verdict on "every LangEdit form"
    assert chapter.report_verdict(finals, "reliability", "teacher_forced", passing).startswith("not judged (no run of")
    both = pd.concat([finals, finals[finals.method == "LangEdit-exact"].assign(method="LangEdit-published")])
    assert chapter.report_verdict(both, "reliability", "teacher_forced", passing) == "reproduced"
    assert chapter.report_verdict(both, "locality", "teacher_forced", passing) == "reproduced"
    pending = passing | {"G2": "not complete (2 of 3 seeds)"}
    assert chapter.report_verdict(both, "reliability", "teacher_forced", pending) == (
        "not judged (G2 not complete (2 of 3 seeds))"
    )
    assert chapter.report_verdict(finals.iloc[:0], "reliability", "teacher_forced", passing) == "not judged (not run)"


def test_the_projector_reading_sets_each_projectors_share_beside_what_was_written(roots, tmp_path):
    """The projector record of ``scripts/projector_action.py`` read at the first edited layer, per language, beside
    each method's reliability right after its write; a model without a record names the command that makes it."""
    point = roots[0] / "a" / "e012"
    _run(point, "AlphaEdit", 0, 0.5)
    _run(point, "LangEdit-exact", 0, 0.75)
    study = _load(roots)
    projector = tmp_path / "projector"
    assert chapter.projector_reading([study], projector).lines == [
        "a, e012: no projector record yet (python scripts/projector_action.py --model a --point e012)"
    ]
    rows = [
        {"layer": layer, "exact_keys": layer == 3, "batch": batch, "lang": LANGS[batch % 2], "method": method}
        | {"kept": kept * (1 if layer == 3 else 0.5), "in_same_facts": same, "in_other_facts": other}
        | {"null_dim": 40 - batch}
        for layer in (3, 4)
        for batch, same, other in ((0, None, None), (1, 0.9, None), (2, None, 0.1), (3, 0.8, 0.2))
        for method, kept in (("AlphaEdit", 0.4), ("LangEdit-exact", 0.05 if batch % 2 else 0.3))
    ]
    (projector / "a").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(projector / "a" / "e012-seed0.csv", index=False)
    info = {"shared_subjects": [{"lang": "de", "facts": 2, "same": 1, "share": 0.5}], "commit": "abc"}
    info |= {"package_hash": "h", "finished": "2026-12-07", "wall_s": 600.0}
    store.write_json(projector / "a" / "e012-seed0.json", info)
    reading = chapter.projector_reading([study], projector)
    table = reading.tables["a, e012, layer 3: what each projector leaves of a batch's keys"]
    assert table.loc["de", "AlphaEdit keeps"] == 0.4 and table.loc["de", "LangEdit-exact keeps"] == 0.05
    assert table.loc["en", "LangEdit-exact keeps"] == 0.3 and table.loc["de", "in same facts' span"] == 0.85
    assert table.loc["de", "in others' span"] == 0.2 and table.loc["de", "subject as in en"] == "1 of 2"
    assert table.loc["en", "AlphaEdit written"] == 1.0  # every edit right after its write scores 1.0 (_run)
    assert reading.glue["a_projector"] == (
        "at layer 3 the projectors leave, of a batch's keys in a fact's later languages, AlphaEdit 0.400, "
        "LangEdit-exact 0.050; of a batch of new facts (English, after the first), AlphaEdit 0.400, "
        "LangEdit-exact 0.300"
    )
    assert "null space" not in reading.glue["a_projector"] and reading.glue["a_projector_null"] == (
        "before the first batch the null space is AlphaEdit 40, LangEdit-exact 40"
    )
    assert reading.lines == [
        "a: python scripts/projector_action.py --model a --point e012 (seed 0's schedule; commit abc, code h, "
        "2026-12-07, 10 min)"
    ]
    # A model with a calibration record and a projector record but no run: the record without "written" columns.
    store.write_calibration(roots[1] / "b", {"band": [1, 2], "batch_size": 3, "gates": {}, "commit": "c"}, {})
    unrun = _load(roots, model="b")
    assert chapter.projector_reading([unrun], projector).lines == [_not_run_line("b")]
    (projector / "b").mkdir()
    for suffix in (".csv", ".json"):
        (projector / "b" / f"e012-seed0{suffix}").write_bytes((projector / "a" / f"e012-seed0{suffix}").read_bytes())
    reading = chapter.projector_reading([unrun], projector)
    table = reading.tables["b, e012, layer 3: what each projector leaves of a batch's keys"]
    assert table.loc["de", "LangEdit-exact keeps"] == 0.05 and not [c for c in table if c.endswith("written")]
    assert reading.lines[0].endswith(
        "(seed 0's schedule, no run yet: the density runner's plan; commit abc, code h, 2026-12-07, 10 min)"
    )
