"""The statement grammar shared by the generators and the truth matcher.

A dataset's facts are written with *templates*: surface strings with slots, such as
``"{x.pl} are a type of {y.pl}"``. The same template renders training sentences and test
choices, and, turned into an abstract token pattern (``<cat> are type of <cat>``), recognises
those statements again in any text, whatever their case, punctuation, articles or number.

Normalization (``normal_tokens``) is deliberately small:
- lower case; letters only (punctuation and digits become spaces); "n't" and "cannot" -> "not";
- the articles "a", "an", "the" are dropped;
- "is" -> "are", "has" -> "have", "does" -> "do" (singular and plural statements coincide);
- a nonsense word with a trailing "s" is the word itself (plural nouns, third-person verbs);
  a nonsense verb's participle ("flobbed") is kept apart as its own slot type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

ARTICLES = frozenset({"a", "an", "the"})
SYNONYMS = {"is": "are", "has": "have", "does": "do"}
NEGATIONS = frozenset({"not", "never", "false", "untrue", "incorrect", "wrong", "neither", "nor"})

_SLOT_RE = re.compile(r"\{(\w+)(?:\.(\w+))?\}")
_WORD_RE = re.compile(r"[a-z]+")
_SENTENCE_RE = re.compile(r"[.!?;:\n]+")

# A lexicon maps a surface token to (slot type, base word): "gruds" -> ("cat", "grud").
Lexicon = Mapping[str, tuple[str, str]]


def normal_tokens(text: str) -> list[str]:
    """The literal tokens of ``text`` after the normalization rules above (nonsense words are
    not yet resolved: see ``abstract``)."""
    lowered = text.lower().replace("’", "'").replace("n't", " not").replace("cannot", "can not")
    return [SYNONYMS.get(t, t) for t in _WORD_RE.findall(lowered) if t not in ARTICLES]


def sentences(text: str) -> list[str]:
    """``text`` cut at sentence punctuation and line breaks (also at colons, so a header such as
    "The relationships between a, b and c are:" stands apart from what follows)."""
    return [s.strip() for s in _SENTENCE_RE.split(text) if s.strip()]


def normal_form(text: str, lexicon: Lexicon) -> tuple[str, ...]:
    """``text`` normalized, with every nonsense word replaced by its base form: two statements
    with the same normal form say the same thing in the same words."""
    return tuple(lexicon[t][1] if t in lexicon else t for t in normal_tokens(text))


def abstract(tokens: Iterable[str], lexicon: Lexicon) -> tuple[list[str], list[str | None]]:
    """Pattern tokens (nonsense words replaced by ``<type>``) and, position by position, the base
    word each placeholder stands for."""
    pattern: list[str] = []
    values: list[str | None] = []
    for token in tokens:
        entry = lexicon.get(token)
        if entry is None:
            pattern.append(token)
            values.append(None)
        else:
            pattern.append(f"<{entry[0]}>")
            values.append(entry[1])
    return pattern, values


@dataclass(frozen=True)
class Template:
    """One way of stating one kind of fact.

    ``kind`` and ``params`` say what is stated (e.g. kind "cmp", params ("bright", "higher"));
    ``surface`` holds slots ``{name}`` or ``{name.form}`` (form: "pl" plural, "s" third person,
    "pp" participle); ``slot_types`` gives each slot name its lexicon type.
    """

    kind: str
    surface: str
    slot_types: tuple[tuple[str, str], ...]
    params: tuple[str, ...] = ()

    def pattern(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The abstract token pattern and the slot names in the order they occur in it."""
        types = dict(self.slot_types)
        tokens: list[str] = []
        roles: list[str] = []
        position = 0
        for m in _SLOT_RE.finditer(self.surface):
            tokens.extend(normal_tokens(self.surface[position : m.start()]))
            name, form = m.group(1), m.group(2)
            tokens.append("<pp>" if form == "pp" else f"<{types[name]}>")
            roles.append(name)
            position = m.end()
        tokens.extend(normal_tokens(self.surface[position:]))
        return tuple(tokens), tuple(roles)

    def render(self, values: Mapping[str, str], forms: Mapping[str, Callable[[str], str]]) -> str:
        """The statement as a sentence: slots filled (``forms`` maps a form name to a function
        of the base word), first letter capitalized, a full stop at the end."""

        def fill(m: re.Match[str]) -> str:
            word = values[m.group(1)]
            form = m.group(2)
            return forms[form](word) if form else word

        text = _SLOT_RE.sub(fill, self.surface)
        return text[:1].upper() + text[1:] + "."


