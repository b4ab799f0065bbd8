"""Key statistics and the architecture registry, on tiny randomly initialised models of every architecture."""

import pytest
import torch
import transformers

from langedit_mini.model.architecture import (
    ARCHITECTURES,
    UnknownArchitectureError,
    detect_architecture,
    key_dimension,
    mlp_out_module,
)
from langedit_mini.model.statistics import key_second_moments, model_fingerprint

TINY = dict(vocab_size=64, hidden_size=16, num_hidden_layers=3, num_attention_heads=2)
CONFIGS = {
    "llama": lambda: transformers.LlamaConfig(**TINY, intermediate_size=24, num_key_value_heads=1),
    "mistral": lambda: transformers.MistralConfig(**TINY, intermediate_size=24, num_key_value_heads=1),
    "qwen2": lambda: transformers.Qwen2Config(**TINY, intermediate_size=24, num_key_value_heads=1),
    "qwen3": lambda: transformers.Qwen3Config(**TINY, intermediate_size=24, num_key_value_heads=1, head_dim=8),
    "gemma": lambda: transformers.GemmaConfig(**TINY, intermediate_size=24, num_key_value_heads=1, head_dim=8),
    "gemma2": lambda: transformers.Gemma2Config(**TINY, intermediate_size=24, num_key_value_heads=1, head_dim=8),
    "gemma3_text": lambda: transformers.Gemma3TextConfig(
        **TINY, intermediate_size=24, num_key_value_heads=1, head_dim=8, query_pre_attn_scalar=8
    ),
    "gpt2": lambda: transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=3, n_head=2, n_positions=64),
    "gptj": lambda: transformers.GPTJConfig(
        vocab_size=64, n_embd=16, n_layer=3, n_head=2, n_positions=64, rotary_dim=4
    ),
    "gpt_neox": lambda: transformers.GPTNeoXConfig(**TINY, intermediate_size=24, max_position_embeddings=64),
    "bloom": lambda: transformers.BloomConfig(vocab_size=64, hidden_size=16, n_layer=3, n_head=2),
}


def tiny_model(name, tokenizer=None):
    """A seeded random ``name`` model; with ``tokenizer``, its vocabulary sized to that tokenizer."""
    torch.manual_seed(0)
    config = CONFIGS[name]()
    if tokenizer is not None:
        config.vocab_size = len(tokenizer)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


class ToyTokenizer:
    """Whitespace 'tokenizer' over byte values, enough to feed a random model (right padding)."""

    pad_token_id = 0

    def __call__(self, texts, return_tensors="pt", padding=True, truncation=True, max_length=64):
        rows = [[1 + (ord(c) % 60) for c in text][:max_length] for text in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


TEXTS = ["hello world", "a", "the quick brown fox", "zz top", "langedit"] * 3


def test_every_registered_architecture_has_a_tiny_model_test():
    assert set(CONFIGS) == set(ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_second_moment_matches_keys_collected_directly(name):
    model = tiny_model(name)
    architecture = detect_architecture(model)
    assert architecture.name == name
    layer = 1
    d_k = key_dimension(model, architecture, layer)
    collected = []
    handle = mlp_out_module(model, architecture, layer).register_forward_pre_hook(
        lambda module, inputs: collected.append(inputs[0].detach().clone())
    )
    tokenizer = ToyTokenizer()
    encoded = tokenizer(TEXTS)
    with torch.no_grad():
        model(**encoded)
    handle.remove()
    keys = collected[0][encoded["attention_mask"].bool()].double()  # (tokens, d_k)
    assert keys.shape[1] == d_k
    expected = keys.T @ keys / keys.shape[0]
    moments = key_second_moments(model, tokenizer, TEXTS, [layer], batch_size=4, cache_dir=None, progress=False)
    assert moments[layer].n_samples == keys.shape[0]
    assert torch.allclose(moments[layer].covariance, expected, rtol=1e-5, atol=1e-9)


def test_cache_hit_runs_no_forward_pass_and_weights_are_untouched(tmp_path):
    model = tiny_model("llama")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = key_second_moments(model, ToyTokenizer(), TEXTS, [0, 1], cache_dir=tmp_path, progress=False)
    assert not first[0].from_cache and len(list(tmp_path.glob("*.safetensors"))) == 2
    original_forward = model.forward
    model.forward = lambda *a, **k: (_ for _ in ()).throw(AssertionError("forward called on a cache hit"))
    second = key_second_moments(model, ToyTokenizer(), TEXTS, [0, 1], cache_dir=tmp_path, progress=False)
    model.forward = original_forward
    assert second[1].from_cache and torch.equal(second[1].covariance, first[1].covariance)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    third = key_second_moments(model, ToyTokenizer(), TEXTS[:-1], [0], cache_dir=tmp_path, progress=False)
    assert not third[0].from_cache  # other texts: another cache entry


def test_fingerprint_changes_when_weights_change():
    model = tiny_model("llama")
    fingerprint = model_fingerprint(model)
    with torch.no_grad():
        mlp_out_module(model, detect_architecture(model), 0).weight.view(-1)[0] += 1.0
    assert model_fingerprint(model) != fingerprint


def test_unknown_architecture_lists_the_supported_ones_and_the_overrides():
    model = tiny_model("llama")
    model.config.model_type = "mystery"
    with pytest.raises(UnknownArchitectureError, match=r"unknown architecture 'mystery'; supported: bloom, .*mlp_out="):
        detect_architecture(model)
    custom = detect_architecture(
        model,
        mlp_out="model.layers.{layer}.mlp.down_proj",
        layer="model.layers.{layer}",
        final_norm="model.norm",
        lm_head="lm_head",
    )
    assert key_dimension(model, custom, 0) == 24
    with pytest.raises(ValueError, match=r"edited layer 5 is out of range: the model has layers 0..2"):
        mlp_out_module(model, custom, 5)
