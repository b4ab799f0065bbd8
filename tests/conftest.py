"""Shared fixtures: the pocket model and its preserved-key statistics, loaded and computed once per run."""

from types import SimpleNamespace

import pytest
import torch
import transformers

from langedit_mini.model.statistics import key_second_moments
from langedit_mini.pocket import MODEL_DIRECTORY, POCKET_EDIT_LAYERS, covariance_texts, load_pocket_model


class HashWork:
    """What computing run hashes costs, counted since ``start`` emptied the caches (``provenance.read_source``,
    ``provenance.file_digest``): ``parsed``, module sources parsed; ``read``, large files (weights) hashed."""

    def __init__(self, monkeypatch):
        from langedit_mini.study import provenance

        self.provenance, self.monkeypatch = provenance, monkeypatch
        parse, digest = provenance.ast.parse, provenance.sha256

        def counted_parse(*args, **kwargs):
            self.parsed += 1
            return parse(*args, **kwargs)

        def counted_sha256(path):
            self.read += 1  # provenance streams only large files (file_digest); small ones are read whole
            return digest(path)

        # provenance's own names replaced, not the modules: other code's parsing and hashing are not counted
        monkeypatch.setattr(provenance, "ast", SimpleNamespace(**vars(provenance.ast) | {"parse": counted_parse}))
        monkeypatch.setattr(provenance, "sha256", counted_sha256)
        self.start()

    def start(self):
        self.monkeypatch.setattr(self.provenance, "_SOURCES", {})
        self.monkeypatch.setattr(self.provenance, "_LARGE_FILES", {})
        self.parsed = self.read = 0


@pytest.fixture
def hash_work(monkeypatch):
    """A ``HashWork`` counter, started."""
    return HashWork(monkeypatch)


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


@pytest.fixture(scope="session")
def pocket_testbed(pocket):
    """The pocket testbed (``study.testbeds``) around the model and statistics loaded above."""
    from langedit_mini.study.testbeds import pocket_testbed

    model, tokenizer, statistics = pocket
    return pocket_testbed("pocket", model=model, tokenizer=tokenizer, statistics=statistics)


@pytest.fixture(scope="session")
def toy_density(pocket_testbed, tmp_path_factory):
    """Two points of a toy density study on disk (2 languages, 1 and 2 edits per language, batches of 1, two
    methods, seeds 0 and 1), written by the runner's own run_part; read by the density readers' test and the
    density chapter's."""
    from langedit_mini.study.experiment import StudyPlan
    from langedit_mini.study.runner import run_part

    root = tmp_path_factory.mktemp("density")
    for edits in (1, 2):
        plan = StudyPlan(
            languages=["en", "de"],
            edits_per_language=edits,
            batch_size=1,
            probe_every=2 * edits,
            probe_limit=5,
            facts="parallel",
            evaluate_every=2,
        )
        for seed in (0, 1):
            for method in ("MEMIT", "LangEdit-exact"):
                run_part(pocket_testbed, root / f"e{edits:03d}", seed, method, plan, tuning_facts=200)
    return root