def template(kind: str, surface: str, params: tuple[str, ...] = (), **slot_types: str) -> Template:
    """Shorthand: ``template("isa", "{x.pl} are a type of {y.pl}", x="cat", y="cat")``."""
    return Template(kind, surface, tuple(sorted(slot_types.items())), params)


@dataclass(frozen=True)
class Match:
    """A template recognised in a sentence: token span [start, end) of the normalized sentence,
    the slot values (base words) and the span's normal form."""

    template: Template
    values: tuple[tuple[str, str], ...]
    start: int
    end: int
    form: tuple[str, ...]

    def value(self, name: str) -> str:
        return dict(self.values)[name]


class Matcher:
    """Finds template statements in text: longest match first, matches never overlap."""

    def __init__(self, lexicon: Lexicon, templates: Iterable[Template]) -> None:
        self.lexicon = lexicon
        self._by_pattern: dict[tuple[str, ...], tuple[Template, tuple[str, ...]]] = {}
        for t in templates:
            pattern, roles = t.pattern()
            # Two templates with one pattern would make a statement ambiguous: refuse early.
            previous = self._by_pattern.get(pattern)
            if previous is not None and previous[0] != t:
                raise ValueError(f"templates {previous[0].surface!r} and {t.surface!r} collide")
            self._by_pattern[pattern] = (t, roles)
        self._lengths = sorted({len(p) for p in self._by_pattern}, reverse=True)

    def find(self, sentence: str) -> tuple[list[Match], list[str]]:
        """The matches in one sentence, in text order, and the sentence's literal tokens that lie
        outside every match (so a caller can look for a negation around them)."""
        tokens = normal_tokens(sentence)
        pattern, values = abstract(tokens, self.lexicon)
        taken = [False] * len(tokens)
        found: list[Match] = []
        for length in self._lengths:
            for start in range(len(tokens) - length + 1):
                if any(taken[start : start + length]):
                    continue
                hit = self._by_pattern.get(tuple(pattern[start : start + length]))
                if hit is None:
                    continue
                tmpl, roles = hit
                slot_values = [v for v in values[start : start + length] if v is not None]
                if len(slot_values) != len(roles):
                    continue
                bound: dict[str, str] = {}
                consistent = True
                for role, value in zip(roles, slot_values, strict=True):
                    # A slot named twice in one template must hold the same word both times.
                    if bound.setdefault(role, value) != value:
                        consistent = False
                if not consistent:
                    continue
                form = tuple(
                    v if v is not None else p
                    for p, v in zip(
                        pattern[start : start + length], values[start : start + length], strict=True
                    )
                )
                found.append(Match(tmpl, tuple(sorted(bound.items())), start, start + length, form))
                for i in range(start, start + length):
                    taken[i] = True
        found.sort(key=lambda m: m.start)
        outside = [t for t, used in zip(tokens, taken, strict=True) if not used]
        return found, outside


def plural(word: str) -> str:
    """Plural of a nonsense noun (none ends in s, x, y, z or h)."""
    return word + "s"


class Knowledge(Protocol):
    """What a generator knows about its world, as the truth matcher needs it."""

    lexicon: dict[str, tuple[str, str]]
    templates: list[Template]

    def judge(self, match: Match) -> tuple[bool | None, str]:
        """True, False (the world says otherwise) or None (undecided), and the statement's key:
        statements with one key say the same thing about the same subject."""
        ...
