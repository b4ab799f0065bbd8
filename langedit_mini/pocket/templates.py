"""Statement and question templates per relation and language: one table, no per-language code.

Every template is a *prefix*: the answer follows it, joined by ``ANSWER_JOINER[language]`` (a
space, or nothing in Chinese). ``{s}`` is the subject. Country relations share one frame per
language and differ by a relation phrase that carries its own article (``der Kontinent``,
``la capitale``); the frame names "the country X" (``des Landes X``, ``du pays X``), so subjects
never need an article of their own.

Roles of the forms (see ``corpus.py``):
* statements[0:2]: in the training corpus; statements[2]: held out (perplexity probe);
* questions[0]: the edit prompt (trained); questions[1]: trained;
  questions[2]: the paraphrase (trained only for half the facts, never for facts in the editing
  set); questions[3]: held out for every fact.
"""

from __future__ import annotations

from langedit_mini.data.languages import ANSWER_JOINER

STATEMENT_END = {"en": ".", "de": ".", "nl": ".", "es": ".", "fr": ".", "zh": "。"}

COUNTRY_RELATIONS = ("capital", "currency", "official_language", "continent", "subregion", "calling_code")

RELATION_PHRASE = {
    "en": {
        "capital": "the capital",
        "currency": "the currency",
        "official_language": "the official language",
        "continent": "the continent",
        "subregion": "the region",
        "calling_code": "the calling code",
    },
    "de": {
        "capital": "die Hauptstadt",
        "currency": "die Währung",
        "official_language": "die Amtssprache",
        "continent": "der Kontinent",
        "subregion": "die Region",
        "calling_code": "die Vorwahl",
    },
    "nl": {
        "capital": "de hoofdstad",
        "currency": "de munteenheid",
        "official_language": "de officiële taal",
        "continent": "het continent",
        "subregion": "de regio",
        "calling_code": "het landnummer",
    },
    "es": {
        "capital": "la capital",
        "currency": "la moneda",
        "official_language": "el idioma oficial",
        "continent": "el continente",
        "subregion": "la región",
        "calling_code": "el prefijo telefónico",
    },
    "fr": {
        "capital": "la capitale",
        "currency": "la monnaie",
        "official_language": "la langue officielle",
        "continent": "le continent",
        "subregion": "la région",
        "calling_code": "l’indicatif téléphonique",
    },
    "zh": {
        "capital": "首都",
        "currency": "货币",
        "official_language": "官方语言",
        "continent": "所在大洲",
        "subregion": "所在地区",
        "calling_code": "国际电话区号",
    },
}

# Relation phrases for the non-country relations, used in profile lines (see corpus.py).
PROFILE_PHRASE = {
    language: {**RELATION_PHRASE[language], **extra}
    for language, extra in {
        "en": {"city_country": "the country", "language_script": "the script"},
        "de": {"city_country": "das Land", "language_script": "die Schrift"},
        "nl": {"city_country": "het land", "language_script": "het schrift"},
        "es": {"city_country": "el país", "language_script": "la escritura"},
        "fr": {"city_country": "le pays", "language_script": "l’écriture"},
        "zh": {"city_country": "所属国家", "language_script": "文字"},
    }.items()
}
# A profile line: the subject first, then "attribute is answer" items in a random order.
PROFILE_FORMAT = {
    "en": ("{s}: ", "{rel} is {a}", "; ", "."),
    "de": ("{s}: ", "{rel} ist {a}", "; ", "."),
    "nl": ("{s}: ", "{rel} is {a}", "; ", "."),
    "es": ("{s}: ", "{rel} es {a}", "; ", "."),
    "fr": ("{s} : ", "{rel} est {a}", " ; ", "."),
    "zh": ("{s}：", "{rel}是{a}", "；", "。"),
}

