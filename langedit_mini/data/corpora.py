"""Text corpora for the preserved-knowledge statistics of real models: Wikipedia, or MzsRE's training split.

The pocket model's corpus ships with the project (``pocket.covariance_texts``). For a real LLM
the reference code streams Wikipedia; ``wikipedia_texts`` does the same through the Hugging Face
``datasets`` library (installed separately: ``pip install datasets``; it needs the network), takes
the first ``per_language`` articles of each language's dump in streaming mode (nothing else is
downloaded), cuts them to ``max_chars`` characters, and caches the texts as JSON so a second call
works offline. Without network and without a cache it fails with a message that says so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from langedit_mini.data.caches import cache_folder
from langedit_mini.data.languages import check_language

DEFAULT_CACHE = cache_folder("corpora")  # $LANGEDIT_CACHE/corpora when set (caches.py)
WIKIPEDIA = "wikimedia/wikipedia"
WIKIPEDIA_DUMP = "20231101"


def wikipedia_texts(
    languages,
    per_language: int = 1000,
    *,
    max_chars: int = 2000,
    dump: str = WIKIPEDIA_DUMP,
    cache_dir: str | Path | None = DEFAULT_CACHE,
) -> dict[str, list[str]]:
    """``{language: [article text, ...]}``: the first ``per_language`` non-empty articles of each dump."""
    languages = [check_language(language) for language in languages]
    if not isinstance(per_language, int) or per_language < 1:
        raise ValueError(f"per_language must be a positive integer, got {per_language!r}")
    if not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    texts = {}
    for language in languages:
        key = hashlib.sha256(f"{WIKIPEDIA}|{dump}.{language}|{per_language}|{max_chars}".encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"wikipedia_{language}_{key}.json" if cache_dir is not None else None
        if path is not None and path.exists():
            texts[language] = json.loads(path.read_text(encoding="utf-8"))
            continue
        texts[language] = _stream(language, per_language, max_chars, dump)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(texts[language], ensure_ascii=False), encoding="utf-8")
    return texts


def _stream(language: str, count: int, max_chars: int, dump: str) -> list[str]:
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            "wikipedia_texts needs the `datasets` package (pip install datasets) and the network; "
            "or pass your own texts to stats.key_second_moments"
        ) from error
    try:
        stream = datasets.load_dataset(WIKIPEDIA, f"{dump}.{language}", split="train", streaming=True)
    except Exception as error:  # network, hub or configuration problems all end here
        raise RuntimeError(
            f"could not stream {WIKIPEDIA} {dump}.{language}: {error}. Offline? Use a cached "
            "corpus (cache_dir) or your own texts"
        ) from error
    texts, empty = [], 0
    for article in stream:
        text = (article.get("text") or "").strip()
        if not text:
            empty += 1
            continue
        texts.append(text[:max_chars])
        if len(texts) == count:
            break
    if len(texts) < count:
        raise RuntimeError(
            f"{WIKIPEDIA} {dump}.{language} gave only {len(texts)} non-empty articles "
            f"({empty} empty skipped), {count} asked"
        )
    return texts


def mzsre_questions(root: str | Path, languages, per_language: int | None = None) -> dict[str, list[str]]:
    """``{language: [question, ...]}`` from MzsRE's training split under ``root`` (``data/zsre_mend_train_<lang>_
    10000.txt``, one ``question<TAB>answer`` per line; ``data.downloads.fetch_mzsre(train=True)`` makes it):
    text disjoint from the test facts a study edits, for the preserved-key statistics of a real LLM. The
    questions alone: the answers are the split's counterfactual targets. The first ``per_language`` lines of
    each language (None: all); a line without a question is an error naming the file and the line."""
    from langedit_mini.data.languages import UPSTREAM_CODES

    if per_language is not None and (not isinstance(per_language, int) or per_language < 1):
        raise ValueError(f"per_language must be None or a positive integer, got {per_language!r}")
    texts = {}
    for language in (check_language(language) for language in languages):
        path = Path(root) / "data" / f"zsre_mend_train_{UPSTREAM_CODES.get(language, language)}_10000.txt"
        if not path.is_file():
            raise FileNotFoundError(f"no MzsRE training file at {path}: fetch_mzsre(train=True) makes it")
        questions = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            question = line.split("\t")[0].strip()
            if not question:
                raise ValueError(f"{path} line {number}: no question")
            questions.append(question)
            if per_language is not None and len(questions) == per_language:
                break
        texts[language] = questions
    return texts
