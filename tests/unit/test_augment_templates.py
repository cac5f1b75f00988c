"""Prompt templates: strict rendering, versions, and validation of user-supplied templates."""

from __future__ import annotations

import jinja2
import pytest

from service.augment.params import AugmentParams
from service.augment.prompts import (
    SAMPLE_VARIABLES,
    TEMPLATE_VARIABLES,
    TemplateError,
    builtin_template,
    parse_template,
    resolve_template,
    validate_template,
)


@pytest.mark.parametrize("kind", sorted(TEMPLATE_VARIABLES))
def test_builtin_templates_are_valid_and_versioned(kind: str) -> None:
    template = builtin_template(kind)
    assert template.name == kind and template.version.startswith("20")
    assert len(template.hash) == 12 and template.stop
    prompt = template.render(**SAMPLE_VARIABLES[kind])
    assert "{{" not in prompt and "---" not in prompt.split("\n", 1)[0]


def test_missing_variable_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(jinja2.UndefinedError):
        builtin_template("local").render(document_title="x")


def test_global_prompt_puts_the_corpus_first_and_the_target_last() -> None:
    docs = SAMPLE_VARIABLES["global"]["documents"]
    prompt = builtin_template("global").render(documents=docs, target=docs[0])
    last_doc = prompt.rindex(docs[1]["text"])
    assert prompt.rindex(docs[0]["text"]) > last_doc  # the target comes after the corpus
    assert prompt.rstrip().endswith("-")


def test_custom_template_without_header_gets_a_content_version() -> None:
    text = "Rephrase: {{ unit }}\n-"
    one = parse_template(text, "local")
    two = parse_template(text + " ", "local")
    assert one.version.startswith("custom-") and one.version != two.version
    assert one.render(unit="Kreb bite.") == "Rephrase: Kreb bite.\n-"


def test_custom_template_header_is_read() -> None:
    text = (
        '{#---\nname: mine\nversion: 3\nstop: ["\\n\\n"]\nexample_names: zork\n---#}\n'
        "Say more: {{ unit }}"
    )
    t = parse_template(text, "local")
    assert (t.name, t.version, t.stop, t.example_names) == (
        "mine",
        "3",
        ("\n\n",),
        frozenset({"zork"}),
    )
    assert t.render(unit="A.") == "Say more: A."


@pytest.mark.parametrize(
    "text, kind, message",
    [
        ("Rephrase: {{ unti }}", "local", "unknown variable 'unti'"),
        ("Rephrase this.", "local", "never uses {{ unit }}"),
        ("{{ documents }} only", "global", "never uses {{ target }}"),
        ("{% for d in documents %}{{ d.text }}", "global", "syntax error"),
        ("{{ unit.__class__.__mro__ }}", "local", "not allowed"),
        ("{{ unit }}", "summaries", "unknown template kind"),
        ('{#---\nstop: "\\n"\n---#}\n{{ unit }}', "local", "JSON list"),
        ("   ", "local", "empty"),
        ("{{ target.missing_field }} {{ documents }}", "global", "fails to render"),
    ],
)
def test_validation_errors(text: str, kind: str, message: str) -> None:
    errors = validate_template(text, kind)
    assert errors and any(message in e for e in errors), errors
    with pytest.raises(TemplateError):
        parse_template(text, kind)


def test_params_validate_templates_and_sampling_before_a_job_starts() -> None:
    assert AugmentParams().validate() == []
    errors = AugmentParams(
        outputs_per_unit=4, temperature=0.0, templates={"local": "{{ nothing }}"}
    ).validate()
    assert any("temperature > 0" in e for e in errors)
    assert any(e.startswith("template local:") for e in errors)


def test_resolve_template_uses_the_request_template_when_given() -> None:
    assert resolve_template("local").name == "local"
    assert resolve_template("local", "Mine: {{ unit }}").version.startswith("custom-")