# Frames with {rel} (the relation phrase), {Rel} (capitalised) and {s} (the subject).
COUNTRY_FRAMES = {
    "en": {
        "statements": [
            "{Rel} of the country {s} is",
            "For the country {s}, {rel} is",
            "As everyone knows, {rel} of the country {s} is",
        ],
        "questions": [
            "Q: What is {rel} of the country {s}? A:",
            "Q: Which is {rel} of the country {s}? A:",
            "Q: Tell me {rel} of the country {s}. A:",
            "Q: Do you know {rel} of the country {s}? A:",
        ],
    },
    "de": {
        "statements": [
            "{Rel} des Landes {s} ist",
            "Für das Land {s} ist {rel}",
            "Bekanntlich ist {rel} des Landes {s}",
        ],
        "questions": [
            "F: Was ist {rel} des Landes {s}? A:",
            "F: Welches ist {rel} des Landes {s}? A:",
            "F: Nenne {rel} des Landes {s}. A:",
            "F: Weißt du, was {rel} des Landes {s} ist? A:",
        ],
    },
    "nl": {
        "statements": [
            "{Rel} van het land {s} is",
            "Voor het land {s} is {rel}",
            "Zoals bekend is {rel} van het land {s}",
        ],
        "questions": [
            "V: Wat is {rel} van het land {s}? A:",
            "V: Welke is {rel} van het land {s}? A:",
            "V: Noem {rel} van het land {s}. A:",
            "V: Weet je wat {rel} van het land {s} is? A:",
        ],
    },
    "es": {
        "statements": [
            "{Rel} del país {s} es",
            "Para el país {s}, {rel} es",
            "Como todos saben, {rel} del país {s} es",
        ],
        "questions": [
            "P: ¿Cuál es {rel} del país {s}? R:",
            "P: ¿Qué es {rel} del país {s}? R:",
            "P: Dime {rel} del país {s}. R:",
            "P: ¿Sabes cuál es {rel} del país {s}? R:",
        ],
    },
    "fr": {
        "statements": [
            "{Rel} du pays {s} est",
            "Pour le pays {s}, {rel} est",
            "Comme chacun sait, {rel} du pays {s} est",
        ],
        "questions": [
            "Q : Quel est le nom de {rel} du pays {s} ? R :",
            "Q : {Rel} du pays {s}, c’est quoi ? R :",
            "Q : Dites-moi {rel} du pays {s}. R :",
            "Q : Savez-vous {rel} du pays {s} ? R :",
        ],
    },
    "zh": {
        "statements": ["{s}的{rel}是", "对于{s}来说，{rel}是", "众所周知，{s}的{rel}是"],
        "questions": [
            "问：{s}的{rel}是什么？答：",
            "问：{s}的{rel}是哪个？答：",
            "问：请说出{s}的{rel}。答：",
            "问：你知道{s}的{rel}吗？答：",
        ],
    },
}

CITY_FRAMES = {
    "en": {
        "statements": [
            "The city {s} is located in the country",
            "The city {s} belongs to the country",
            "You can find the city {s} in the country",
        ],
        "questions": [
            "Q: In which country is the city {s}? A:",
            "Q: Which country is the city {s} in? A:",
            "Q: Name the country of the city {s}. A:",
            "Q: The city {s} is in which country? A:",
        ],
    },
    "de": {
        "statements": [
            "Die Stadt {s} liegt im Land",
            "Die Stadt {s} gehört zum Land",
            "Man findet die Stadt {s} im Land",
        ],
        "questions": [
            "F: In welchem Land liegt die Stadt {s}? A:",
            "F: Zu welchem Land gehört die Stadt {s}? A:",
            "F: Nenne das Land der Stadt {s}. A:",
            "F: Die Stadt {s} liegt in welchem Land? A:",
        ],
    },
    "nl": {
        "statements": [
            "De stad {s} ligt in het land",
            "De stad {s} hoort bij het land",
            "Je vindt de stad {s} in het land",
        ],
        "questions": [
            "V: In welk land ligt de stad {s}? A:",
            "V: Bij welk land hoort de stad {s}? A:",
            "V: Noem het land van de stad {s}. A:",
            "V: De stad {s} ligt in welk land? A:",
        ],
    },
    "es": {
        "statements": [
            "La ciudad {s} está en el país",
            "La ciudad {s} pertenece al país",
            "Se puede encontrar la ciudad {s} en el país",
        ],
        "questions": [
            "P: ¿En qué país está la ciudad {s}? R:",
            "P: ¿A qué país pertenece la ciudad {s}? R:",
            "P: Nombra el país de la ciudad {s}. R:",
            "P: La ciudad {s} está en qué país? R:",
        ],
    },
    "fr": {
        "statements": [
            "La ville {s} se trouve dans le pays",
            "La ville {s} appartient au pays",
            "On trouve la ville {s} dans le pays",
        ],
        "questions": [
            "Q : Dans quel pays se trouve la ville {s} ? R :",
            "Q : À quel pays appartient la ville {s} ? R :",
            "Q : Nommez le pays de la ville {s}. R :",
            "Q : La ville {s} est dans quel pays ? R :",
        ],
    },
    "zh": {
        "statements": ["城市{s}位于国家", "城市{s}属于国家", "可以在这个国家找到城市{s}："],
        "questions": [
            "问：城市{s}位于哪个国家？答：",
            "问：城市{s}属于哪个国家？答：",
            "问：请说出城市{s}所在的国家。答：",
            "问：城市{s}在哪个国家？答：",
        ],
    },
}

