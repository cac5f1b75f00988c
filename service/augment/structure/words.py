"""The closed word lists the parse is read against: verbs that do not passivize, modals,
pronouns, determiners, framing dependencies and the like."""

from __future__ import annotations

import re

# Verbs whose object is not a patient: "has 40 staff", "costs 20 euros", "takes two days",
# "includes a laptop" (passive needs "in", not "by"), "becomes", "lacks".
_NO_PASSIVE = frozenset(
    {
        "have",
        "lack",
        "cost",
        "weigh",
        "measure",
        "last",
        "take",
        "get",
        "become",
        "seem",
        "mean",
        "resemble",
        "fit",
        "suit",
        "equal",
        "include",
        "contain",
        "comprise",
        "involve",
        "need",
        "want",
        "like",
        "hold",
        "reach",
        "total",
        "exceed",
        "enter",
        "leave",
        "join",
        "attend",
        "do",
        "make",
        "let",
        "help",
        "say",
        "tell",
        "know",
        "face",
        "share",
        "hit",
        "spend",
        "earn",
        "gain",
        "lose",
        "meet",
        "show",
        "give",
        "offer",
    }
)
_MODALS = frozenset({"must", "may", "might", "can", "could", "will", "would", "shall", "should"})
_PERSONAL = frozenset({"i", "we", "you", "me", "us", "one", "someone", "anyone", "everyone"})
_SUBJECT_PRONOUNS = {"it": "sg", "they": "pl", "he": "person", "she": "person"}
_NON_REFERENTIAL = frozenset({"this", "that", "these", "those", "there", "which", "what", "who"})
# Objects that are amounts or times, not things acted on ("lasts two days", "at 9am").
_MEASURE_ENTS = frozenset({"DATE", "TIME", "MONEY", "QUANTITY", "PERCENT", "CARDINAL", "ORDINAL"})
# Nouns read as singular whatever the tagger says ("shipment data is").
_MASS_NOUNS = frozenset(
    {"data", "information", "software", "equipment", "feedback", "advice", "training", "media"}
)
# Dependents of a verb that may stand before or after the verb group as framing.
_FRAMING_DEPS = frozenset(
    {"prep", "advmod", "npadvmod", "advcl", "xcomp", "dative", "oprd", "tmod", "pcomp", "ccomp"}
)
_FRONT_FRAMING_DEPS = frozenset({"prep", "advmod", "npadvmod", "advcl", "tmod"})
_POSSESSIVES = frozenset({"its", "their", "his", "her", "our", "my", "your"})
_PLURAL_QUANTIFIERS = frozenset({"all", "both", "many", "several", "few", "most"})
# Adverbs that tie a second verb to the first ("kept for two years and then deleted").
_POINTS_BACK = frozenset({"then", "afterwards", "later", "also", "thereafter", "again", "too"})
# Adverbs whose focus moves with the words around them.
_FOCUS = frozenset({"also", "only", "even", "just", "too", "mainly", "mostly"})
# A list marker opening a line ("- ", "* ", "1. ", "a) ").
_BULLET_RE = re.compile(r"^\s*(?:[-*•·–]+|\(?\d{1,3}[.)]|\(?[a-h][.)])\s+")
# Relative pronouns that open a subject-gap relative clause ("the team that runs X").
_REL_PRONOUNS = frozenset({"that", "which", "who", "whom"})
