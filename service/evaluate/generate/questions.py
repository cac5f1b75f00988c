"""Writing one item: the question asking for a frame's subject, its answer phrase and wrong
answers of the same kind that no statement of the collection makes true."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from service.evaluate.evalset import EvalItem, generated_id
from service.evaluate.generate.frames import Frame, subject_at
from service.evaluate.generate.model import GeneratedItem
from service.evaluate.generate.phrases import (
    DEMONSTRATIVES,
    GROUP_HEADS,
    Collection,
    Phrase,
    as_choice,
    capitalized,
    classify,
    mid_sentence,
    normalized,
    phrase_key,
    propn_runs,
    span_tokens,
)

_QUANTIFIERS = ("all", "no", "some")
_MAX_DESCRIPTION_WORDS = 14
_NEGATIONS = frozenset({"not", "never", "no", "none", "nobody", "neither", "nor", "n't"})
_PERMISSIONS = frozenset({"may", "can", "could", "might"})


def _answer_phrase(frame: Frame, doc, start: int, collection: Collection) -> Phrase | str:  # type: ignore[no-untyped-def]
    end = start + len(frame.subject)
    tokens = span_tokens(doc, start, end)
    if not tokens or "".join(t.text_with_ws for t in tokens).strip() != frame.text[start:end]:
        return "answer_not_a_phrase"
    phrase = classify(tokens, collection)
    described = tokens[0].lower_ == "the" and len(tokens) <= _MAX_DESCRIPTION_WORDS
    if phrase is None and frame.rule.endswith(":identity") and frame.other and described:
        # "Tidemark is the dashboard ..." asked as "What is Tidemark?": the description
        side = "person" if phrase_key(frame.other) in collection.persons else "thing"
        return Phrase(mid_sentence(tokens), f"description:{side}")
    return "answer_not_a_name" if phrase is None else phrase


def _wh(phrase: Phrase) -> str:
    if phrase.kind == "person" or phrase.kind == "description:person":
        return "who"
    if phrase.kind.startswith("group:"):
        head = phrase.kind[6:]
        return "which team" if head in GROUP_HEADS else f"which {head}"
    return "what"


def _specific(doc, start: int, end: int, collection: Collection) -> bool:  # type: ignore[no-untyped-def]
    """Whether what the question says besides its answer names something the reader can find
    without the document at hand: a proper name, or a phrase of two words or more ("the
    payroll system"); never a pronoun, a "this" or a bare "the request" that points into the
    text (a possessive "its" after a name of the question may stay: it points to that name)."""
    outside = [t for t in doc if not (start <= t.idx < end)]
    for t in outside:
        if t.dep_ == "poss" and t.pos_ == "PRON":
            pointing = not any(collection.proper(x) for x in outside if x.i < t.i)
        else:
            pointing = (t.pos_ == "PRON" and t.lower_ not in {"that", "which", "who", "whom"}) or (
                t.lower_ in DEMONSTRATIVES and t.dep_ == "det"
            )
        if pointing:
            return False
    for chunk in doc.noun_chunks:
        root = chunk.root
        if chunk.start_char >= start and chunk.end_char <= end or root.pos_ != "NOUN":
            continue
        if [t.lower_ for t in chunk] == ["the", root.lower_] and not any(
            c.dep_ in {"prep", "relcl", "acl", "amod", "compound"} for c in root.children
        ):
            return False  # "the request", "the cache": which one, outside its document?
    if any(collection.proper(t) for t in outside):
        return True
    for chunk in doc.noun_chunks:
        if chunk.start_char >= start and chunk.end_char <= end:
            continue
        words = [t for t in chunk.root.subtree if t.dep_ not in {"det", "predet", "punct"}]
        if len(words) >= 2:
            return True  # "the payroll system", "the tool for expenses"
    return False


def _givens(doc, start: int, end: int, collection: Collection) -> list[str]:  # type: ignore[no-untyped-def]
    """Keys of the named things the question speaks of besides its answer."""
    out = []
    for run in propn_runs(doc, collection):
        if start <= run[0].idx < end:
            continue
        out.append(" ".join(t.text for t in run).lower())
    for chunk in doc.noun_chunks:
        if chunk.start_char >= start and chunk.end_char <= end:
            continue
        words = [t for t in chunk if t.dep_ not in {"det", "predet"}]
        if len(words) >= 2 and not any(collection.proper(t) for t in words):
            out.append(" ".join(t.text for t in words).lower())
    return list(dict.fromkeys(out))


def write_item(
    frame: Frame, doc, collection: Collection, choices: int, rng: random.Random
) -> GeneratedItem | str:  # type: ignore[no-untyped-def]
    """The item asking for `frame`'s subject, or why there is none."""
    start = subject_at(frame.text, frame.subject)
    if start is None:
        return "subject_not_found"
    end = start + len(frame.subject)
    answer = _answer_phrase(frame, doc, start, collection)
    if isinstance(answer, str):
        return answer
    if not _specific(doc, start, end, collection):
        return "question_not_specific"
    if any(t.dep_ == "neg" or t.lower_ in _NEGATIONS for t in doc):
        return "negated"  # "Who does not approve X?": most of the collection does not
    if any(t.lower_ in _PERMISSIONS and t.tag_ == "MD" for t in doc):
        return "permission"  # "Who may book X?": who else may is rarely written down
    before, after = frame.text[:start], frame.text[end:]
    after = after.rstrip().rstrip(".!")
    wh = _wh(answer)
    question = (before + (wh if start else capitalized(wh)) + after).strip() + "?"
    if answer.key in phrase_key(question):
        return "answer_in_question"

    def statement(text: str) -> str:
        head = text if start else capitalized(text)
        return (before + head + frame.text[end:]).strip()

    if normalized(f"{question} {answer.text}") in collection.document_sentences:
        return "verbatim"
    if frame.category != "reversed" and normalized(statement(answer.text)) in (
        collection.document_sentences
    ):
        return "verbatim"
    givens = _givens(doc, start, end, collection)
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    verb = root.lemma_.lower() if root is not None else ""
    wrong = _distractors(answer, statement, givens, verb, question, collection, choices, rng)
    if not wrong:
        return "no_wrong_answer"
    options = [answer.text, *wrong]
    rng.shuffle(options)
    texts = [as_choice(o) for o in options]
    fields = {"question": question, "answer": as_choice(answer.text), "choices": texts}
    item = EvalItem(id=generated_id(fields), category=frame.category, **fields)
    return GeneratedItem(
        item=item,
        statements=tuple(statement(o) for o in options),
        sources=frame.sources,
        rule=frame.rule,
    )


def _distractors(
    answer: Phrase,
    statement: Callable[[str], str],
    givens: Sequence[str],
    verb: str,
    question: str,
    collection: Collection,
    choices: int,
    rng: random.Random,
) -> list[str]:
    """Up to `choices - 1` wrong answers of the answer's kind (see the module docstring),
    those that go with the same verb elsewhere first (hard ones, as in the paper)."""
    answer_words = set(answer.key.split())
    question_key = phrase_key(question)
    pool = []
    for key, phrase in collection.phrases.items():
        if phrase.kind != answer.kind or _contains(key, answer.key) or _contains(answer.key, key):
            continue  # the same thing, or one named in the other ("Finance", "the Finance team")
        if collection.types.get(key) == "team" and not phrase.text.startswith("the "):
            continue  # "Finance" for "the Finance team": one way of naming each team
        if answer.kind in {"person", "name"} and answer_words & set(key.split()):
            continue  # "Priya" for "Priya Nandakumar": perhaps the same one
        if key in question_key or normalized(statement(phrase.text)) in collection.known:
            continue
        if _written_together(key, givens, collection) or _bridged(key, givens, collection):
            continue
        pool.append(phrase)
    answer_type = collection.types.get(answer.key)
    hard = collection.verbs.get(verb, set())

    def tier(p: Phrase) -> int:
        # the same verb elsewhere, then a name that takes part in something (not one only
        # mentioned, "available for Android"), then one of the answer's class (or any class)
        kind = collection.types.get(p.key)
        same = kind is not None and (answer_type is None or kind == answer_type)
        mentioned = p.kind == "name" and p.key not in collection.participants
        return (0 if p.key in hard else 4) + (2 if mentioned else 0) + (0 if same else 1)

    pool.sort(key=lambda p: p.key)
    rng.shuffle(pool)
    pool.sort(key=tier)
    return [p.text for p in pool[: choices - 1]]


def _contains(text: str, part: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(part)}(?![\w-])", text) is not None


def _written_together(key: str, givens: Sequence[str], collection: Collection) -> bool:
    """Whether a statement of the collection names `key` together with something the question
    names: it may say how the two relate, so the wrong answer may not be wrong."""
    return any(any(g in collection.lowered[i] for g in givens) for i in collection.mentions_of(key))


def _bridged(key: str, givens: Sequence[str], collection: Collection) -> bool:
    """Whether `key` is written with a class that an "all/every" statement relates to what the
    question names ("Sofia Almeida, the office manager" + "Every office manager reports to Rui
    Costa": Sofia Almeida may be a right answer to "Who reports to Rui Costa?")."""
    mentions = [collection.lemma_texts[i] for i in collection.mentions_of(key)]
    for class_words, class_text in collection.classes:
        if not any(g in class_text for g in givens):
            continue
        if any(class_words and class_words in lemmas for lemmas in mentions):
            return True
    return False


def quantifier_item(inference, rule: str, collection: Collection) -> GeneratedItem | str:  # type: ignore[no-untyped-def]
    """ "No contractors may access the payroll system." against "All ..." and "Some ...": the
    quantifiers the conclusion rules out (never "some" against "all", which "all" implies)."""
    words = inference.text.split(" ", 1)
    if len(words) != 2 or words[0].lower() not in _QUANTIFIERS:
        return "quantifier_not_read"
    quantifier, rest = words[0].lower(), words[1]
    wrong = {"all": ["no"], "no": ["all", "some"], "some": ["no"]}[quantifier]
    options = [inference.text, *(f"{capitalized(q)} {rest}" for q in wrong)]
    if any(normalized(o) in collection.known for o in options[1:]):
        return "wrong_quantifier_is_stated"
    if normalized(inference.text) in collection.document_sentences:
        return "verbatim"
    subject = inference.premises[0].subject
    question = f"Which is true of {subject}?"
    rng = random.Random(inference.text)
    rng.shuffle(options)
    fields = {"question": question, "answer": inference.text, "choices": options}
    item = EvalItem(id=generated_id(fields), category="cross-document", **fields)
    first, second = inference.premises
    return GeneratedItem(
        item=item,
        statements=tuple(options),
        sources=(first.unit_id, second.unit_id),
        rule=rule,
    )
