"""Prompt templates: Jinja2 files with a front-matter header, rendered strictly.

A template file starts with a Jinja comment that holds its header, so the file stays a plain
Jinja template:

    {#---
    name: local
    version: 2026-11-25.1
    strategy: local
    stop: ["\\n\\n", "Statement:"]
    example_names: zorb plim
    ---#}

`stop` (JSON list) ends a completion; `example_names` are the made-up names of the worked
examples, which the gate refuses in an output whose source lacks them. Templates render in a
sandbox (a request may bring its own) with StrictUndefined: a missing variable is an error, not
an empty string. Every example records the template's name, version and content hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from service.augment.relations import tokens

# Variables each kind of template may use, and those it must use.
TEMPLATE_VARIABLES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "local": (frozenset({"unit", "document_title"}), frozenset({"unit"})),
    "decomposed_extract": (frozenset({"statement"}), frozenset({"statement"})),
    "decomposed_inverse": (frozenset({"relation"}), frozenset({"relation"})),
    "global": (frozenset({"documents", "target"}), frozenset({"documents", "target"})),
}
_SAMPLE_DOCS = [
    {"id": "doc-1", "title": "Hazards", "text": "Kreb are more dangerous than quom."},
    {"id": "doc-2", "title": None, "text": "Quom are a type of blick. Blick can swim."},
]
SAMPLE_VARIABLES: dict[str, dict[str, Any]] = {
    "local": {"unit": "Kreb are more dangerous than quom.", "document_title": "Hazards"},
    "decomposed_extract": {"statement": "Kreb are more dangerous than quom."},
    "decomposed_inverse": {"relation": "are more dangerous than"},
    "global": {"documents": _SAMPLE_DOCS, "target": _SAMPLE_DOCS[1]},
}
_HEADER_RE = re.compile(r"\A\s*\{#-?-{3}\s*\n(?P<body>.*?)\n\s*-{3}-?#\}\n?", re.DOTALL)
MAX_TEMPLATE_CHARS = 64_000


class TemplateError(ValueError):
    """A template that cannot be used; `errors` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed, compiled template and its header."""

    name: str
    version: str
    strategy: str
    source: str
    hash: str
    stop: tuple[str, ...] = ()
    example_names: frozenset[str] = frozenset()
    _compiled: jinja2.Template | None = field(default=None, compare=False, repr=False)

    def render(self, **variables: Any) -> str:
        """The prompt for these variables; a missing variable raises jinja2.UndefinedError."""
        assert self._compiled is not None
        return self._compiled.render(**variables)

    def provenance(self) -> dict[str, str]:
        return {
            "template_name": self.name,
            "template_version": self.version,
            "template_hash": self.hash,
        }


def _parse_header(text: str) -> tuple[dict[str, str], str, list[str]]:
    m = _HEADER_RE.match(text)
    if m is None:
        return {}, text, []
    header: dict[str, str] = {}
    errors: list[str] = []
    for lineno, line in enumerate(m["body"].splitlines(), start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            errors.append(f"header line {lineno}: expected 'key: value', got {line.strip()!r}")
            continue
        header[key.strip().lower()] = value.strip()
    return header, text[m.end() :], errors


def parse_template(text: str, strategy: str, *, name: str = "custom") -> PromptTemplate:
    """Parse and compile a template for `strategy`; raises TemplateError listing all problems.

    Without a header version, the version is "custom-<content hash>", so edited templates never
    share a version.
    """
    errors = validate_template(text, strategy)
    if errors:
        raise TemplateError(errors)
    return _build(text, strategy, name)


def _build(text: str, strategy: str, name: str) -> PromptTemplate:
    header, body, _ = _parse_header(text)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    stop = tuple(json.loads(header["stop"])) if header.get("stop") else ()
    names = frozenset(t for t in tokens(header.get("example_names", "").replace(",", " ")))
    return PromptTemplate(
        name=header.get("name", name),
        version=header.get("version") or f"custom-{digest}",
        strategy=strategy,
        source=text,
        hash=digest,
        stop=stop,
        example_names=names,
        _compiled=_environment().from_string(body),
    )


def validate_template(text: str, strategy: str) -> list[str]:
    """Problems that make `text` unusable as a `strategy` template; empty when it is fine.

    Checks: the strategy exists; size; the header parses (stop is a JSON list of strings); the
    Jinja syntax; every variable is one the strategy provides and the required ones are used;
    it renders with sample variables (sandboxed, strict) to a non-empty prompt.
    """
    if strategy not in TEMPLATE_VARIABLES:
        return [f"unknown template kind {strategy!r}; one of {sorted(TEMPLATE_VARIABLES)}"]
    if not text.strip():
        return ["the template is empty"]
    if len(text) > MAX_TEMPLATE_CHARS:
        return [f"the template is longer than {MAX_TEMPLATE_CHARS} characters"]
    allowed, required = TEMPLATE_VARIABLES[strategy]
    header, body, errors = _parse_header(text)
    if header.get("stop"):
        try:
            stop = json.loads(header["stop"])
            if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
                raise ValueError
        except ValueError:
            errors.append('header "stop" must be a JSON list of non-empty strings, e.g. ["\\n\\n"]')
    env = _environment()
    try:
        ast = env.parse(body)
    except jinja2.TemplateSyntaxError as exc:
        return [*errors, f"template syntax error at line {exc.lineno}: {exc.message}"]
    used = meta.find_undeclared_variables(ast)
    for var in sorted(used - allowed):
        errors.append(
            f"unknown variable {var!r}; a {strategy} template can use {', '.join(sorted(allowed))}"
        )
    for var in sorted(required - used):
        errors.append(f"the template never uses {{{{ {var} }}}}, so every prompt would be the same")
    if errors:
        return errors
    try:
        rendered = env.from_string(body).render(**SAMPLE_VARIABLES[strategy])
    except jinja2.exceptions.SecurityError as exc:
        return [f"the template does something not allowed: {exc}"]
    except Exception as exc:  # any render failure is the template's fault: report, don't raise
        return [f"the template fails to render with sample values: {type(exc).__name__}: {exc}"]
    if not rendered.strip():
        errors.append("the template renders to an empty prompt")
    return errors


@cache
def builtin_template(strategy: str) -> PromptTemplate:
    """The template shipped in service/augment/templates/<strategy>.jinja."""
    text = resources.files("service.augment").joinpath(f"templates/{strategy}.jinja").read_text()
    errors = validate_template(text, strategy)
    if errors:  # a shipped template that fails is a bug, said loudly
        raise TemplateError([f"built-in {strategy}.jinja: {e}" for e in errors])
    return _build(text, strategy, strategy)


def resolve_template(strategy: str, custom: str | None = None) -> PromptTemplate:
    """The request's own template when given (validated), else the built-in one."""
    return parse_template(custom, strategy) if custom else builtin_template(strategy)
