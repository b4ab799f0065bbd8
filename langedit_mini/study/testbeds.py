"""Which model a study runs on, named once: the model and its tokenizer, the facts it edits, the texts of its
preserved-key statistics, its hyperparameter file, the facts it may know, its probes, and which weights these
are.

Every study entry point (``runner``, ``tuning``, ``calibration``, ``diagnosis``, the scripts) takes a model by
name and loads it here (``load_testbed``):

* ``pocket`` and ``pocket-wide``: the bundled pocket models, their world (``data/pocket/``: the editing
  dataset, the preserved-knowledge corpus, the general-ability probes) and their hyperparameter files;
* ``tiny-random-<family>`` (``tiny-random-llama``, ``-qwen2``, ``-mistral``, ``-gemma3_text``): a randomly
  initialised model of that family with the pocket tokenizer, on the pocket world with the ``tiny-random``
  hyperparameters: every code path of a real family, in seconds (its numbers mean nothing);
* ``smollm2-135m``, ``gemma-3-270m`` (the real LLMs of ``model.weights``) or a ``.gguf`` file: edited on MzsRE
  (the local copy, ``data.downloads.local_mzsre``, checked into the cache), with the statistics of MzsRE's
  training questions (``data.corpora.mzsre_questions``), their hyperparameter file (or ``hparams=``), and the
  pocket world's real facts (capitals, currencies, languages, ...) as the facts a model may know (tracing);
  every question asked in the model's measured prompt format (``prompt_format`` in its hyperparameter file,
  ``data.prompts``, ``study.knowledge``); its general-ability probes are the offline proxies of
  ``evaluation.offline_ability`` (``offline_ability``: held-out text, real facts, the facts it knew);
* a hub id or a local directory (``model.hub.load_model``), likewise on MzsRE, with the hyperparameter file its
  name maps to (``editing.defaults.reference_name``) or the one given.

``Testbed.statistics(layers)`` computes (and caches) C0 of any layers, so a sweep over bands needs no reload.
``Testbed.folder`` is the name under which results are written (``results/<study>/<folder>/``).
``Testbed.loader`` and ``Testbed.inputs`` name the module that loaded the model and the files a run reads:
with the study's code they define a run (``provenance.package_hash``), so a change to one kind of loader, or
to another model's hyperparameters, leaves the runs of this one current.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from langedit_mini.data.datasets import EditRequest, load_mzsre, load_pocket
from langedit_mini.data.prompts import FEW_SHOT_FACTS, bare_requests, with_prompt_format
from langedit_mini.editing.defaults import HPARAMS_DIRECTORY, MODEL_NAMES, prompt_format, reference_name
from langedit_mini.model.statistics import DEFAULT_CACHE, key_second_moments
from langedit_mini.pocket import POCKET_MODELS, covariance_texts, load_probes
from langedit_mini.study.provenance import POCKET_INPUTS, POCKET_LOADER, STUDY_ENTRY, package_hash

#: the files a run on a tiny random model reads beside its code (``Testbed.inputs``)
TINY_INPUTS = (*POCKET_INPUTS, "langedit_mini/editing/hparams/tiny-random.json")
#: MzsRE's training questions per language for a real LLM's statistics (all 10,000)
MZSRE_STATISTICS_QUESTIONS = 10_000


@dataclass
class Testbed:
    __test__ = False  # not a test class, for pytest

    name: str  # as asked: "pocket", "smollm2-135m", "tiny-random-qwen2", "Qwen/Qwen2.5-0.5B", ...
    model: object
    tokenizer: object
    hparams: str  # a hyperparameter file: a MODEL_NAMES entry or a path
    dataset: str  # "pocket" or "mzsre"
    requests: list[EditRequest]
    corpus: str  # what the preserved-knowledge texts are
    texts: list[str] | None  # the preserved-knowledge texts (None: statistics must be given)
    loader: str  # the module that loaded the model (part of a run's code, ``provenance.package_hash``)
    probes: object = None  # the pocket probes (a dict), a callable model -> DataFrame (a real LLM's), or None
    weights: dict = field(default_factory=dict)  # which weights: source and checksum, for the record
    knowledge: list[EditRequest] | None = None  # facts with true answers a model may know (None: ``requests``)
    inputs: tuple = POCKET_INPUTS  # the files a run reads, hashed with its code
    _statistics: dict = field(default_factory=dict, repr=False)

    @property
    def folder(self) -> str:
        """The name results are written under: the name asked, with path separators and spaces replaced."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(self.name).name if self.name.endswith(".gguf") else self.name)

    @property
    def facts_known(self) -> list[EditRequest]:
        """The facts whose true answers tell what the model knows (``calibration.known_facts`` samples them)."""
        return self.knowledge if self.knowledge is not None else self.requests

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

    def current_hash(self) -> str:
        """The run hash of today's code for this testbed (``provenance.package_hash``)."""
        return package_hash(STUDY_ENTRY, self.loader, inputs=self.inputs)


