"""Edit requests and the loaders that make them: the pocket dataset, MzsRE and BMIKE-53.

Every loader returns ``EditRequest`` objects and a ``LoadReport`` that counts what was skipped
and why; a malformed record (a missing field, a non-string value) raises ``DatasetError`` naming
the file, the record and the field. Nothing is dropped silently.

Subject policy (reference, section 7): the edit prompt is ``src`` with the subject replaced by ``{}``.
MzsRE's non-English records often spell the subject differently from ``src``. We look for it
exactly, then case-insensitively, then accent- and case-insensitively (character by character, so
the span found is the one in ``src``, and that spelling becomes the request's subject). A record
whose subject is still not found is skipped and counted per language.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from langedit_mini.data.languages import ANSWER_JOINER, UPSTREAM_CODES, check_language, check_languages

POCKET_DIRECTORY = Path(__file__).resolve().parents[2] / "data" / "pocket"


class DatasetError(ValueError):
    """A record cannot be turned into an edit request."""


@dataclass(frozen=True)
class EditRequest:
    """One fact edit: ``prompt.format(subject) + joiner + target`` is what the edited model should say."""

    prompt: str  # the edit prompt with "{}" where the subject goes
    subject: str
    target: str  # the new answer o*
    lang: str
    joiner: str = " "  # between prompt and answer
    paraphrase: str | None = None  # full text, subject included
    locality_prompt: str | None = None
    locality_answer: str | None = None
    portability_prompt: str | None = None
    portability_answer: str | None = None
    true_answers: tuple[str, ...] = ()
    fact_id: str = ""
    relation: str = ""
    held_out: str | None = None  # a question form never trained (pocket only)

    def __post_init__(self):
        check_language(self.lang)
        if not isinstance(self.subject, str) or not self.subject.strip():
            raise DatasetError(f"request {self.fact_id or self.prompt!r}: subject must be a non-empty string")
        if not isinstance(self.target, str) or not self.target.strip():
            raise DatasetError(
                f"request {self.fact_id or self.prompt!r}: target must be a non-empty string, got {self.target!r}"
            )
        if not isinstance(self.prompt, str) or self.prompt.count("{}") != 1:
            raise DatasetError(
                f"request {self.fact_id or self.subject!r}: prompt must contain '{{}}' exactly once, "
                f"got {self.prompt!r}"
            )

    @property
    def question(self) -> str:
        """The edit prompt with the subject filled in."""
        return self.prompt.format(self.subject)


@dataclass
class LoadReport:
    """What a loader read, kept and skipped (by reason, per language)."""

    source: str
    read: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # (language, reason) -> count
    relocated: Counter = field(default_factory=Counter)  # subject found only after normalisation
    repeated: Counter = field(default_factory=Counter)  # subject occurs more than once: the first is edited

    def skip(self, language: str, reason: str) -> None:
        self.skipped[(language, reason)] += 1

    def table(self):
        """Per-language counts as a pandas DataFrame."""
        import pandas as pd

        rows = []
        for language in sorted(set(self.read) | set(self.kept)):
            row = {
                "lang": language,
                "read": self.read[language],
                "kept": self.kept[language],
                "subject relocated": self.relocated[language],
                "subject repeated": self.repeated[language],
            }
            for (skip_language, reason), count in self.skipped.items():
                if skip_language == language:
                    row[f"skipped: {reason}"] = count
            rows.append(row)
        return pd.DataFrame(rows).fillna(0).set_index("lang")


def _fold_char(char: str) -> str:
    base = unicodedata.normalize("NFD", char)[0]
    return base.casefold()[:1] or char


def _escape_braces(part: str) -> str:
    return part.replace("{", "{{").replace("}", "}}")


def locate_subject(text: str, subject: str) -> tuple[str, str] | None:
    """Find ``subject`` in ``text``: exact, then case-, then accent-insensitive.

    Returns ``(template, subject_as_written)`` with the first occurrence replaced by ``{}``,
    or None. Braces already in ``text`` are escaped so that ``template.format`` is safe.
    """
    subject = subject.strip()
    if not subject:
        return None
    candidates = [(text, subject), (text.casefold(), subject.casefold())]
    folded_text = "".join(_fold_char(c) for c in text)  # one character per character: indices agree
    candidates.append((folded_text, "".join(_fold_char(c) for c in subject)))
    for haystack, needle in candidates:
        if len(haystack) != len(text):
            continue  # casefold changed lengths (e.g. German sharp s); indices would not agree
        start = haystack.find(needle)
        if start >= 0:
            end = start + len(needle)
            return _escape_braces(text[:start]) + "{}" + _escape_braces(text[end:]), text[start:end]
    return None


def _field(record: dict, name: str, where: str, *, optional: bool = False):
    if name not in record:
        if optional:
            return None
        raise DatasetError(f"{where}: missing field {name!r} (fields present: {sorted(record)})")
    value = record[name]
    if not isinstance(value, str):
        raise DatasetError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    return value


def _request(record: dict, language: str, where: str, report: LoadReport, **extra) -> EditRequest | None:
    """Shared MzsRE/BMIKE-53 record -> request, applying the subject policy."""
    report.read[language] += 1
    subject = _field(record, "subject", where)
    src = _field(record, "src", where)
    target = _field(record, "alt", where)
    if not target.strip():
        report.skip(language, "empty target")
        return None
    found = locate_subject(src, subject)
    if found is None:
        report.skip(language, "subject not in src")
        return None
    template, written = found
    if written != subject:
        report.relocated[language] += 1
    if written in template.replace("{}", "", 1):
        report.repeated[language] += 1
    report.kept[language] += 1
    return EditRequest(
        prompt=template,
        subject=written,
        target=target,
        lang=language,
        joiner=ANSWER_JOINER[language],
        paraphrase=_field(record, "rephrase", where),
        locality_prompt=_field(record, "loc", where),
        locality_answer=_field(record, "loc_ans", where),
        **extra,
    )


def _languages(languages) -> list[str]:
    return list(check_languages(languages))


def _read_json_list(path: Path) -> list:
    if not path.exists():
        raise FileNotFoundError(f"dataset file not found: {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


def load_mzsre(root: str | Path, languages=None) -> tuple[list[EditRequest], LoadReport]:
    """MzsRE from ``root/data/MzsRE/mzsre_test_duplicate_en<Y>.json`` (Dutch upstream is ``du``).

    English records are read once (from the German file); each other language from its pair file.
    ``fact_id`` is the record index, the same across languages.
    """
    root = Path(root)
    report = LoadReport("MzsRE")
    requests = []
    for language in _languages(languages):
        partner = "de" if language == "en" else language
        path = root / "data" / "MzsRE" / f"mzsre_test_duplicate_en{UPSTREAM_CODES.get(partner, partner)}.json"
        upstream = UPSTREAM_CODES.get(language, language)
        for index, pair in enumerate(_read_json_list(path)):
            where = f"{path.name} record {index} [{language}]"
            if not isinstance(pair, dict) or upstream not in pair:
                raise DatasetError(f"{where}: expected an object with key {upstream!r}")
            record = pair[upstream]
            if not isinstance(record, dict):
                raise DatasetError(f"{where}: record must be an object")
            portability = record.get("portability")
            extra = {"fact_id": f"mzsre:{index}"}
            if isinstance(portability, dict):
                extra |= {
                    "portability_prompt": portability.get("New Question"),
                    "portability_answer": portability.get("New Answer"),
                }
            request = _request(record, language, where, report, **extra)
            if request is not None:
                requests.append(request)
    return requests, report


def load_bmike53(root: str | Path, languages=None) -> tuple[list[EditRequest], LoadReport]:
    """BMIKE-53's zsRE part from ``root/data/BMIKE53/zsRE/zsre_test_<lang>.json`` (pairs ``{"en", lang}``).

    A pair file that lacks its language for a record (nl 365, zh 706 upstream) is counted as skipped.
    """
    root = Path(root)
    report = LoadReport("BMIKE-53")
    requests = []
    for language in _languages(languages):
        path = root / "data" / "BMIKE53" / "zsRE" / f"zsre_test_{'de' if language == 'en' else language}.json"
        for index, pair in enumerate(_read_json_list(path)):
            where = f"{path.name} record {index} [{language}]"
            if not isinstance(pair, dict):
                raise DatasetError(f"{where}: expected an object")
            if language not in pair:
                report.read[language] += 1
                report.skip(language, "language missing in pair")
                continue
            record = pair[language]
            extra = {
                "fact_id": f"bmike53:{record.get('case_id', index)}",
                "portability_prompt": _field(record, "port", where, optional=True),
                "portability_answer": _field(record, "port_ans", where, optional=True),
            }
            request = _request(record, language, where, report, **extra)
            if request is not None:
                requests.append(request)
    return requests, report


def load_pocket(
    directory: str | Path = POCKET_DIRECTORY, languages=None, relations=None
) -> tuple[list[EditRequest], LoadReport]:
    """The pocket editing dataset (``data/pocket/edits.json``), aligned across languages by ``fact_id``."""
    path = Path(directory) / "edits.json"
    report = LoadReport("pocket")
    wanted = set(_languages(languages))
    requests = []
    for index, record in enumerate(_read_json_list(path)):
        where = f"{path.name} record {index}"
        language = _field(record, "lang", where)
        if language not in wanted or (relations and record.get("relation") not in relations):
            continue
        portability = record.get("portability") or {}
        request = _request(
            record,
            language,
            where,
            report,
            fact_id=record.get("fact_id", ""),
            relation=record.get("relation", ""),
            held_out=record.get("held_out"),
            true_answers=tuple(record.get("true_answers", ())),
            portability_prompt=portability.get("New Question"),
            portability_answer=portability.get("New Answer"),
        )
        if request is not None:
            requests.append(request)
    return requests, report
