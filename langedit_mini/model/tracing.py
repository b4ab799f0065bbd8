"""Does the model read facts from the subject's position? A patching test of the locate-then-edit premise.

MEMIT, AlphaEdit and LangEdit write a new value at the subject's last token of an early-middle
layer, assuming the model later reads the fact from there. Test it: take two prompts that differ
only in the subject (same token count), run the second, and copy its hidden states at the subject
tokens, after block ``L``, into a run of the first. If the first prompt's answer becomes the
second prompt's answer, the fact flowed through the subject position at layer ``L``.
"""

from __future__ import annotations

import pandas as pd
import torch

from langedit_mini.model.architecture import Architecture, detect_architecture, get_module, layer_state, num_layers
from langedit_mini.model.tokens import evaluation_mode, model_device


def greedy_answer(model, input_ids: torch.Tensor, tokens: int) -> list[int]:
    """Greedy continuation of one prompt (no cache, so hooks see every position at every step)."""
    ids = input_ids
    for _ in range(tokens):
        next_token = model(input_ids=ids).logits[0, -1].argmax()
        ids = torch.cat([ids, next_token.view(1, 1)], dim=1)
    return ids[0, input_ids.shape[1] :].tolist()


def patch_subject(
    model, tokenizer, prompt: str, donor: str, layer: int, architecture: Architecture, answer_tokens: int = 3
) -> dict | None:
    """Answers of ``prompt``, of ``donor``, and of ``prompt`` with the donor's subject states at ``layer``.

    Returns None when the two prompts do not tokenize to the same length (no position alignment).
    """
    device = model_device(model)
    ids = tokenizer([prompt], return_tensors="pt")["input_ids"].to(device)
    donor_ids = tokenizer([donor], return_tensors="pt")["input_ids"].to(device)
    if ids.shape != donor_ids.shape:
        return None
    differing = (ids[0] != donor_ids[0]).nonzero().flatten().tolist()
    block = get_module(model, architecture.layer.format(layer=layer))
    stored = {}
    with evaluation_mode(model):
        handle = block.register_forward_hook(lambda m, i, out: stored.__setitem__("h", layer_state(out).clone()))
        try:
            model(input_ids=donor_ids)
        finally:
            handle.remove()

        def replace(module, inputs, output):
            states = layer_state(output).clone()
            states[:, differing] = stored["h"][:, differing]
            return (states,) + tuple(output[1:]) if isinstance(output, tuple) else states

        original = greedy_answer(model, ids, answer_tokens)
        donor_answer = greedy_answer(model, donor_ids, answer_tokens)
        handle = block.register_forward_hook(replace)
        try:
            patched = greedy_answer(model, ids, answer_tokens)
        finally:
            handle.remove()
    return {
        "original": tokenizer.decode(original),
        "donor": tokenizer.decode(donor_answer),
        "patched": tokenizer.decode(patched),
        "follows_donor": patched == donor_answer and original != donor_answer,
    }


def subject_patching_table(
    model,
    tokenizer,
    pairs: list[tuple[str, str, str]],
    *,
    layers=None,
    architecture: Architecture | None = None,
    answer_tokens: int = 3,
) -> pd.DataFrame:
    """For (language, prompt, donor) pairs and each layer: does the patched answer follow the donor?"""
    architecture = architecture or detect_architecture(model)
    layers = range(num_layers(model, architecture)) if layers is None else layers
    rows = []
    for language, prompt, donor in pairs:
        for layer in layers:
            result = patch_subject(model, tokenizer, prompt, donor, layer, architecture, answer_tokens)
            if result is not None:
                rows.append({"lang": language, "layer": layer, "prompt": prompt, "donor": donor, **result})
    return pd.DataFrame(rows)


# --- Causal tracing (ROME, Meng et al. 2022, section 2) ---------------------------------------------
#
# Corrupt the subject: add Gaussian noise to the input embeddings of its tokens, so the model no
# longer recalls the fact. Then, in the corrupted run, put back the clean run's state of one site
# (a layer's MLP output or block output, at one position) and measure how much of the answer's
# probability comes back. The indirect effect of the site is p(restored) - p(corrupted); the total
# effect of the subject is p(clean) - p(corrupted). Locate-then-edit rests on a large indirect
# effect of the MLP outputs at the subject's last token in early-middle layers.

