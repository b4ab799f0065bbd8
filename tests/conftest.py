"""Shared fixtures: the pocket model and its preserved-key statistics, loaded and computed once per run."""

import pytest
import torch
import transformers

from langedit_mini.model.statistics import key_second_moments
from langedit_mini.pocket import MODEL_DIRECTORY, POCKET_EDIT_LAYERS, covariance_texts, load_pocket_model


@pytest.fixture(scope="session")
def pocket_model():
    """The bundled pocket Llama and its tokenizer. Tests never change it: editing sessions edit a copy."""
    torch.set_num_threads(2)
    return load_pocket_model()


@pytest.fixture(scope="session")
def tokenizer():
    """The pocket tokenizer alone, for the tiny random models of every architecture (``test_stats.tiny_model``)."""
    return transformers.AutoTokenizer.from_pretrained(MODEL_DIRECTORY)


@pytest.fixture(scope="session")
def pocket(pocket_model):
    """``(model, tokenizer, statistics)``: ``C0`` of every edited layer, computed here (no cache is read)."""
    model, tokenizer = pocket_model
    statistics = key_second_moments(
        model, tokenizer, covariance_texts(), list(POCKET_EDIT_LAYERS), cache_dir=None, progress=False
    )  # the model already loaded above; load_pocket_editing(cache_dir=None) would load a second copy
    return model, tokenizer, statistics
