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


def test_scoring_groups_share_a_prompts_prefix_or_leave_the_plain_chunks_as_they_were(monkeypatch):
    from langedit_mini.evaluation import scoring

    monkeypatch.setattr(scoring, "SHARED_PREFIX_MIN", 4)
    distinct = [[i, 9, 9, 9, 9, 9] for i in range(5)]  # no two prompts share their first token
    assert scoring.scoring_groups(distinct, 2) == [([0, 1], 0), ([2, 3], 0), ([4], 0)]
    first, second = [1, 2, 3, 4, 5], [7, 7, 7, 7, 7]  # two preambles of five tokens
    prompts = [
        first + [10, 11],  # 0
        second + [10],  # 1
        first + [10, 12, 13],  # 2
        [1, 2, 8],  # 3: shares two tokens only
        first + [10, 11],  # 4: the same prompt as 0 (a locality item and its gold twin)
        second + [11, 12],  # 5
        first + [20],  # 6
    ]
    groups = scoring.scoring_groups(prompts, 3)
    # sorted by tokens the first group of three is 0, 4, 2, sharing first + [10]; 6 shares first too, but the group is
    # full, and a prompt alone is scored plainly, in one chunk with 3
    assert groups == [([0, 2, 4], 6), ([1, 5], 5), ([3, 6], 0)]
    # a group's prefix stops one token before its shortest prompt ends: identical prompts keep their last token
    assert scoring.scoring_groups([first + [6], first + [6]], 4) == [([0, 1], 5)]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_grouped_scoring_reads_the_logits_of_scoring_every_token(name, monkeypatch):
    """The prefix run once and its cache reused gives the logits (to float rounding) and the hits of running every
    token of every prompt, on every architecture of the table."""
    from langedit_mini.evaluation import scoring

    model = tiny_model(name)
    generator = torch.Generator().manual_seed(1)
    preamble = torch.randint(1, 60, (20,), generator=generator).tolist()
    prompts = [preamble + torch.randint(1, 60, (n,), generator=generator).tolist() for n in (3, 5, 1, 4)]
    prompts.append(torch.randint(1, 60, (9,), generator=generator).tolist())  # no shared preamble
    with evaluation_mode(model):
        own = greedy_continuations(model, prompts, [3] * len(prompts), 0)  # answers the model gives: hits
    answers = [own[0], [5, 6], own[2], [7], own[4]]
    groups = scoring.scoring_groups(prompts, 8)
    assert groups[0] == ([0, 1, 2, 3], 20) and groups[1] == ([4], 0)
    with evaluation_mode(model):
        members, shared = groups[0]
        grouped_prompts, grouped_answers = [prompts[i] for i in members], [answers[i] for i in members]
        grouped = scoring.answer_logits(model, grouped_prompts, grouped_answers, 0, shared)
        plain = scoring.answer_logits(model, grouped_prompts, grouped_answers, 0)
        assert torch.allclose(grouped, plain, atol=1e-5)
        teacher, exact = scoring.score_token_ids(model, prompts, answers, 0, 8)
        monkeypatch.setattr(scoring, "SHARED_PREFIX_MIN", 10**6)  # no group: every token of every prompt
        assert scoring.scoring_groups(prompts, 8) == [([0, 1, 2, 3, 4], 0)]
        assert scoring.score_token_ids(model, prompts, answers, 0, 8) == (teacher, exact)
    assert exact[0] and exact[2] and exact[4] and teacher[0] == 1.0  # the model's own answers are hits
