"""Edit requests from EasyEdit's inputs, MzsRE / BMIKE-53 records and plain prompts, and clear refusals."""

import json
from pathlib import Path

import pytest

from langedit_mini.data.datasets import DatasetError, EditRequest
from langedit_mini.data.requests import as_requests

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def test_easyedit_fields_one_request_and_many():
    [one] = as_requests(
        {
            "prompts": "The capital of France is",
            "subject": "France",
            "target_new": "Lyon",
            "rephrase_prompts": "France's capital city is",
            "locality_inputs": {"neighborhood": {"prompt": ["The capital of Peru is"], "ground_truth": [["Lima"]]}},
        }
    )
    assert one.prompt == "The capital of {} is" and one.question == "The capital of France is"
    assert one.target == "Lyon" and one.paraphrase == "France's capital city is"
    assert (one.locality_prompt, one.locality_answer) == ("The capital of Peru is", "Lima")
    many = as_requests(
        {
            "prompts": ["{} is in", "The capital of Chile is"],
            "subject": ["Paris", "Chile"],
            "target_new": ["Asia", "Lima"],
            "lang": "de",
        }
    )
    assert [r.question for r in many] == ["Paris is in", "The capital of Chile is"]
    assert {r.lang for r in many} == {"de"} and len({r.fact_id for r in many}) == 2


def test_plain_prompt_and_subject_and_chinese_joiner():
    [request] = as_requests([{"prompt": "法国的首都是", "subject": "法国", "target": "里昂"}], lang="zh")
    assert request.prompt == "{}的首都是" and request.joiner == ""
    same = EditRequest(prompt="{} is in", subject="Paris", target="Asia", lang="en")
    assert as_requests(same) == [same]


@pytest.mark.parametrize(
    "item, message",
    [
        ({"prompts": "The capital of France is", "subject": "Spain", "target_new": "Lyon"}, "does not occur"),
        ({"prompts": ["a {}", "b {}"], "subject": ["x"], "target_new": ["y", "z"]}, "subject has 1 entries"),
        ({"prompts": "a {}", "target_new": "y"}, "missing field 'subject'"),
        ({"prompts": "a {}", "subject": "x", "target_new": "y", "locality": {}}, "unknown EasyEdit fields"),
        ({"question": "a", "answer": "b"}, "unknown request format"),
        ({"prompt": "a {}", "subject": "x", "target": "  "}, "target must be a non-empty string"),
        ({"prompt": "a {}", "subject": "x", "target": "y", "lang": "de_DE"}, "unknown language code"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(item, message):
    with pytest.raises((DatasetError, ValueError), match=message):
        as_requests(item)


@pytest.mark.skipif(not (SHARED / "MzsRE").exists(), reason="MzsRE not found in ../shared/datasets")
def test_mzsre_and_bmike_records_as_they_come():
    pairs = json.loads((SHARED / "MzsRE" / "data" / "MzsRE" / "mzsre_test_duplicate_ende.json").read_text())
    records = [pair["en"] for pair in pairs[:20]]
    requests = as_requests(records)
    assert len(requests) == 20 and all(r.subject in r.question for r in requests)
    assert requests[0].target == records[0]["alt"] and requests[0].locality_answer == records[0]["loc_ans"]
    assert requests[0].portability_prompt == records[0]["portability"]["New Question"]
    bmike = SHARED / "BMIKE-53" / "data" / "BMIKE53" / "zsRE" / "zsre_test_de.json"
    if bmike.exists():
        record = json.loads(bmike.read_text())[0]["de"]
        [request] = as_requests({**record, "lang": "de"})
        assert request.lang == "de" and request.portability_answer == record.get("port_ans")


def test_records_that_cannot_be_requests_are_skipped_and_counted_only_when_asked():
    good = {"prompt": "The capital of {} is", "subject": "Chile", "target": "Lima"}
    bad = {"subject": "Ruf den Arzt", "src": "Welcher Künstler hat Call the Doctor geschaffen?", "alt": "Soap&Skin"}
    with pytest.raises(DatasetError, match="request 1: subject 'Ruf den Arzt' does not occur in the prompt"):
        as_requests([good, bad, good], lang="de")
    skipped = []
    requests = as_requests([good, bad, good], lang="de", skipped=skipped)
    assert len(requests) == 2 and [index for index, _ in skipped] == [1]
    assert "request 1: subject 'Ruf den Arzt' does not occur" in skipped[0][1]
    with pytest.raises(DatasetError, match="no usable edit request: all 1 were skipped"):
        as_requests([bad], lang="de", skipped=[])