def pocket_testbed(name: str = "pocket", *, model=None, tokenizer=None, statistics=None) -> Testbed:
    """A bundled pocket model (``pocket`` or ``pocket-wide``) on the pocket world; ``model`` and ``tokenizer``
    when they are already loaded (and ``statistics``, C0 of some layers, when already computed)."""
    from langedit_mini.pocket import load_pocket_model

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
        loader=POCKET_LOADER,
        probes=load_probes(),
        _statistics=dict(statistics or {}),
    )


def tiny_random_testbed(name: str) -> Testbed:
    """``tiny-random-<family>``: a random model of ``family`` with the pocket tokenizer, on the pocket world."""
    from langedit_mini.model.loading import load_named_model

    model, tokenizer, record = load_named_model(name)
    requests, _ = load_pocket()
    return Testbed(
        name=name,
        model=model,
        tokenizer=tokenizer,
        hparams="tiny-random",
        dataset="pocket",
        requests=requests,
        corpus="pocket preserved-knowledge corpus",
        texts=covariance_texts(),
        loader="langedit_mini.model.loading",
        probes=load_probes(),
        weights=record,
        inputs=TINY_INPUTS,
    )


def mzsre_world(mzsre=None, languages=None, questions: int = MZSRE_STATISTICS_QUESTIONS):
    """The MzsRE requests and training questions (``questions`` per language) from ``mzsre`` (a folder with the
    upstream layout) or the local copy (``data.downloads.local_mzsre``), checked into the cache first."""
    from langedit_mini.data.corpora import mzsre_questions
    from langedit_mini.data.downloads import fetch_mzsre, local_mzsre
    from langedit_mini.data.languages import LANGUAGES

    mirror = mzsre if mzsre is not None else local_mzsre()
    root = fetch_mzsre(mirror=mirror, train=True).root
    requests, report = load_mzsre(root, languages)
    texts = mzsre_questions(root, languages or LANGUAGES, questions)
    return requests, [text for language in texts for text in texts[language]], report


def mzsre_texts(mzsre=None, languages=None, questions: int = MZSRE_STATISTICS_QUESTIONS) -> dict[str, list[str]]:
    """MzsRE's training questions per language (``questions`` of each), the texts of a real LLM's statistics,
    from ``mzsre`` or the local copy (``study.preserved`` takes the first few of each)."""
    from langedit_mini.data.corpora import mzsre_questions
    from langedit_mini.data.downloads import fetch_mzsre, local_mzsre
    from langedit_mini.data.languages import LANGUAGES

    root = fetch_mzsre(mirror=mzsre if mzsre is not None else local_mzsre(), train=True).root
    return mzsre_questions(root, languages or LANGUAGES, questions)


#: MzsRE's training questions per language behind the statistics of a single edit (``default_texts``): the
#: study's testbeds use all of them
EDIT_STATISTICS_QUESTIONS = 200


def default_texts(name: str, per_language: int = EDIT_STATISTICS_QUESTIONS) -> tuple[list[str], str] | None:
    """The preserved-knowledge texts a model named ``name`` is edited with when none are given, and what they
    are: the pocket models' corpus, or MzsRE's training questions (``per_language`` of each language) for a
    registered real LLM; None for any other model (its texts must be given)."""
    from langedit_mini.model.weights import REGISTERED

    if name in POCKET_MODELS:
        return covariance_texts(), "pocket preserved-knowledge corpus"
    if name in REGISTERED:
        _, questions, _ = mzsre_world(questions=per_language)
        return questions, f"MzsRE training questions ({per_language} per language)"
    return None


def mzsre_testbed(name: str, *, hparams=None, mzsre=None, texts=None, source: str = "gguf") -> Testbed:
    """A real LLM (a registered GGUF model, a ``.gguf`` file, a hub id or a local directory) on MzsRE."""
    from langedit_mini.model.loading import load_named_model
    from langedit_mini.model.weights import REGISTERED

    if hparams is None:
        hparams = name if name in MODEL_NAMES else reference_name(Path(name).stem if name.endswith(".gguf") else name)
    model, tokenizer, record = load_named_model(name, source=source)
    raw_requests, questions, _ = mzsre_world(mzsre)
    # real facts (CLDR and other data packages) in the six languages, but the few-shot form's examples
    knowledge = bare_requests([r for r in load_pocket()[0] if r.fact_id not in FEW_SHOT_FACTS])
    form = prompt_format(hparams)  # how this model is asked (measured: study.knowledge)
    requests, knowledge = (with_prompt_format(part, form, tokenizer) for part in (raw_requests, knowledge))
    testbed = Testbed(
        name=name,
        model=model,
        tokenizer=tokenizer,
        hparams=str(hparams),
        dataset="mzsre",
        requests=requests,
        corpus="MzsRE training questions" if texts is None else "given texts",
        texts=questions if texts is None else texts,
        loader="langedit_mini.model.loading",
        weights=record | ({"registered": name} if name in REGISTERED else {}),
        knowledge=knowledge,
        inputs=mzsre_inputs(hparams),
    )
    testbed.probes = offline_ability(testbed, raw_requests)
    return testbed


