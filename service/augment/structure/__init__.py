"""Sentence structure for the decomposed and linked strategies: spaCy's dependency parse read
into clauses (subject, verb group, object, framing), and the rewrites that keep a clause true.

A rewrite is made only when the parse has the exact shape the rewrite needs; anything else
(an unresolved pronoun, a clause inside a clause, a verb that does not passivize, a parse whose
parts are out of order) gives no statement, with the reason. "No statement" is always better
than a false one: a wrong reversal teaches the adapter the opposite of the document.

The parse is read by `clause` (the main clause) and `pronouns`; the rewrites are `voice`
(active <-> passive) and `identity` (the forms of "X is ..."); `sentence.rewrites` runs them on
one sentence. `words` holds the closed word lists, `phrases` the span helpers, `nlp` the models.

Rewrites:
- passive: "Priya Nandakumar leads the Platform team." -> "The Platform team is led by Priya
  Nandakumar." (tense, modals, negation, coordinated verbs and framing kept);
- active: the same in the other direction, from a passive with its agent;
- identity: "Tidemark is the dashboard the Analytics team uses." -> "The dashboard the Analytics
  team uses is Tidemark.";
- membership: "Harbor is an internal tool for booking rooms." -> "One internal tool for booking
  rooms is Harbor.";
- relative: the relative clause of an identity as its own sentence ("The Analytics team uses
  Tidemark.");
- inclusion: "The IT Helpdesk is part of the Platform team." -> "The Platform team includes the
  IT Helpdesk." (also "a member of", "a type of");
- manager: "Joana Pereira reports to Rui Costa." -> "Rui Costa is Joana Pereira's manager.";
- split: two verbs of one subject with their own parts as two sentences, each rewritten;
- resolved: a sentence that opens with "It/They/He/She", with the pronoun replaced by the
  previous sentence's subject when nothing else there could be meant.
"""

from service.augment.structure.clause import Clause, read_clause
from service.augment.structure.identity import invert_copula
from service.augment.structure.nlp import MODEL, STRUCTURE_VERSION, made_by_rule, nlp, parse
from service.augment.structure.phrases import _drop_glued_heading, collection_names
from service.augment.structure.pronouns import replace_subject, resolve_subject
from service.augment.structure.rewrite import Rewrite
from service.augment.structure.sentence import rewrites, split_coordination
from service.augment.structure.voice import to_active, to_passive
from service.augment.structure.words import _BULLET_RE

__all__ = [
    "MODEL",
    "STRUCTURE_VERSION",
    "Clause",
    "Rewrite",
    "_BULLET_RE",
    "_drop_glued_heading",
    "collection_names",
    "invert_copula",
    "made_by_rule",
    "nlp",
    "parse",
    "read_clause",
    "replace_subject",
    "resolve_subject",
    "rewrites",
    "split_coordination",
    "to_active",
    "to_passive",
]