TRACE_SITES = ("mlp", "hidden")
TRACE_POSITIONS = ("subject last", "last")
#: every position ``causal_trace`` can restore: the subject's first and last token, all its tokens
#: together ("subject span"), and the prompt's last token
ALL_POSITIONS = ("subject first", "subject last", "subject span", "last")


def subject_span(tokenizer, text: str, subject: str) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` (with the tokenizer's special tokens) and the indices of the tokens that
    overlap the subject's first occurrence in it; raises when the subject is not in the text."""
    start = text.find(subject)
    if start < 0:
        raise ValueError(f"subject {subject!r} is not in {text!r}")
    end = start + len(subject)
    encoded = tokenizer(text, return_offsets_mapping=True)
    tokens = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > a and a < end and b > start]
    return list(encoded["input_ids"]), tokens


def embedding_noise_scale(model, tokenizer, texts: list[str]) -> float:
    """ROME's noise level: 3 x the standard deviation of the input embeddings of the tokens in ``texts``, as
    the embedding module outputs them (Gemma scales its embeddings by the square root of the width, and the
    noise is added to that output)."""
    ids = sorted({t for text in texts for t in tokenizer(text)["input_ids"]})
    embeddings = model.get_input_embeddings()
    with torch.no_grad():
        vectors = embeddings(torch.tensor(ids, device=embeddings.weight.device))
    return 3.0 * float(vectors.float().std())


def causal_trace(
    model,
    tokenizer,
    facts: list[dict],
    *,
    layers=None,
    band=None,
    samples: int = 10,
    noise: float | None = None,
    architecture: Architecture | None = None,
    seed: int = 0,
    positions=TRACE_POSITIONS,
    window: int | None = None,
) -> pd.DataFrame:
    """Indirect effects of restoring single sites in a subject-corrupted run, per fact.

    ``facts``: dicts with ``prompt`` (full text, subject included), ``subject`` and ``answer`` (the
    model's answer; the probability of its first token with a letter or digit is measured, the
    tokens before it appended to the prompt), optional ``joiner``
    (default " ") and ``lang``. ``samples`` noise draws per fact, averaged; ``noise`` defaults to
    ``embedding_noise_scale`` over the prompts. ``band``: layers whose MLP outputs at the subject's
    last token are also restored together (site ``mlp band``). ``window``: also restore, for every layer, the
    MLP outputs of the ``window`` consecutive layers around it together (site ``mlp window``, ROME's
    windowed trace: 10 of GPT-2 XL's 48 layers). ``positions``: where each site is
    restored, among ``ALL_POSITIONS`` (restoring "subject span" at a layer restores every subject token
    there: what it does not bring back has already left the subject's positions).

    One row per (fact, site, position, layer): ``p_clean``, ``p_corrupted``, ``p_restored``,
    ``total_effect``, ``indirect_effect``, ``subject_tokens``. Facts whose clean run does not put the
    answer first are still traced (``clean_top1``: the clean run predicts the measured token).
    """
    if not facts:
        raise ValueError("causal_trace needs at least one fact")
    unknown = [p for p in positions if p not in ALL_POSITIONS]
    if unknown or not positions:
        raise ValueError(f"positions must be among {ALL_POSITIONS}, got {list(positions)}")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    if window is not None and (not isinstance(window, int) or window < 1):
        raise ValueError(f"window must be None or a positive integer, got {window!r}")
    architecture = architecture or detect_architecture(model)
    layer_count = num_layers(model, architecture)
    layers = list(range(layer_count)) if layers is None else list(layers)
    for layer in layers + list(band or []):
        if not 0 <= layer < layer_count:
            raise ValueError(f"layer {layer} out of range: the model has {layer_count} layers")
    if noise is None:
        noise = embedding_noise_scale(model, tokenizer, [f["prompt"] for f in facts])
    generator = torch.Generator().manual_seed(seed)
    rows = []
    with evaluation_mode(model):
        for index, fact in enumerate(facts):
            rows += _trace_fact(
                model, tokenizer, fact, index, layers, band, samples, noise, architecture, generator, positions, window
            )
    frame = pd.DataFrame(rows)
    frame.attrs["noise"] = noise
    return frame


def window_around(layer: int, size: int, layer_count: int) -> list[int]:
    """ROME's window: ``size`` consecutive layers centred on ``layer`` (shifted inside the model at its ends)."""
    first = min(max(0, layer - size // 2), max(0, layer_count - size))
    return list(range(first, min(layer_count, first + size)))


def _trace_fact(
    model, tokenizer, fact, index, layers, band, samples, noise, architecture, generator, positions, window=None
) -> list[dict]:
    device = model_device(model)
    layer_count = num_layers(model, architecture)
    embeddings = model.get_input_embeddings()
    ids, subject_tokens = subject_span(tokenizer, fact["prompt"], fact["subject"])
    answer = tokenizer(fact.get("joiner", " ") + fact["answer"], add_special_tokens=False)["input_ids"]
    if not answer or not subject_tokens:
        raise ValueError(f"fact {index}: the answer or the subject tokenizes to nothing")
    # ROME measures the answer's first token; leading tokens without a letter or digit (a space, the "+"
    # of every calling code) say nothing about the fact, so they join the prompt and the first token
    # that has one is measured
    lead = 0
    while lead < len(answer) - 1 and not any(c.isalnum() for c in tokenizer.decode([answer[lead]])):
        lead += 1
    ids, target = ids + answer[:lead], answer[lead]
    where = {
        "subject first": subject_tokens[0],
        "subject last": subject_tokens[-1],
        "subject span": subject_tokens,
        "last": len(ids) - 1,
    }
    positions = {name: where[name] for name in positions}
    batch = torch.tensor([ids] * (samples + 1), device=device)  # row 0 clean, rows 1.. corrupted
    shape = (samples, len(subject_tokens), embeddings.weight.shape[1])
    draws = (torch.randn(shape, generator=generator) * noise).to(device, embeddings.weight.dtype)
    clean_states = {}

    def corrupt(module, inputs, output):
        output = output.clone()
        output[1:, subject_tokens] += draws
        return output

    def site_module(site, layer):
        path = architecture.mlp_out if site == "mlp" else architecture.layer
        return get_module(model, path.format(layer=layer))

    def recorder(key):
        def hook(module, inputs, output):
            clean_states[key] = layer_state(output)[0].detach().clone()

        return hook

    def restorer(key, position):
        def hook(module, inputs, output):
            states = layer_state(output).clone()
            states[1:, position] = clean_states[key][position]
            return (states,) + tuple(output[1:]) if isinstance(output, tuple) else states

        return hook

    def run(hooks):
        handles = [embeddings.register_forward_hook(corrupt)]
        handles += [site_module(*key).register_forward_hook(hook) for key, hook in hooks]
        try:
            logits = model(input_ids=batch, logits_to_keep=1).logits[:, -1].float()
        finally:
            for handle in handles:
                handle.remove()
        probs = logits.softmax(dim=-1)[:, target]
        return float(probs[0]), float(probs[1:].mean()), int(logits[0].argmax()) == target

    windows = {layer: window_around(layer, window, layer_count) for layer in layers} if window else {}
    recorded = set(layers) | set(band or []) | {w for around in windows.values() for w in around}
    keys = [(site, layer) for site in TRACE_SITES for layer in sorted(recorded)]
    p_clean, p_corrupted, top1 = run([(key, recorder(key)) for key in keys])
    traced = [(site, [(site, layer)], layer) for site in TRACE_SITES for layer in layers]
    traced += [("mlp window", [("mlp", w) for w in around], layer) for layer, around in windows.items()]
    if band:
        traced.append(("mlp band", [("mlp", layer) for layer in band], -1))
    rows = []
    for name, restored, layer in traced:
        for position_name, position in positions.items():
            _, p_restored, _ = run([(key, restorer(key, position)) for key in restored])
            rows.append(
                {
                    "fact": index,
                    "lang": fact.get("lang"),
                    "site": name,
                    "position": position_name,
                    "layer": layer,
                    "p_clean": p_clean,
                    "p_corrupted": p_corrupted,
                    "p_restored": p_restored,
                    "total_effect": p_clean - p_corrupted,
                    "indirect_effect": p_restored - p_corrupted,
                    "clean_top1": top1,
                    "subject_tokens": len(subject_tokens),
                }
            )
    return rows


def trace_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean indirect effect per site, position and layer over the traced facts, with the mean total effect."""
    summary = frame.groupby(["site", "position", "layer"])[["indirect_effect", "total_effect"]].mean().reset_index()
    summary["share_of_total"] = summary.indirect_effect / summary.total_effect
    return summary
