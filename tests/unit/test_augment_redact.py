"""PII redaction before text goes to a teacher (service/augment/redact.py): Presidio on the
project's spaCy model finds the personal data in realistic prose, placeholders are stable within
one augmentation, answers map back, and a placeholder nothing maps back is dropped."""

from __future__ import annotations

import pytest

from service.augment.filters.postprocess import Deduplicator, FilterConfig, filter_statements
from service.augment.prompts import TEMPLATE_VARIABLES, resolve_template
from service.augment.redact import PiiRedactor, redaction_policy
from service.augment.types import YieldStats

MEMO = (
    "Please send the signed contract to Priya Raman at priya.raman@northwind-legal.co.uk or "
    "call her on +44 20 7946 0958 before Friday. Our US desk is reached at (415) 555-0132, "
    "where Daniel Okafor answers it. Refunds are paid to IBAN GB82 WEST 1234 5698 7654 32, "
    "travel is booked on the company card 4111 1111 1111 1111, and payroll goes to account "
    "number 12345678 at Barclays."
)
PII = {
    "Priya Raman": "PERSON",
    "Daniel Okafor": "PERSON",
    "priya.raman@northwind-legal.co.uk": "EMAIL",
    "+44 20 7946 0958": "PHONE",
    "(415) 555-0132": "PHONE",
    "GB82 WEST 1234 5698 7654 32": "IBAN",
    "4111 1111 1111 1111": "CARD",
    "12345678": "ACCOUNT",
}


@pytest.fixture(scope="module")
def templates() -> list[str]:
    return [resolve_template(kind).source for kind in TEMPLATE_VARIABLES]


def test_realistic_prose_loses_every_kind_of_personal_data(templates: list[str]) -> None:
    redactor = PiiRedactor(templates)
    redacted = redactor.redact(MEMO)
    for value in PII:
        assert value not in redacted, value
    assert "Priya" not in redacted and "Okafor" not in redacted
    report = redactor.report()
    found = {item["value"]: item["type"] for item in report["redacted"]}
    assert found == PII
    assert report["counts"] == {
        "ACCOUNT": 1,
        "CARD": 1,
        "EMAIL": 1,
        "IBAN": 1,
        "PERSON": 2,
        "PHONE": 2,
    }
    for item in report["redacted"]:
        assert redacted.count(item["placeholder"]) == item["replaced"] == 1
    # What is not personal data reads as before.
    assert redacted.startswith("Please send the signed contract to <PERSON_1> at <EMAIL_1> or ")
    assert "before Friday." in redacted and "at Barclays." in redacted
    assert (report["prompts"], report["prompts_redacted"], report["names_detected"]) == (1, 1, True)


def test_numbers_that_are_not_personal_data_stay(templates: list[str]) -> None:
    redactor = PiiRedactor(templates)
    text = (
        "The invoice reference 4111 1111 1111 1112 is no card number. The warehouse shipped "
        "87654321 units in 2024; the audit on 2024-05-01 moved to 12/05/2024 at 10:30, and the "
        "budget is 40000 dollars."
    )
    assert redactor.redact(text) == text
    assert redactor.report()["redacted"] == []
    # The same digits next to a word like "account" are an account number.
    assert redactor.redact("Pay it into account 87654321.") == "Pay it into account <ACCOUNT_1>."


def test_one_value_one_placeholder_and_answers_map_back(templates: list[str]) -> None:
    redactor = PiiRedactor(templates)
    first = redactor.redact("Marcus Webb reports to Priya Raman.")
    assert first == "<PERSON_1> reports to <PERSON_2>."
    # Known values are replaced wherever they recur, a name's parts too (each its own).
    second = redactor.redact("Priya Raman approved it. Priya mailed Marcus Webb.")
    assert second == "<PERSON_2> approved it. <PERSON_3> mailed <PERSON_1>."
    assert redactor.restore("- <PERSON_2> manages <PERSON_1>.") == (
        "- Priya Raman manages Marcus Webb."
    )
    # What a teacher makes of a placeholder still maps back; one it made up stays.
    assert redactor.restore("<PERSON 2>, PERSON_1 and < PERSON_3 > met <PERSON_9>.") == (
        "Priya Raman, Marcus Webb and Priya met <PERSON_9>."
    )
    assert redactor.report()["outputs_restored"] == 2


