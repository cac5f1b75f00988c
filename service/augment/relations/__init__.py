"""Rules about binary relations: comparatives, known inverse pairs, and statement normalization.

The decomposed strategy uses them to normalize and invert an extracted relation before it asks
the teacher; the quality gate uses them to recognise an output that contradicts its source. A
135M teacher swaps the names of a comparison without flipping it most of the time
(notes/teacher.md), so what rules can decide is decided by rules.

`words` tokenizes, `comparatives` reads and inverts comparisons, `inverses` holds the table of
inverse pairs and normalizes a relation phrase, `extraction` finds a known relation in a sentence.
"""

from service.augment.relations.comparatives import (
    ANTONYM_PAIRS,
    Comparative,
    comparatives_agree,
    dimension,
    er_candidates,
    er_form,
    invert_comparative_phrase,
    parse_comparative,
)
from service.augment.relations.extraction import rule_triple
from service.augment.relations.inverses import (
    invert_relation,
    is_bare_copula,
    is_symmetric,
    normalize_relation,
)
from service.augment.relations.words import ARTICLES, NEGATIONS, canonical_tokens, tokens

# Recorded on examples composed by rules alone; bump when the tables or rules change.
RULES_VERSION = "2026-11-25.1"

__all__ = [
    "ANTONYM_PAIRS",
    "ARTICLES",
    "NEGATIONS",
    "RULES_VERSION",
    "Comparative",
    "canonical_tokens",
    "comparatives_agree",
    "dimension",
    "er_candidates",
    "er_form",
    "invert_comparative_phrase",
    "invert_relation",
    "is_bare_copula",
    "is_symmetric",
    "normalize_relation",
    "parse_comparative",
    "rule_triple",
    "tokens",
]
