"""One shared check suite that every editing method passes, on the pocket model (reference, sections 3-6)."""

import random

import pytest
import torch

from langedit_mini.core.validation import CapacityError
from langedit_mini.data.datasets import EditRequest, load_pocket
from langedit_mini.editing import METHODS, BatchRecord, EditConfig, EditingSession, apply_records
from langedit_mini.editing.defaults import default_config
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference
from langedit_mini.pocket import POCKET_EDIT_LAYERS, load_pocket_model

REQUESTS, _ = load_pocket()
BY_LANGUAGE = {}
for _request in REQUESTS:
    BY_LANGUAGE.setdefault(_request.lang, []).append(_request)


def pick(language: str, count: int, seed: int) -> list[EditRequest]:
    return random.Random(seed).sample(BY_LANGUAGE[language], count)


def weights(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("method", METHODS)
def test_an_edit_of_a_few_facts_succeeds_and_spares_unrelated_facts(pocket, method):
    model, tokenizer, statistics = pocket
    requests = pick("en", 4, seed=1)
    unrelated = pick("de", 30, seed=2)
    reference = locality_reference(model, tokenizer, unrelated)
    session = EditingSession(model, tokenizer, default_config(method), statistics)
    session.apply(requests)
    edited = evaluate_requests(session.model, tokenizer, requests)
    reliability = edited[edited.metric == "reliability"].teacher_forced.mean()
    assert reliability >= 0.9, f"{method}: teacher-forced reliability {reliability:.2f}"
    spared = evaluate_requests(session.model, tokenizer, unrelated, reference)
    locality = spared[spared.metric == "locality"].teacher_forced.mean()
    assert locality >= 0.9, f"{method}: unrelated facts changed (locality {locality:.2f})"


def test_evaluation_leaves_the_model_untouched(pocket):
    model, tokenizer, _ = pocket
    before = weights(model)
    evaluate_requests(model, tokenizer, pick("fr", 5, seed=3), locality_reference(model, tokenizer, pick("fr", 5, 3)))
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_update_and_caller_untouched(pocket, method):
    model, tokenizer, statistics = pocket
    before = weights(model)
    requests = pick("es", 3, seed=4)
    first = EditingSession(model, tokenizer, default_config(method), statistics).apply(requests)
    second = EditingSession(model, tokenizer, default_config(method), statistics).apply(requests)
    assert all(torch.equal(first.deltas[layer], second.deltas[layer]) for layer in first.deltas)
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())
    assert [r.target for r in requests] == [r.target for r in pick("es", 3, seed=4)]  # requests not mutated


@pytest.mark.parametrize("method", METHODS)
def test_rollback_restores_the_weights(pocket, method):
    model, tokenizer, statistics = pocket
    session = EditingSession(model, tokenizer, default_config(method), statistics)
    original = weights(session.model)
    session.apply(pick("nl", 3, seed=5))
    after_first = weights(session.model)
    session.apply(pick("zh", 3, seed=6))
    session.rollback()
    assert all((after_first[n] - p).abs().max() <= 1e-6 for n, p in session.model.named_parameters())
    session.apply(pick("zh", 3, seed=6))
    assert session.rollback_language("nl") == 1
    session.rollback()
    assert all((original[n] - p).abs().max() <= 1e-6 for n, p in session.model.named_parameters())
    assert session.records == []


def test_records_save_load_and_reapply_to_a_fresh_model(pocket, tmp_path):
    model, tokenizer, statistics = pocket
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    for index, language in enumerate(("en", "de")):
        session.apply(pick(language, 3, seed=7 + index)).save(tmp_path / f"batch{index}.safetensors")
    loaded = [BatchRecord.load(tmp_path / f"batch{index}.safetensors") for index in range(2)]
    assert loaded[1].languages == ["de"] * 3 and set(loaded[0].deltas) == set(POCKET_EDIT_LAYERS)
    fresh, _ = load_pocket_model()
    apply_records(fresh, loaded)
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), session.model.parameters()))