def test_the_templates_own_names_are_not_redacted(templates: list[str]) -> None:
    redactor = PiiRedactor(templates)
    prompt = resolve_template("local").render(
        unit="Daniel Okafor is the parent company's auditor.", document_title="audit.txt"
    )
    redacted = redactor.redact(prompt)
    assert "Statement: Harlin is the parent company of Widgetco." in redacted
    assert "Statement: <PERSON_1> is the parent company's auditor." in redacted
    assert [i["value"] for i in redactor.report()["redacted"]] == ["Daniel Okafor"]


def test_a_resumed_job_keeps_its_placeholders(templates: list[str]) -> None:
    before = PiiRedactor(templates)
    before.redact("Daniel Okafor wrote to dan@okafor.example.com.")
    after = PiiRedactor(templates, previous=before.report())
    assert (
        after.redact("Aisha Bello and Daniel Okafor signed.") == "<PERSON_2> and <PERSON_1> signed."
    )
    assert after.restore("<EMAIL_1> belongs to <PERSON_1>.") == (
        "dan@okafor.example.com belongs to Daniel Okafor."
    )
    report = after.report()
    assert report["prompts"] == 2
    assert {i["placeholder"]: i["replaced"] for i in report["redacted"]} == {
        "<EMAIL_1>": 1,
        "<PERSON_1>": 2,
        "<PERSON_2>": 1,
    }


def test_a_statement_with_a_placeholder_nothing_maps_back_is_dropped() -> None:
    stats = YieldStats()
    kept = filter_statements(
        [
            "The Leeds office is managed by Priya Raman.",
            "The Leeds office is managed by <PERSON_7>.",
        ],
        sources=["Priya Raman manages the Leeds office."],
        config=FilterConfig(),
        dedup=Deduplicator(0.9),
        stats=stats,
    )
    assert kept == ["The Leeds office is managed by Priya Raman."]
    assert stats.dropped == {"unrestorable_placeholder": 1}
    # Placeholder-shaped text that the document itself holds is the document's own.
    stats = YieldStats()
    kept = filter_statements(
        ["The Leeds office is managed by <PERSON_7>."],
        sources=["<PERSON_7> manages the Leeds office."],
        config=FilterConfig(),
        dedup=Deduplicator(0.9),
        stats=stats,
    )
    assert kept == ["The Leeds office is managed by <PERSON_7>."] and not stats.dropped


@pytest.mark.parametrize(
    ("setting", "requested", "teacher", "enabled", "decided_by", "kind"),
    [
        ("external", None, "http://127.0.0.1:8900", False, "setting:external", "embedded"),
        ("external", None, "https://api.example.com/v1", True, "setting:external", "external"),
        ("always", None, "http://127.0.0.1:8900/v1", True, "setting:always", "embedded"),
        ("never", None, "https://api.example.com/v1", False, "setting:never", "external"),
        ("external", False, "https://api.example.com/v1", False, "request", "external"),
        ("never", True, "http://127.0.0.1:8900/v1", True, "request", "embedded"),
    ],
)
def test_the_policy_redacts_for_external_teachers_by_default(
    setting: str, requested: bool | None, teacher: str, enabled: bool, decided_by: str, kind: str
) -> None:
    on, decision = redaction_policy(setting, requested, teacher, "http://127.0.0.1:8900/v1")  # type: ignore[arg-type]
    assert on is enabled
    assert decision == {"enabled": enabled, "decided_by": decided_by, "teacher": kind}


def test_without_a_service_vllm_every_teacher_is_external() -> None:
    on, decision = redaction_policy("external", None, "http://127.0.0.1:8900/v1", None)
    assert on and decision["teacher"] == "external"
