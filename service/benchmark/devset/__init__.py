"""A development set of realistic enterprise prose with hand-written gold labels.

Fourteen documents of one fictional company (Calloway Logistics) live in `documents/`; `gold.json`
holds, for every sentence of every document (headings and list items included), the statements a
careful reader accepts as following from it ("true": reversals, rephrasings, questions) and the
plausible wrong ones a sloppy reader writes ("false": roles swapped, negation dropped, ...), plus
facts that follow only from two or three documents together ("cross_document"). Four documents
are the held-out split; tune nothing on them.

The gold was written by a person reading the documents, not from what any augmentation strategy
produces. Each gold entry is one meaning with the phrasings accepted for it; a statement matches an
entry when its `normalize`d text equals one of the entry's normalized phrasings. `score.py` turns
a list of augmentation examples into precision, contradiction rate and recall figures.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CROSS_KINDS",
    "FALSE_KINDS",
    "GOLD_PATH",
    "SPLITS",
    "TRUE_KINDS",
    "CrossFact",
    "DevSet",
    "Document",
    "GoldEntry",
    "GoldSentence",
    "check_coverage",
    "load_devset",
    "normalize",
]

DEVSET_DIR = Path(__file__).resolve().parent
GOLD_PATH = DEVSET_DIR / "gold.json"
SPLITS = ("dev", "heldout")
TRUE_KINDS = frozenset({"reversal", "rephrasing", "question"})
FALSE_KINDS = frozenset(
    {
        "roles_swapped",
        "negation_dropped",
        "negation_added",
        "wrong_referent",
        "condition_dropped",
        "wrong_number",
        "overgeneralized",
    }
)
CROSS_KINDS = frozenset({"inheritance", "chain", "join", "syllogism"})

# --------------------------------------------------------------------------- normalization

_CHAR_MAP = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
    }
)

# Irregular forms first; the generic "n't" rule handles the rest (isn't, doesn't, mustn't, ...).
_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"\bcan't\b", "cannot"),
        (r"\bwon't\b", "will not"),
        (r"\bshan't\b", "shall not"),
        (r"\bain't\b", "is not"),
        (r"\b(\w+)n't\b", r"\1 not"),
        (r"\b(it|that|there|here|what|who|where|he|she)'s\b", r"\1 is"),
        (r"\blet's\b", "let us"),
        (r"\bi'm\b", "i am"),
        (r"\b(\w+)'re\b", r"\1 are"),
        (r"\b(\w+)'ll\b", r"\1 will"),
        (r"\b(i|you|we|they|who|could|should|would|might|must)'ve\b", r"\1 have"),
        (r"\b(i|you|we|they|he|she|it)'d\b", r"\1 would"),
    )
)
_TRAILING = re.compile(r"[\s.!?;:,]+$")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The form statements are compared in.

    Lowercase; unicode quotes, dashes and ellipses to ASCII; contractions expanded ("isn't" ->
    "is not", "can't" -> "cannot"); "%" -> " percent"; whitespace collapsed; trailing punctuation
    and spaces removed. Articles and inner punctuation stay: "the Platform team" and "Platform
    team" are different strings, and "Who ...? Answer." keeps its question mark.
    """
    text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP).lower()
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    text = text.replace("%", " percent")
    text = _SPACE.sub(" ", text).strip()
    return _TRAILING.sub("", text)


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class GoldEntry:
    """One meaning (`kind`) with every phrasing accepted for it.

    `key` is unique in the gold file: "<document>#<sentence index>:true:<n>" for sentence entries,
    "cross#<index>:true" / "cross#<index>:false" for cross-document facts.
    """

    key: str
    kind: str
    texts: tuple[str, ...]
    truth: bool
    split: str
    document: str | None  # the sentence's document; None for a cross-document fact
    sentence: str | None  # the source sentence; None for a cross-document fact
    cross_index: int | None = None

    @property
    def normalized(self) -> frozenset[str]:
        return frozenset(normalize(t) for t in self.texts)


@dataclass(frozen=True)
class GoldSentence:
    index: int
    text: str
    true: tuple[GoldEntry, ...]
    false: tuple[GoldEntry, ...]

    @property
    def entries(self) -> tuple[GoldEntry, ...]:
        return self.true + self.false


@dataclass(frozen=True)
class Document:
    id: str
    path: Path
    text: str
    split: str
    sentences: tuple[GoldSentence, ...]

    @property
    def format(self) -> str:
        return self.path.suffix.lstrip(".")