def test_langedit_exact_updates_are_invisible_to_earlier_batches_on_the_pocket_model(pocket):
    """||Delta_t K_s|| <= 1e-6 ||Delta_t|| ||K_s|| for every earlier batch s, on every edited layer."""
    model, tokenizer, statistics = pocket
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    for index, language in enumerate(("en", "de", "zh", "fr")):
        session.apply(pick(language, 5, seed=20 + index))
    for layer in POCKET_EDIT_LAYERS:
        for t, later in enumerate(session.records):
            delta = later.deltas[layer].double()
            for earlier in session.records[:t]:
                keys = earlier.keys[layer].double()
                ratio = torch.linalg.matrix_norm(delta @ keys) / (
                    torch.linalg.matrix_norm(delta) * torch.linalg.matrix_norm(keys)
                )
                assert ratio <= 1e-6, (layer, t, float(ratio))


def test_capacity_runs_out_with_a_clear_error_before_anything_is_written(pocket):
    model, tokenizer, statistics = pocket
    config = default_config("LangEdit-exact", leftover_fraction=2e-4)
    session = EditingSession(model, tokenizer, config, statistics)
    before = weights(session.model)
    free = min(session.capacity_left.values())
    with pytest.raises(CapacityError, match=r"layer \d: null space exhausted: this batch needs \d+ dimensions"):
        session.apply(pick("en", free + 5, seed=30))
    assert all(torch.equal(before[n], p) for n, p in session.model.named_parameters())
    assert session.records == []


def test_capacity_running_out_mid_sequence_keeps_the_earlier_batches(pocket):
    model, tokenizer, statistics = pocket
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact", leftover_fraction=2e-4), statistics)
    free = min(session.capacity_left.values())
    session.apply(pick("de", free - 2, seed=31))
    after_first = weights(session.model)
    with pytest.raises(CapacityError, match=r"needs \d+ dimensions .* only \d+ of d_k=\d+ are left"):
        session.apply(pick("fr", 5, seed=32))
    assert all(torch.equal(after_first[n], p) for n, p in session.model.named_parameters())
    assert len(session.records) == 1 and min(session.capacity_left.values()) <= 2


def test_a_study_run_goes_on_past_a_refused_batch_and_says_so(pocket):
    from langedit_mini.data.schedules import Schedule
    from langedit_mini.study.sequential import run_schedule

    model, tokenizer, statistics = pocket
    config = default_config("LangEdit-exact", leftover_fraction=2e-4)
    free = min(EditingSession(model, tokenizer, config, statistics).capacity_left.values())
    batches = [pick("de", free - 2, seed=31), pick("fr", 5, seed=32), pick("es", 1, seed=33)]
    schedule = Schedule("test", ("de", "fr", "es"), batches, seed=0)
    with pytest.raises(CapacityError):  # the default: a refused batch stops the run
        run_schedule(EditingSession(model, tokenizer, config, statistics), schedule)
    session, refused = EditingSession(model, tokenizer, config, statistics), []
    results = run_schedule(
        session, schedule, refused="continue", progress=lambda index, record, seconds: refused.append(record is None)
    )
    assert refused == [False, True, False] and len(session.records) == 2  # the last batch still fits
    final = results[(results.after_batch == 2) & (results.metric == "reliability")]
    assert set(final.batch) == {0, 1, 2}  # the refused edits are scored with the rest, as edits not made
    assert final[final.batch == 1].teacher_forced.mean() < final[final.batch != 1].teacher_forced.mean()
    with pytest.raises(ValueError, match="refused must be"):
        run_schedule(session, schedule, refused="skip")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: [], "empty batch"),
        (lambda: [BY_LANGUAGE["en"][0], BY_LANGUAGE["en"][0]], "duplicate request"),
        (
            lambda: [
                BY_LANGUAGE["en"][0],
                EditRequest(
                    prompt=BY_LANGUAGE["en"][0].prompt,
                    subject=BY_LANGUAGE["en"][0].subject,
                    target="Atlantis",
                    lang="en",
                ),
            ],
            "conflicting targets",
        ),
    ],
)
def test_bad_batches_are_refused(pocket, make, message):
    model, tokenizer, statistics = pocket
    session = EditingSession(model, tokenizer, default_config("MEMIT"), statistics)
    with pytest.raises(ValueError, match=message):
        session.apply(make())