LANGUAGE_FRAMES = {
    "en": {
        "statements": [
            "The language {s} is written in the script",
            "The script of the language {s} is",
            "Texts in the language {s} use the script",
        ],
        "questions": [
            "Q: Which script is used for the language {s}? A:",
            "Q: What is the script of the language {s}? A:",
            "Q: Name the writing system of the language {s}. A:",
            "Q: In which script is the language {s} written? A:",
        ],
    },
    "de": {
        "statements": [
            "Die Sprache {s} wird in der Schrift",
            "Die Schrift der Sprache {s} ist",
            "Texte in der Sprache {s} nutzen die Schrift",
        ],
        "questions": [
            "F: Welche Schrift nutzt die Sprache {s}? A:",
            "F: Was ist die Schrift der Sprache {s}? A:",
            "F: Nenne das Schriftsystem der Sprache {s}. A:",
            "F: In welcher Schrift schreibt man die Sprache {s}? A:",
        ],
    },
    "nl": {
        "statements": [
            "De taal {s} wordt geschreven in het schrift",
            "Het schrift van de taal {s} is",
            "Teksten in de taal {s} gebruiken het schrift",
        ],
        "questions": [
            "V: Welk schrift gebruikt de taal {s}? A:",
            "V: Wat is het schrift van de taal {s}? A:",
            "V: Noem het schriftsysteem van de taal {s}. A:",
            "V: In welk schrift schrijf je de taal {s}? A:",
        ],
    },
    "es": {
        "statements": [
            "El idioma {s} se escribe con la escritura",
            "La escritura del idioma {s} es",
            "Los textos en el idioma {s} usan la escritura",
        ],
        "questions": [
            "P: ¿Qué escritura usa el idioma {s}? R:",
            "P: ¿Cuál es la escritura del idioma {s}? R:",
            "P: Nombra el sistema de escritura del idioma {s}. R:",
            "P: ¿Con qué escritura se escribe el idioma {s}? R:",
        ],
    },
    "fr": {
        "statements": [
            "La langue {s} s’écrit avec l’écriture",
            "L’écriture de la langue {s} est",
            "Les textes en langue {s} utilisent l’écriture",
        ],
        "questions": [
            "Q : Quelle écriture utilise la langue {s} ? R :",
            "Q : Quelle est l’écriture de la langue {s} ? R :",
            "Q : Nommez le système d’écriture de la langue {s}. R :",
            "Q : Avec quelle écriture écrit-on la langue {s} ? R :",
        ],
    },
    "zh": {
        "statements": ["{s}使用的文字是", "{s}的书写文字是", "用{s}写的文本使用的文字是"],
        "questions": [
            "问：{s}使用哪种文字？答：",
            "问：{s}的文字是什么？答：",
            "问：请说出{s}的书写系统。答：",
            "问：{s}用哪种文字书写？答：",
        ],
    },
}


def _fill(frame: str, relation: str, language: str) -> str:
    phrase = RELATION_PHRASE[language].get(relation, "")
    return frame.replace("{rel}", phrase).replace("{Rel}", phrase[:1].upper() + phrase[1:])


def templates(relation: str, language: str) -> dict[str, list[str]]:
    """``{"statements": [3 prefixes], "questions": [4 prefixes]}`` with ``{s}`` for the subject."""
    if language not in ANSWER_JOINER:
        raise ValueError(f"unknown language {language!r}; the pocket world has {sorted(ANSWER_JOINER)}")
    if relation in COUNTRY_RELATIONS:
        frames = COUNTRY_FRAMES[language]
        return {kind: [_fill(f, relation, language) for f in forms] for kind, forms in frames.items()}
    if relation == "city_country":
        return CITY_FRAMES[language]
    if relation == "language_script":
        return LANGUAGE_FRAMES[language]
    raise ValueError(f"unknown relation {relation!r}; known: {COUNTRY_RELATIONS + ('city_country', 'language_script')}")


def render(prefix: str, subject: str) -> str:
    """Put the subject into a template prefix (``{s}`` occurs exactly once)."""
    if prefix.count("{s}") != 1:
        raise ValueError(f"template must contain {{s}} exactly once: {prefix!r}")
    return prefix.replace("{s}", subject)