@dataclass(frozen=True)
class CrossFact:
    index: int
    kind: str
    split: str
    sources: tuple[tuple[str, str], ...]  # (document id, sentence text)
    true: GoldEntry
    false: GoldEntry | None


@dataclass(frozen=True)
class DevSet:
    company: str
    split: str | None  # the split loaded; None for both
    documents: tuple[Document, ...]
    cross: tuple[CrossFact, ...]

    def document(self, doc_id: str) -> Document:
        for doc in self.documents:
            if doc.id == doc_id:
                return doc
        raise KeyError(doc_id)

    @property
    def document_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.documents)

    @property
    def sentences(self) -> tuple[tuple[Document, GoldSentence], ...]:
        return tuple((d, s) for d in self.documents for s in d.sentences)

    def entries(self, kind: str | None = None) -> tuple[GoldEntry, ...]:
        """Every sentence-level entry (true and false), optionally of one kind."""
        return tuple(
            e for _, s in self.sentences for e in s.entries if kind is None or e.kind == kind
        )

    def reversal_entries(self) -> tuple[GoldEntry, ...]:
        return self.entries("reversal")


# --------------------------------------------------------------------------- loading


def load_devset(split: str | None = None, *, gold_path: Path | str | None = None) -> DevSet:
    """Load and validate the gold; `split` ("dev" or "heldout") keeps that split's documents and
    cross-document facts (a cross fact's split is "dev" only when all its sources are dev).

    Raises ValueError naming the problem: an unknown kind or split, a missing document file, a
    sentence whose text is not in its document (after whitespace normalization), a cross source
    that is not a sentence of the gold, or a statement that is gold-true in one place and
    gold-false in another.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    path = Path(gold_path) if gold_path is not None else GOLD_PATH
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"devset gold {path} cannot be read: {exc}") from exc
    if raw.get("version") != 1:
        raise ValueError(f"devset gold {path}: unsupported version {raw.get('version')!r}")
    base = path.parent
    documents = tuple(_load_document(d, base) for d in raw.get("documents", []))
    ids = [d.id for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError(f"devset gold: duplicate document ids in {ids}")
    by_sentence = {(d.id, s.text) for d in documents for s in d.sentences}
    splits = {d.id: d.split for d in documents}
    cross = tuple(
        _load_cross(i, c, by_sentence, splits) for i, c in enumerate(raw.get("cross_document", []))
    )
    _check_consistent(documents, cross)
    if split is not None:
        documents = tuple(d for d in documents if d.split == split)
        cross = tuple(c for c in cross if c.split == split)
    return DevSet(
        company=str(raw.get("company", "")), split=split, documents=documents, cross=cross
    )


def _texts(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"devset gold: {where} needs a non-empty list of texts")
    if not all(isinstance(t, str) and t.strip() for t in value):
        raise ValueError(f"devset gold: {where} has an empty or non-string text")
    return tuple(value)


def _load_document(raw: dict, base: Path) -> Document:
    doc_id = raw.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError(f"devset gold: document without an id: {raw.get('file')!r}")
    split = raw.get("split")
    if split not in SPLITS:
        raise ValueError(f"devset gold: document {doc_id!r} has unknown split {split!r}")
    path = base / str(raw.get("file", ""))
    if not path.is_file():
        raise ValueError(f"devset gold: document {doc_id!r}: file {path} does not exist")
    if path.stem != doc_id:
        raise ValueError(f"devset gold: document id {doc_id!r} is not its file stem {path.stem!r}")
    text = path.read_text(encoding="utf-8")
    flat = _collapse(text)
    sentences = []
    for i, s in enumerate(raw.get("sentences", [])):
        stext = s.get("text")
        if not isinstance(stext, str) or not stext.strip():
            raise ValueError(f"devset gold: document {doc_id!r} sentence {i} has no text")
        if _collapse(stext) not in flat:
            raise ValueError(
                f"devset gold: document {doc_id!r} sentence {i} is not in {path.name}: {stext!r}"
            )
        entries: dict[bool, list[GoldEntry]] = {True: [], False: []}
        for truth, kinds in ((True, TRUE_KINDS), (False, FALSE_KINDS)):
            for n, e in enumerate(s.get("true" if truth else "false", [])):
                where = f"document {doc_id!r} sentence {i} {'true' if truth else 'false'}[{n}]"
                kind = e.get("kind")
                if kind not in kinds:
                    raise ValueError(f"devset gold: {where} has unknown kind {kind!r}")
                entries[truth].append(
                    GoldEntry(
                        key=f"{doc_id}#{i}:{'true' if truth else 'false'}:{n}",
                        kind=kind,
                        texts=_texts(e.get("texts"), where),
                        truth=truth,
                        split=split,
                        document=doc_id,
                        sentence=stext,
                    )
                )
        sentences.append(GoldSentence(i, stext, tuple(entries[True]), tuple(entries[False])))
    if not sentences:
        raise ValueError(f"devset gold: document {doc_id!r} has no sentences")
    return Document(doc_id, path, text, split, tuple(sentences))


def _load_cross(
    i: int, raw: dict, by_sentence: set[tuple[str, str]], splits: dict[str, str]
) -> CrossFact:
    where = f"cross_document[{i}]"
    kind = raw.get("kind")
    if kind not in CROSS_KINDS:
        raise ValueError(f"devset gold: {where} has unknown kind {kind!r}")
    sources = []
    for src in raw.get("sources", []):
        if not (isinstance(src, list) and len(src) == 2):
            raise ValueError(f"devset gold: {where} source {src!r} is not [document, sentence]")
        doc_id, text = src
        if (doc_id, text) not in by_sentence:
            raise ValueError(
                f"devset gold: {where} source is not a sentence of document {doc_id!r}: {text!r}"
            )
        sources.append((doc_id, text))
    if len({d for d, _ in sources}) < 2:
        raise ValueError(f"devset gold: {where} needs sources in at least two documents")
    split = raw.get("split")
    expected = "dev" if all(splits[d] == "dev" for d, _ in sources) else "heldout"
    if split != expected:
        raise ValueError(
            f"devset gold: {where} has split {split!r}; its sources make it {expected!r}"
        )
    true = GoldEntry(
        f"cross#{i}:true",
        kind,
        _texts(raw.get("true"), f"{where} true"),
        True,
        split,
        None,
        None,
        i,
    )
    false = None
    if raw.get("false"):
        false = GoldEntry(
            f"cross#{i}:false",
            kind,
            _texts(raw["false"], f"{where} false"),
            False,
            split,
            None,
            None,
            i,
        )
    return CrossFact(i, kind, split, tuple(sources), true, false)


def _check_consistent(documents: tuple[Document, ...], cross: tuple[CrossFact, ...]) -> None:
    """No normalized statement may be gold-true somewhere and gold-false elsewhere."""
    truth: dict[str, tuple[bool, str]] = {}
    entries = [e for d in documents for s in d.sentences for e in s.entries]
    entries += [e for c in cross for e in (c.true, c.false) if e is not None]
    for e in entries:
        for n in e.normalized:
            seen = truth.setdefault(n, (e.truth, e.key))
            if seen[0] != e.truth:
                raise ValueError(
                    f"devset gold: {n!r} is {'true' if seen[0] else 'false'} in {seen[1]} "
                    f"and {'true' if e.truth else 'false'} in {e.key}"
                )


_GAP_MARKUP = re.compile(r"(?:^|\s)(?:\d+\.|[QA]:|#+|[-*+])(?=\s|$)")


def check_coverage(doc: Document) -> list[str]:
    """Problems with `doc`'s gold sentences as a cover of its text: each must follow the previous
    one in the text, and what lies between them may be markup only (heading marks, bullets,
    list numbers, "Q:"/"A:"). An empty list means every sentence of the document is in the gold.
    """
    text = _collapse(doc.text)
    problems, cursor = [], 0
    for s in doc.sentences:
        at = text.find(_collapse(s.text), cursor)
        if at < 0:
            problems.append(
                f"{doc.id}: sentence {s.index} not found after position {cursor}: {s.text!r}"
            )
            continue
        gap = _GAP_MARKUP.sub(" ", text[cursor:at])
        if re.search(r"\w", gap):
            problems.append(
                f"{doc.id}: text before sentence {s.index} is not in the gold: {gap.strip()!r}"
            )
        cursor = at + len(_collapse(s.text))
    if re.search(r"\w", _GAP_MARKUP.sub(" ", text[cursor:])):
        problems.append(
            f"{doc.id}: text after the last sentence is not in the gold: {text[cursor:]!r}"
        )
    return problems
