"""Token spans as text: a phrase's words, its number, whether its first word is a name, and the
sentence case of a composed statement; and how the collection writes its words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from service.augment.structure.words import _MASS_NOUNS


def _span_text(tokens: Sequence) -> str:  # type: ignore[type-arg]
    """Tokens' text with their own spacing, the last one's trailing space dropped."""
    if not tokens:
        return ""
    return "".join(t.text_with_ws for t in tokens[:-1]) + tokens[-1].text


def _subtree(token) -> list:  # type: ignore[no-untyped-def,type-arg]
    return sorted(token.subtree, key=lambda t: t.i)


def _runs(tokens: Sequence) -> list[list]:  # type: ignore[type-arg]
    """Tokens (sorted) split into runs of adjacent ones."""
    out: list[list] = []  # type: ignore[type-arg]
    for t in tokens:
        if out and out[-1][-1].i == t.i - 1:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def _contiguous(tokens: Sequence) -> bool:  # type: ignore[type-arg]
    return all(b.i == a.i + 1 for a, b in zip(tokens, tokens[1:], strict=False))


def _plural(head, phrase: Sequence) -> bool:  # type: ignore[no-untyped-def,type-arg]
    """Whether a noun phrase takes "are": a plural head, or two things coordinated."""
    if any(t.dep_ == "conj" and t.head.i == head.i for t in phrase):
        return True
    if head.lower_ in _MASS_NOUNS:
        return False
    if head.lower_ == "staff":
        return True
    if head.ent_type_ in {"PERSON", "ORG", "PRODUCT"} or (
        head.pos_ == "PROPN"
        and head.text[:1].isupper()
        and head.tag_ == "NNPS"
        and not any(t.lower_ == "the" for t in phrase)
    ):
        return False  # "Tiago Lopes manages", "Quarry Software licenses": a name is one thing
    return head.tag_ in {"NNS", "NNPS"}


def _is_proper_start(token, names: frozenset[str] = frozenset()) -> bool:  # type: ignore[no-untyped-def]
    """Whether a sentence-initial word keeps its capital when it moves inside a sentence.

    `names` are the words the collection writes capitalized mid-sentence; the tagger alone
    calls most capitalized openers names ("Finance approves" and "Laptops must" alike)."""
    text = token.text
    if text == "I" or (len(text) > 1 and text.isupper()):
        return True
    if token.is_stop or token.dep_ in {"det", "predet"}:
        return False  # "All", "Every", "The": never a name
    if text in names:
        return True
    if f"-{text.lower()}" in names:
        return False  # written in lower case elsewhere in the collection: a common word
    nxt = token.doc[token.i + 1] if token.i + 1 < len(token.doc) else None
    if (
        nxt is not None
        and (nxt.head.i == token.i or token.head.i == nxt.i)
        and nxt.text[:1].isupper()
        and nxt.tag_ in {"NNP", "NNPS"}
    ):
        return True  # "Priya Nandakumar", "Corvane Freight"
    return token.ent_type_ == "PERSON" or token.tag_ in {"NNP", "NNPS"}


def _lower_first(text: str, first, names: frozenset[str] = frozenset()) -> str:  # type: ignore[no-untyped-def]
    if not text or first is None or first.i != 0 or _is_proper_start(first, names):
        return text
    return text[0].lower() + text[1:]


def _sentence(text: str) -> str:
    text = " ".join(text.split()).replace(" ,", ",")
    text = text.strip(" ,;:")
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text[-1] in ".!?" else ".")


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _definite(head) -> bool:  # type: ignore[no-untyped-def]
    det = next((c for c in head.children if c.dep_ in {"det", "poss"}), None)
    return det is not None and (det.lower_ == "the" or det.dep_ == "poss")


def collection_names(texts: Iterable[str]) -> frozenset[str]:
    """How the collection writes its words, so a sentence-initial one that moves keeps or
    drops its capital: "Tidemark" for a word written capitalized after a sentence's first word
    (a name), "-laptops" for one written in lower case (a common word)."""
    names: set[str] = set()
    for line in (line for text in texts for line in text.splitlines()):
        words = _drop_glued_heading(line).split()
        for prev, word in zip(words, words[1:], strict=False):
            word = word.strip("\"'()[],.;:!?")
            if not word[:1].isalpha():
                continue
            if word[:1].islower():
                names.add(f"-{word}")
            elif not prev.endswith((".", "!", "?", ":")) and prev != "-":
                names.add(word)
    return frozenset(names)


def _drop_glued_heading(sentence: str) -> str:
    """A plain-text heading joined to the sentence under it repeats that sentence's opening
    words ("Quarry Software Quarry Software licenses Ledger ..."): keep the sentence."""
    words = sentence.split()
    for n in range(1, min(6, len(words) // 2) + 1):
        if [w.lower() for w in words[:n]] == [w.lower() for w in words[n : 2 * n]]:
            return " ".join(words[n:])
    return sentence
