"""Decomposed local strategy: reversals composed from parts, never written free-form.

Per sentence, on real prose: spaCy's parse is read into a clause and rewritten by rule
(`structure/`: active <-> passive, "X is the Y" <-> "The Y is X", a relative clause as its own
sentence, an opening pronoun resolved); a sentence whose structure is uncertain gives nothing.
Comparatives ("snald are younger than onke") keep the relation tables below.

With `use_rules=False` the older teacher path runs instead: the teacher extracts the relation
("subject | relation | object") and writes its inverse, and "object <inverse> subject" is
composed by template; notes/teacher.md measured it at 40% right, which is why it is not the
default. The benchmark compares against it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.augment.filters.postprocess import (
    Deduplicator,
    FilterConfig,
    filter_statements,
    split_sentences,
)
from service.augment.params import AugmentParams
from service.augment.prompts import PromptTemplate, resolve_template
from service.augment.relations import (
    RULES_VERSION,
    canonical_tokens,
    invert_relation,
    is_bare_copula,
    is_symmetric,
    normalize_relation,
    rule_triple,
    tokens,
)
from service.augment.runner import UnitWork, count_completion
from service.augment.structure import (
    collection_names,
    made_by_rule,
    rewrites,
)
from service.augment.teacher import Completion, Sampling, Teacher
from service.augment.types import Example, Unit, UnitResult, YieldStats

_DETERMINERS = frozenset(
    {
        "the",
        "a",
        "an",
        "this",
        "that",
        "these",
        "those",
        "every",
        "each",
        "all",
        "some",
        "many",
        "most",
        "our",
        "their",
        "its",
        "his",
        "her",
    }
)
_TAIL_RE = re.compile(
    r"^(?P<core>.+?)(?P<tail>,\s+.+|\s+(?:in|on|at|during|since|from|until|after|before|for|"
    r"throughout|across)\s+.+)$",
    re.IGNORECASE,
)
_HEAD_RE = re.compile(r"^(?P<head>.+,\s+)(?P<core>[^,]+)$")


@dataclass(frozen=True)
class Triple:
    subject: str
    relation: str
    object: str
    head: str = ""  # framing before the subject ("In 1999, ")
    tail: str = ""  # framing after the object (" in 1999")


def parse_triple(text: str) -> tuple[str, str, str] | None:
    """ "S | R | O" from the teacher's first line; None unless it has three non-empty parts."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    parts = [p.strip(" .\"'") for p in line.split("|")]
    if len(parts) != 3 or not all(tokens(p) for p in parts):
        return None
    return parts[0], parts[1], parts[2]


def _find(phrase: str, sentence: str, start: int = 0) -> tuple[int, int] | None:
    """Span of `phrase` in `sentence` from `start` (case-insensitive, whole words); a leading
    article the sentence lacks is let go ("the city" finds "city")."""
    words = phrase.split()
    while words:
        pattern = r"\b" + r"\s+".join(map(re.escape, words)) + r"\b"
        m = re.compile(pattern, re.IGNORECASE).search(sentence, start)
        if m:
            return m.span()
        if words[0].lower() not in {"the", "a", "an"}:
            return None
        words = words[1:]
    return None


def ground_triple(subject: str, obj: str, sentence: str) -> Triple | None:
    """The triple in the sentence's own words: subject and object found in it (subject first),
    the relation the text between them, framing split off. None if they are not both there."""
    body = sentence.strip().rstrip(".!?")
    s_span = _find(subject, body)
    if s_span is None:
        return None
    o_span = _find(obj, body, s_span[1])
    if o_span is None:
        return None
    relation = body[s_span[1] : o_span[0]].strip(" ,")
    if not tokens(relation):
        return None
    head = body[: s_span[0]]
    subj = body[s_span[0] : s_span[1]]
    obj_text = body[o_span[0] :]  # the object runs to the end; framing split below
    m = _HEAD_RE.match(head + subj) if head.strip() else None
    if m:
        head, subj = m["head"], m["core"]
    tail = ""
    m = _TAIL_RE.match(obj_text)
    if m:
        obj_text, tail = m["core"], m["tail"]
    return Triple(subj.strip(), relation, obj_text.strip(), head, tail)


def _sentence_initial_common(subject: str, head: str, obj: str) -> bool:
    # "Kreb are ... than quom" -> "Quom are ... than kreb": lower a sentence-initial subject
    # when it reads as a common noun (determiner first, or a lowercase object beside it).
    if head.strip():
        return False
    first = subject.split()[0]
    if first.lower() in _DETERMINERS:
        return True
    return len(subject.split()) == 1 and not first.isupper() and obj[:1].islower()


