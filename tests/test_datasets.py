"""Edit requests and the dataset loaders: the subject policy, counted skips, clear errors, real files."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langedit_mini.data.datasets import DatasetError, EditRequest, load_bmike53, load_mzsre, load_pocket, locate_subject

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
MZSRE, BMIKE = SHARED / "MzsRE", SHARED / "BMIKE-53"
needs_mzsre = pytest.mark.skipif(not MZSRE.exists(), reason=f"MzsRE not found at {MZSRE} (../shared/datasets)")
needs_bmike = pytest.mark.skipif(not BMIKE.exists(), reason=f"BMIKE-53 not found at {BMIKE} (../shared/datasets)")


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=0, max_size=30),
    st.text(min_size=1, max_size=15).filter(lambda s: s.strip() == s),
    st.text(min_size=0, max_size=30),
)
def test_located_subject_formats_back_to_the_text(before, subject, after):
    text = before + subject + after
    found = locate_subject(text, subject)
    assert found is not None
    template, written = found
    assert template.format(written) == text  # braces in the text are escaped
    assert template.count("{}") == 1 or "{}" in before + after


def test_subject_found_after_case_and_accent_folding_keeps_the_src_spelling():
    template, written = locate_subject("¿Quién fundó la Université de Montréal?", "universite de montreal")
    assert written == "Université de Montréal"
    assert template == "¿Quién fundó la {}?"
    assert locate_subject("Wer gründete Berlin?", "München") is None


def write_mzsre(tmp_path, records_by_language):
    directory = tmp_path / "data" / "MzsRE"
    directory.mkdir(parents=True)
    for partner in ("de", "du", "es", "fr", "zh"):
        pairs = [
            {"en": en, partner: other} for en, other in zip(records_by_language["en"], records_by_language[partner])
        ]
        (directory / f"mzsre_test_duplicate_en{partner}.json").write_text(json.dumps(pairs))
    return tmp_path


def record(subject="Berlin", src="Where is Berlin?", alt="Paris", **changes):
    base = {
        "subject": subject,
        "src": src,
        "rephrase": src,
        "alt": alt,
        "loc": "q",
        "loc_ans": "a",
        "portability": {"New Question": "pq", "New Answer": "pa"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_mzsre_loader_counts_skips_and_maps_dutch(tmp_path):
    good, absent, empty = record(), record(subject="Rome"), record(alt="  ")
    root = write_mzsre(tmp_path, {lang: [good, absent, empty] for lang in ("en", "de", "du", "es", "fr", "zh")})
    requests, report = load_mzsre(root, ["en", "nl"])
    assert [r.lang for r in requests] == ["en", "nl"]
    assert requests[0].prompt == "Where is {}?" and requests[0].portability_answer == "pa"
    assert report.skipped[("nl", "subject not in src")] == 1 and report.skipped[("nl", "empty target")] == 1
    assert report.read["nl"] == 3 and report.kept["nl"] == 1


@pytest.mark.parametrize(
    "bad, message",
    [
        (record(alt=None), "missing field 'alt'"),
        (record(alt=7), "field 'alt' must be a string"),
        (record(src=None), "missing field 'src'"),
    ],
)
def test_malformed_records_raise_naming_file_record_and_field(tmp_path, bad, message):
    root = write_mzsre(tmp_path, {lang: [record(), bad] for lang in ("en", "de", "du", "es", "fr", "zh")})
    with pytest.raises(DatasetError, match=rf"mzsre_test_duplicate_ende.json record 1 \[de\]: {message}"):
        load_mzsre(root, ["de"])


def test_unknown_language_and_bad_requests_are_refused():
    with pytest.raises(ValueError, match="unknown language code 'pt'"):
        load_pocket(languages=["pt"])
    with pytest.raises(DatasetError, match="target must be a non-empty string"):
        EditRequest(prompt="Where is {}?", subject="Berlin", target="", lang="en")
    with pytest.raises(DatasetError, match="exactly once"):
        EditRequest(prompt="Where is Berlin?", subject="Berlin", target="Paris", lang="en")
    with pytest.raises(ValueError, match="unknown language code"):
        EditRequest(prompt="{}", subject="Berlin", target="Paris", lang="xx")


@needs_mzsre
def test_mzsre_real_files_match_the_counts_of_its_source_record():
    """SOURCE.md: the subject occurs verbatim in src for 533 de, 413 nl, 374 es, 369 fr of 743 records."""
    requests, report = load_mzsre(MZSRE)
    verbatim = {"en": 743, "de": 533, "nl": 413, "es": 374, "fr": 369, "zh": 743}
    for language, expected in verbatim.items():
        assert report.read[language] == 743
        assert report.kept[language] - report.relocated[language] == expected, language
        assert report.kept[language] + report.skipped[(language, "subject not in src")] == 743
    for request in requests:
        assert request.subject in request.question  # the relocated spelling is the one in src
    by_id = {}
    for request in requests:
        by_id.setdefault(request.fact_id, set()).add(request.lang)
    assert sum(1 for langs in by_id.values() if len(langs) == 6) >= 209  # all six for >= 209 records upstream


@needs_bmike
def test_bmike53_real_files_count_the_two_missing_records():
    requests, report = load_bmike53(BMIKE)
    assert report.skipped[("nl", "language missing in pair")] == 1
    assert report.skipped[("zh", "language missing in pair")] == 1
    assert all(report.read[language] == 743 for language in ("en", "de", "nl", "es", "fr", "zh"))
    assert len(requests) == sum(report.kept.values())
    assert all(r.portability_prompt for r in requests if r.lang == "en")


def test_pocket_requests_are_aligned_across_languages():
    requests, report = load_pocket()
    assert not report.skipped, report.skipped
    by_fact = {}
    for request in requests:
        by_fact.setdefault(request.fact_id, []).append(request)
    assert all(len(group) == 6 for group in by_fact.values())
    assert all(r.target not in r.true_answers for r in requests)
    assert min(report.kept.values()) >= 100


def test_a_subject_that_occurs_twice_is_edited_at_its_first_occurrence_and_counted(tmp_path):
    twice = record(subject="Berlin", src="Berlin or not Berlin: where is Berlin?")
    root = write_mzsre(tmp_path, {lang: [twice, record()] for lang in ("en", "de", "du", "es", "fr", "zh")})
    requests, report = load_mzsre(root, ["en"])
    assert requests[0].prompt == "{} or not Berlin: where is Berlin?"
    assert report.repeated["en"] == 1 and report.kept["en"] == 2
    assert report.table().loc["en", "subject repeated"] == 1


@needs_bmike
def test_a_sequential_study_edits_bmike53_records_as_loaded(pocket):
    """BMIKE-53's records go through the sequential study the Sequential chapter runs (that chapter itself is run
    on MzsRE in ``test_notebooks``; its BMIKE-53 branch is this loader call): two batches of two edits in en and
    de on the pocket model by LangEdit, every score in place and its null space never exhausted."""
    from langedit_mini.study.experiment import StudyPlan, run_study
    from langedit_mini.study.verdicts import study_claims

    model, tokenizer, statistics = pocket
    requests, report = load_bmike53(BMIKE, ["en", "de"])
    assert set(report.kept) == {"en", "de"} and {r.lang for r in requests} == {"en", "de"}
    plan = StudyPlan(languages=["en", "de"], edits_per_language=2, batch_size=2, schedule="delta", probe_limit=1)
    study = run_study(model, tokenizer, requests, statistics, plan, methods=["LangEdit-exact"], seeds=[0])
    assert "delta: 2 batches (2 x 2 edits), 4 edits in en, de" in study.schedules[0].summary()
    claims = study_claims(study)
    assert claims["scored"].holds and claims["capacity"].holds, (claims["scored"], claims["capacity"])
    final = study.evaluations[study.evaluations.after_batch == 1]
    assert set(final.method) == {"LangEdit-exact"} and final.fact_id.nunique() == 4  # every edit so far
    assert final.teacher_forced.between(0, 1).all() and set(final.metric) >= {"reliability", "locality"}
