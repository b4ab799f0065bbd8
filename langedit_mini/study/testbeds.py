"""Which model a study runs on, named once: the model and its tokenizer, the facts it edits, the texts of its
preserved-key statistics, its hyperparameter file, its probes, and which weights these are.

Every study entry point (``runner``, ``tuning``, ``calibration``, ``diagnosis``, the scripts) takes a model by
name and loads it here:

* ``pocket`` and ``pocket-wide``: the bundled pocket models, their world (``data/pocket/``: the editing
  dataset, the preserved-knowledge corpus, the general-ability probes) and their hyperparameter files;
* ``tiny-random-<family>`` (``tiny-random-llama``, ``-qwen2``, ``-mistral``): a randomly initialised model of
  that family with the pocket tokenizer, on the pocket world with the ``tiny-random`` hyperparameters: every
  code path of a real family, in seconds (its numbers mean nothing);
* a hub id or a local directory (``model.hub.load_model``), with the hyperparameter file its name maps to
  (``editing.defaults.reference_name``) or the one given (``hparams=``): edited on MzsRE
  (``data.datasets.load_mzsre`` from a local copy, ``mzsre=``), with the statistics of the texts given
  (``texts=``; a hub model has no default corpus).

``Testbed.statistics(layers)`` computes (and caches) C0 of any layers, so a sweep over bands needs no reload.
``Testbed.folder`` is the name under which results are written (``results/<study>/<folder>/``).
``Testbed.loader`` names the module that loaded the model: with the study's code it defines a run
(``provenance.package_hash``), so a change to one kind of loader leaves the runs of another current.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from langedit_mini.data.datasets import EditRequest, load_mzsre, load_pocket
from langedit_mini.editing.defaults import reference_name
from langedit_mini.model.statistics import DEFAULT_CACHE, key_second_moments
from langedit_mini.pocket import POCKET_MODELS, covariance_texts, load_pocket_model, load_probes

#: the families ``tiny-random-<family>`` can build (``model.hub.TINY_CONFIGS``)
TINY_PREFIX = "tiny-random-"


@dataclass
class Testbed:
    __test__ = False  # not a test class, for pytest

    name: str  # as asked: "pocket", "tiny-random-qwen2", "Qwen/Qwen2.5-0.5B", ...
    model: object
    tokenizer: object
    hparams: str  # a hyperparameter file: a MODEL_NAMES entry or a path
    dataset: str  # "pocket" or "mzsre"
    requests: list[EditRequest]
    corpus: str  # what the preserved-knowledge texts are
    texts: list[str] | None  # the preserved-knowledge texts (None: statistics must be given)
    loader: str  # the module that loaded the model (part of a run's code, ``provenance.package_hash``)
    probes: dict | None = None  # the pocket general-ability probes (None: none)
    weights: dict = field(default_factory=dict)  # which weights: source and checksum, for the record
    _statistics: dict = field(default_factory=dict, repr=False)

    @property
    def folder(self) -> str:
        """The name results are written under: the name asked, with path separators and spaces replaced."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(self.name).name if self.name.endswith(".gguf") else self.name)

    def statistics(self, layers, *, cache_dir=DEFAULT_CACHE, progress: bool = False) -> dict:
        """C0 of ``layers`` from the testbed's texts (``model.statistics.key_second_moments``, cached on disk
        under ``cache_dir`` and kept in memory); raises when the testbed has no texts."""
        missing = [layer for layer in layers if layer not in self._statistics]
        if missing:
            if self.texts is None:
                raise ValueError(
                    f"{self.name}: no preserved-knowledge texts to compute the statistics of layers {missing} "
                    "from; load the testbed with texts="
                )
            self._statistics |= key_second_moments(
                self.model, self.tokenizer, self.texts, missing, cache_dir=cache_dir, progress=progress
            )
        return {layer: self._statistics[layer] for layer in layers}

    def record(self) -> dict:
        """What a run records of its testbed beyond its name: the weights, when they are not the bundled ones."""
        return {"weights": self.weights} if self.weights else {}


def pocket_testbed(name: str = "pocket", *, model=None, tokenizer=None, statistics=None) -> Testbed:
    """A bundled pocket model (``pocket`` or ``pocket-wide``) on the pocket world; ``model`` and ``tokenizer``
    when they are already loaded (and ``statistics``, C0 of some layers, when already computed)."""
    if model is None or tokenizer is None:
        model, tokenizer = load_pocket_model(name)
    requests, _ = load_pocket()
    return Testbed(
        name=name,
        model=model,
        tokenizer=tokenizer,
        hparams=name,
        dataset="pocket",
        requests=requests,
        corpus="pocket preserved-knowledge corpus",
        texts=covariance_texts(),
        loader="langedit_mini.pocket",
        probes=load_probes(),
        _statistics=dict(statistics or {}),
    )


def tiny_random_testbed(name: str) -> Testbed:
    """``tiny-random-<family>``: a random model of ``family`` with the pocket tokenizer, on the pocket world."""
    from langedit_mini.model.hub import TINY_CONFIGS, tiny_random_model

    family = name[len(TINY_PREFIX) :]
    if family not in TINY_CONFIGS:
        raise ValueError(f"no tiny random model of family {family!r}; known: {', '.join(TINY_CONFIGS)}")
    _, tokenizer = load_pocket_model("pocket")
    requests, _ = load_pocket()
    return Testbed(
        name=name,
        model=tiny_random_model(tokenizer, family),
        tokenizer=tokenizer,
        hparams="tiny-random",
        dataset="pocket",
        requests=requests,
        corpus="pocket preserved-knowledge corpus",
        texts=covariance_texts(),
        loader="langedit_mini.model.hub",
        probes=load_probes(),
    )


def hub_testbed(name: str, *, hparams=None, mzsre=None, texts=None, corpus: str = "given texts", device="cpu"):
    """A hub id or a local directory (``model.hub.load_model``), edited on MzsRE from the local copy ``mzsre``
    (a directory with the upstream layout, ``data.downloads.fetch_mzsre`` makes one)."""
    from langedit_mini.model.hub import load_model

    if hparams is None:
        hparams = reference_name(name)  # a ValueError names the known files
    if mzsre is None:
        raise ValueError(f"{name}: give mzsre= (a directory with MzsRE's upstream layout) for the facts to edit")
    model, tokenizer = load_model(name, device=device, dtype="float32")
    requests, _ = load_mzsre(mzsre)
    return Testbed(
        name=name,
        model=model,
        tokenizer=tokenizer,
        hparams=str(hparams),
        dataset="mzsre",
        requests=requests,
        corpus=corpus,
        texts=texts,
        loader="langedit_mini.model.hub",
        weights={"source": name},
    )


def load_testbed(name: str, *, hparams=None, mzsre=None, texts=None, corpus: str = "given texts") -> Testbed:
    """The testbed called ``name`` (see the module doc); ``hparams`` replaces its hyperparameter file.

    An unknown name is an error that lists what is known."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a model name is a non-empty string, got {name!r}")
    if name in POCKET_MODELS:
        testbed = pocket_testbed(name)
    elif name.startswith(TINY_PREFIX):
        testbed = tiny_random_testbed(name)
    elif "/" in name or Path(name).is_dir():
        testbed = hub_testbed(name, hparams=hparams, mzsre=mzsre, texts=texts, corpus=corpus)
    else:
        raise ValueError(
            f"unknown model {name!r}: give {', '.join(POCKET_MODELS)}, tiny-random-<family>, a hub id "
            "(owner/name) or a local directory"
        )
    if hparams is not None:
        testbed.hparams = str(hparams)
    return testbed
