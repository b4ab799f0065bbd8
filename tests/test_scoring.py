"""Greedy decoding with the model's cache gives the tokens of decoding the whole sequence at every step."""

import pytest
import torch
from test_stats import CONFIGS, tiny_model

from langedit_mini.evaluation.scoring import greedy_continuations
from langedit_mini.model.tokens import evaluation_mode, pad_rows

PROMPTS = ["Q: What is the capital of the country Chile? A:", "问：日本的首都是什么？答：", "Die Stadt"]


def uncached_greedy(model, prompt_ids, steps, pad_id):
    """The plain recipe: the whole left-padded sequence through the model for every new token."""
    ids, mask = pad_rows(prompt_ids, pad_id, left=True, device="cpu")
    out = [[] for _ in prompt_ids]
    for _ in range(steps):
        positions = (mask.cumsum(dim=1) - 1).clamp_min(0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        tokens = logits.argmax(-1)
        for row, token in enumerate(tokens.tolist()):
            out[row].append(token)
        ids = torch.cat([ids, tokens[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(tokens)[:, None]], 1)
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cached_greedy_decoding_equals_decoding_the_whole_sequence(name, tokenizer):
    model = tiny_model(name, tokenizer)
    prompt_ids = tokenizer(PROMPTS)["input_ids"]
    assert len({len(p) for p in prompt_ids}) == 3  # left padding differs row by row
    with evaluation_mode(model):
        cached = greedy_continuations(model, prompt_ids, [6, 3, 6], 0)
        plain = uncached_greedy(model, prompt_ids, 6, 0)
    assert cached == [plain[0], plain[1][:3], plain[2]]


def test_cached_greedy_decoding_on_the_pocket_model(pocket_model):
    model, tokenizer = pocket_model
    prompt_ids = tokenizer(PROMPTS)["input_ids"]
    with evaluation_mode(model):
        cached = greedy_continuations(model, prompt_ids, [8, 8, 8], tokenizer.pad_token_id)
        plain = uncached_greedy(model, prompt_ids, 8, tokenizer.pad_token_id)
    assert cached == plain
    assert len({tuple(c) for c in cached}) == 3  # three different answers, so the comparison means something


def test_locality_compares_token_ids_so_the_unedited_model_agrees_with_itself(tokenizer):
    """A random model's greedy answers are byte tokens that do not decode and re-encode to the same ids;
    compared as ids, the unedited model scores exactly 1.0 locality against its own answers."""
    from langedit_mini.data.datasets import EditRequest
    from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference

    model = tiny_model("llama", tokenizer)
    questions = ["问：日本的首都是什么？答：", "Q: Which currency does Peru use? A:", "Frage: Wo liegt Bern? Antwort:"]
    requests = [
        EditRequest(
            prompt="{} is in",
            subject=f"Subject {i}",
            target="Chile",
            lang="en",
            locality_prompt=q,
            locality_answer="Tokyo and more words",
            fact_id=str(i),
        )
        for i, q in enumerate(questions * 4)
    ]
    reference = locality_reference(model, tokenizer, requests)
    assert all(isinstance(r, tuple) and r for r in reference)
    round_trips = [tokenizer(tokenizer.decode(r), add_special_tokens=False)["input_ids"] == list(r) for r in reference]
    assert not all(round_trips)  # the text round trip would change some answers: the case the ids fix
    frame = evaluate_requests(model, tokenizer, requests, reference)
    locality = frame[frame.metric == "locality"]
    assert len(locality) == len(requests)
    assert (locality.teacher_forced == 1.0).all() and locality.exact_match.all()
    with pytest.raises(TypeError, match="token ids"):
        evaluate_requests(model, tokenizer, requests, [tokenizer.decode(r) for r in reference])
    with pytest.raises(ValueError, match="entries for"):
        evaluate_requests(model, tokenizer, requests, reference[:-1])


def test_evaluation_can_show_a_progress_bar_and_scores_the_same(tokenizer, capsys):
    from langedit_mini.data.datasets import load_pocket
    from langedit_mini.evaluation.edit_metrics import evaluate_requests

    model = tiny_model("llama", tokenizer)
    requests, _ = load_pocket(languages=["en"])
    quiet = evaluate_requests(model, tokenizer, requests[:5], batch_size=4)
    assert "evaluation" not in capsys.readouterr().err
    shown = evaluate_requests(model, tokenizer, requests[:5], batch_size=4, progress=True)
    assert "evaluation, " in capsys.readouterr().err  # tqdm writes to stderr
    assert quiet.equals(shown)