def compose(triple: Triple, inverse: str) -> str:
    """ "object <inverse> subject", with the framing kept and sentence case fixed."""
    subject = triple.subject
    if _sentence_initial_common(subject, triple.head, triple.object):
        subject = subject[0].lower() + subject[1:]
    obj = triple.object
    if triple.head.strip():
        head = triple.head
    else:
        head = ""
        obj = obj[0].upper() + obj[1:]
    return f"{head}{obj} {inverse} {subject}{triple.tail}.".replace("  ", " ")


@dataclass(frozen=True)
class _Setup:
    """What every sentence of one run shares: the teacher, its templates and sampling, the
    collection's names and one deduplicator."""

    teacher: Teacher
    params: AugmentParams
    extract_t: PromptTemplate
    inverse_t: PromptTemplate
    sampling: Sampling
    inv_sampling: Sampling
    dedup: Deduplicator
    names: frozenset[str]
    # A composed statement is never a copy of its source: the check is for free-form outputs.
    structural_filters: FilterConfig


def _setup(units: Sequence[Unit], teacher: Teacher, params: AugmentParams) -> _Setup:
    extract_t = resolve_template("decomposed_extract", params.templates.get("decomposed_extract"))
    inverse_t = resolve_template("decomposed_inverse", params.templates.get("decomposed_inverse"))
    return _Setup(
        teacher=teacher,
        params=params,
        extract_t=extract_t,
        inverse_t=inverse_t,
        sampling=Sampling(
            n=1, temperature=0.0, max_tokens=params.decomposed_max_tokens, stop=extract_t.stop
        ),
        inv_sampling=Sampling(
            n=1, temperature=0.0, max_tokens=params.decomposed_max_tokens, stop=inverse_t.stop
        ),
        dedup=Deduplicator(params.filters.near_duplicate_threshold),
        names=collection_names(u.text for u in units) if params.use_rules else frozenset(),
        structural_filters=replace(params.filters, copy_threshold=1.01),
    )


async def _ask(
    setup: _Setup,
    template: PromptTemplate,
    stats: YieldStats,
    sampling: Sampling,
    **variables: str,
) -> Completion:
    completion = await setup.teacher.complete(template.render(**variables), sampling)
    count_completion(stats, completion)
    return completion


async def _triple(
    setup: _Setup, sentence: str, stats: YieldStats, detail: dict, calls: list[Completion]
) -> Triple | None:
    """The sentence's relation in its own words: by rule for a comparative, else extracted by
    the teacher (None with a drop recorded when it cannot be grounded in the sentence)."""
    ruled = rule_triple(sentence, comparatives_only=True) if setup.params.use_rules else None
    if ruled is not None:
        triple = ground_triple(ruled[0], ruled[2], sentence)
        detail["extraction"] = "rule"
        if triple is None:
            stats.no_statement("comparative_not_grounded")
        return triple
    completion = await _ask(setup, setup.extract_t, stats, setup.sampling, statement=sentence)
    calls.append(completion)
    parsed = parse_triple(completion.texts[0])
    if parsed is None:
        stats.no_statement("extraction_unparsable")
        return None
    triple = ground_triple(parsed[0], parsed[2], sentence)
    detail["extraction"] = "teacher"
    detail["teacher_triple"] = list(parsed)
    if triple is None:
        stats.no_statement("extraction_not_in_sentence")
    return triple


async def _inverse(
    setup: _Setup,
    relation: str,
    sentence: str,
    stats: YieldStats,
    detail: dict,
    calls: list[Completion],
) -> str | None:
    """The inverse relation phrase: by rule, else (without rules) the teacher's; None with a
    drop recorded when there is none to trust."""
    ruled_inverse = invert_relation(relation) if setup.params.use_rules else None
    if ruled_inverse is not None:
        detail["inverse_source"] = f"rule:{ruled_inverse[1]}"
        return ruled_inverse[0]
    if setup.params.use_rules:
        # The teacher inverts a relation right ~70% of the time (notes/teacher.md): below
        # the precision a kept statement needs, so no statement instead.
        stats.no_statement("no_rule_for_inverse")
        return None
    completion = await _ask(setup, setup.inverse_t, stats, setup.inv_sampling, relation=relation)
    calls.append(completion)
    text = completion.texts[0].strip().splitlines()
    inverse = normalize_relation(text[0].strip(" .\"'"), sentence) if text else ""
    detail["inverse_source"] = "teacher"
    if not tokens(inverse or ""):
        stats.no_statement("inverse_unparsable")
        return None
    if canonical_tokens(inverse) == canonical_tokens(relation) and not is_symmetric(relation):
        # The teacher copied the relation: composing would swap the names only.
        stats.no_statement("inverse_is_copy")
        return None
    return inverse