def test_bad_configurations_are_refused(pocket):
    model, tokenizer, statistics = pocket
    with pytest.raises(ValueError, match="unknown method 'ROME'"):
        EditConfig(method="ROME", layers=(1,)).validate()
    with pytest.raises(ValueError, match="edited layer 9 is out of range"):
        EditingSession(model, tokenizer, default_config("MEMIT", layers=(1, 9)), statistics)
    with pytest.raises(ValueError, match=r"needs the preserved-key statistics of layers \[2\]"):
        EditingSession(model, tokenizer, default_config("AlphaEdit", layers=(0, 2)), statistics)
    last_layer = EditingSession(model, tokenizer, default_config("MEMIT", layers=(3,)), {3: statistics[0]})
    with pytest.raises(ValueError, match="cannot reach the answer"):
        last_layer.apply(pick("en", 1, 0))


def test_unreached_targets_are_recorded_warned_and_saved(pocket, tmp_path):
    from dataclasses import replace

    from langedit_mini.editing.session import UnreachedTargetWarning

    model, tokenizer, statistics = pocket
    config = default_config("MEMIT")
    requests = pick("nl", 3, seed=6)
    short = replace(config, values=replace(config.values, steps=1))  # one step reaches no target
    with pytest.warns(UnreachedTargetWarning, match="3 of 3 target values did not reach"):
        record = EditingSession(model, tokenizer, short, statistics).apply(requests)
    assert record.unreached == 3 and record.value_steps == [1, 1, 1]
    assert all(nll >= config.values.stop_nll for nll in record.value_nll)
    record.save(tmp_path / "r.safetensors")
    again = BatchRecord.load(tmp_path / "r.safetensors")
    assert again.target_reached == [False] * 3 and again.unreached == 3
    full = EditingSession(model, tokenizer, config, statistics).apply(requests)
    assert full.unreached == sum(nll >= config.values.stop_nll for nll in full.value_nll)
    assert all(steps <= config.values.steps for steps in full.value_steps)
    ft = EditingSession(model, tokenizer, default_config("FT"), statistics).apply(requests)
    assert ft.unreached == 0 and ft.target_reached == []  # FT has no target values


@pytest.mark.parametrize("method", ["AlphaEdit", "LangEdit-published", "LangEdit-exact"])
def test_rolling_back_the_last_batch_needs_no_rebuild_and_leaves_the_state_of_a_rebuild(pocket, method):
    from dataclasses import replace

    model, tokenizer, statistics = pocket
    config = default_config(method)
    config = replace(config, values=replace(config.values, steps=5))  # the rules do not care how good z is
    fast = EditingSession(model, tokenizer, config, statistics)
    slow = EditingSession(model, tokenizer, config, statistics, keep_undo=False)
    for session in (fast, slow):
        session.apply(pick("fr", 3, seed=8))
        session.apply(pick("de", 3, seed=9))

    def refuse():
        raise AssertionError("the rules were rebuilt")

    fast._fresh_rules = refuse
    fast.rollback()
    slow.rollback()  # rebuilds the rules and replays the first batch
    assert all(torch.equal(p, q) for p, q in zip(fast.model.parameters(), slow.model.parameters()))
    assert fast.capacity_left == slow.capacity_left
    nxt = pick("es", 3, seed=10)  # both then write the same next batch
    first, second = fast.apply(nxt), slow.apply(nxt)
    for layer in first.deltas:
        assert (first.deltas[layer] - second.deltas[layer]).abs().max() <= 1e-6 * second.deltas[layer].abs().max()