def mzsre_inputs(hparams: str) -> tuple[str, ...]:
    """The files a run on MzsRE reads beside its code (``Testbed.inputs``): the hyperparameter file ``hparams``
    names, when the project ships it, and the proxies' module (``OFFLINE_ABILITY_MODULE``: the study entry does
    not import it, so it is hashed as a file)."""
    shipped = HPARAMS_DIRECTORY / f"{hparams}.json"
    files = (str(shipped.relative_to(HPARAMS_DIRECTORY.parents[2])),) if shipped.is_file() else ()
    return (*files, OFFLINE_ABILITY_MODULE)


def run_hash(name: str) -> str:
    """Today's run hash (``Testbed.current_hash``) of the testbed ``load_testbed(name)`` gives, without loading
    its model: for a pocket model, a tiny random model or a registered real LLM with its shipped
    hyperparameter file. Any other name is an error (load it and ask ``current_hash``)."""
    from langedit_mini.model.loading import TINY_PREFIX
    from langedit_mini.model.weights import REGISTERED

    if name in POCKET_MODELS:
        return package_hash(STUDY_ENTRY, POCKET_LOADER, inputs=POCKET_INPUTS)
    if isinstance(name, str) and name.startswith(TINY_PREFIX):
        return package_hash(STUDY_ENTRY, "langedit_mini.model.loading", inputs=TINY_INPUTS)
    if name in REGISTERED:
        return package_hash(STUDY_ENTRY, "langedit_mini.model.loading", inputs=mzsre_inputs(name))
    raise ValueError(
        f"run_hash knows the pocket models, the tiny random ones and {', '.join(sorted(REGISTERED))}, not "
        f"{name!r}: load the testbed and ask its current_hash()"
    )


#: held-out texts and real facts per language behind a real LLM's general-ability proxies
OFFLINE_ABILITY_ITEMS = 50
#: the module that measures them (``evaluation.offline_ability``), a file of every real-LLM run's hash
OFFLINE_ABILITY_MODULE = "langedit_mini/evaluation/offline_ability.py"


def offline_ability(testbed: Testbed, raw_requests: list[EditRequest], per_language: int = OFFLINE_ABILITY_ITEMS):
    """The general-ability proxies of a real LLM on MzsRE (``evaluation.offline_ability``): held-out text from the
    locality questions of the tuning split's facts (``raw_requests``, MzsRE before the prompt format; no study
    edits them, no C0 reads them) and ``per_language`` of the real facts the model may know (``knowledge``)."""
    from langedit_mini.data.schedules import split_facts
    from langedit_mini.evaluation.offline_ability import OfflineAbility, fact_sample, held_out_texts
    from langedit_mini.study.density import density_grid

    _, tuning = split_facts(raw_requests, density_grid(testbed)["tuning_facts"])
    return OfflineAbility(
        testbed.tokenizer, held_out_texts(tuning, per_language), fact_sample(testbed.facts_known, per_language)
    )


def load_testbed(name: str, *, hparams=None, mzsre=None, texts=None, source: str = "gguf") -> Testbed:
    """The testbed called ``name`` (see the module doc); ``hparams`` replaces its hyperparameter file;
    ``source`` "hub" loads a registered real LLM's full-precision original from the hub instead of its GGUF.

    An unknown name is an error that lists what is known."""
    from langedit_mini.model.loading import TINY_PREFIX, model_names
    from langedit_mini.model.weights import REGISTERED

    if not isinstance(name, str) or not name:
        raise ValueError(f"a model name is a non-empty string, got {name!r}")
    if name in POCKET_MODELS:
        testbed = pocket_testbed(name)
    elif name.startswith(TINY_PREFIX):
        testbed = tiny_random_testbed(name)
    elif name in REGISTERED or name.endswith(".gguf") or "/" in name or Path(name).is_dir():
        testbed = mzsre_testbed(name, hparams=hparams, mzsre=mzsre, texts=texts, source=source)
    else:
        raise ValueError(
            f"unknown model {name!r}: give one of {', '.join(model_names())}, a .gguf file, a hub id (owner/name) "
            "or a local directory"
        )
    if hparams is not None:
        testbed.hparams = str(hparams)
    return testbed