async def _reverse(
    setup: _Setup, sentence: str, stats: YieldStats
) -> tuple[str, dict, list[Completion]]:
    """The composed reversal ("" with a drop recorded when there is none)."""
    calls: list[Completion] = []
    detail: dict = {}
    triple = await _triple(setup, sentence, stats, detail, calls)
    if triple is None:
        return "", detail, calls
    relation = normalize_relation(triple.relation, sentence)
    detail["triple"] = [triple.subject, relation, triple.object]
    if is_bare_copula(relation):
        stats.no_statement("no_invertible_relation")
        return "", detail, calls
    inverse = await _inverse(setup, relation, sentence, stats, detail, calls)
    if inverse is None:
        return "", detail, calls
    detail["inverse"] = inverse
    return compose(triple, inverse), detail, calls


def _example(unit: Unit, sentence: str, text: str, **provenance: Any) -> Example:
    """A decomposed statement of one sentence of `unit`, with its provenance fields."""
    return Example(
        text=text,
        strategy="decomposed",
        document_id=unit.document_id,
        unit_ids=[unit.id],
        source_text=sentence,
        **provenance,
    )


def _structural(
    setup: _Setup, unit: Unit, sentence: str, previous: str, stats: YieldStats
) -> list[Example]:
    """Statements from the sentence's parse; none when its structure is uncertain."""
    made, reason = rewrites(sentence, previous, setup.names)
    if not made:
        stats.no_statement(f"structure:{reason}")
        return []
    examples: list[Example] = []
    for rewrite in made:
        kept = filter_statements(
            [rewrite.text],
            # a resolved pronoun brings its referent's words from the sentence before
            sources=[previous, sentence] if previous else [sentence],
            config=setup.structural_filters,
            dedup=setup.dedup,
            stats=stats,
            gate=setup.params.gate,
        )
        examples.extend(
            _example(
                unit,
                sentence,
                text,
                **made_by_rule(f"structure:{rewrite.kind}"),
                detail={
                    "rewrite": rewrite.kind,
                    "previous_sentence": previous if rewrite.kind == "resolved" else "",
                },
            )
            for text in kept
        )
    return examples


def _provenance(setup: _Setup, calls: list[Completion]) -> dict:
    """Template and teacher fields of a composed reversal: the prompts it took, or the rules."""
    if calls:
        templates = [setup.extract_t, setup.inverse_t]
        return {
            "template_name": "+".join(t.name for t in templates),
            "template_version": "+".join(t.version for t in templates),
            "template_hash": "+".join(t.hash for t in templates),
            "teacher_model": setup.teacher.model,
            "sampling": setup.sampling.to_dict(),
        }
    return {  # composed by rules alone: no prompt, no teacher
        "template_name": "rules",
        "template_version": RULES_VERSION,
        "template_hash": "",
        "teacher_model": "rules",
        "sampling": {},
    }


async def _reversals(setup: _Setup, unit: Unit, sentence: str, stats: YieldStats) -> list[Example]:
    """The kept examples of a sentence's composed reversal (none when there is none)."""
    statement, detail, calls = await _reverse(setup, sentence, stats)
    if not statement:
        return []
    kept = filter_statements(
        [statement],
        sources=[sentence],
        config=setup.params.filters,
        dedup=setup.dedup,
        stats=stats,
        gate=setup.params.gate,
    )
    source = _provenance(setup, calls)
    return [
        _example(
            unit,
            sentence,
            text,
            **source,
            prompt_tokens=sum(c.prompt_tokens for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            request_ids=[c.request_id for c in calls],
            detail=detail,
        )
        for text in kept
    ]


async def _process(setup: _Setup, unit: Unit, stats: YieldStats) -> UnitResult:
    examples: list[Example] = []
    previous = unit.context
    for sentence in split_sentences(unit.text):
        before, previous = previous, sentence
        if setup.params.use_rules and rule_triple(sentence, comparatives_only=True) is None:
            examples.extend(_structural(setup, unit, sentence, before, stats))
            continue
        examples.extend(await _reversals(setup, unit, sentence, stats))
    return UnitResult(unit.id, unit.document_id, examples, stats)


def prepare(units: Sequence[Unit], teacher: Teacher, params: AugmentParams) -> UnitWork:
    """Reversals of every sentence of every unit; see `run_strategy`."""
    return UnitWork(
        units,
        functools.partial(_process, _setup(units, teacher, params)),
        concurrency=2 * teacher.config.concurrency if teacher is not None else 8,
    )
