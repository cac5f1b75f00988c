"""PII redaction at the teacher boundary: personal data out of every prompt, back into every answer.

    redactor = PiiRedactor(template_texts=[...])
    redactor.redact("Mail Priya Raman at priya@acme.com")  # "Mail <PERSON_1> at <EMAIL_1>"
    redactor.restore("<PERSON_1> reads <EMAIL_1>")  # "Priya Raman reads priya@acme.com"

Detection is Microsoft Presidio's analyzer: e-mail addresses, phone numbers (python-phonenumbers,
+44 and US formats among others), IBANs (checksum validated), card numbers (Luhn validated: a
number that fails the check is left alone), bank account numbers (8 to 17 digits next to a word
like "account") and, where spaCy's English model is installed, PERSON names from its NER. The
model is the one `structure.nlp()` loads; nothing is downloaded at run time (Presidio's default
engine would fetch en_core_web_lg, and its e-mail check would fetch the public suffix list).

One redactor serves one augmentation: the same value gets the same placeholder in every prompt,
so an answer that mentions `<PERSON_1>` maps back to its person. Once a value is known, every later
occurrence is replaced even where the detector misses it in another sentence, and so is each part
of a known name standing alone ("Priya" after "Priya Raman", with its own placeholder). Values
found in the prompt templates themselves (their made-up names) are not the documents' data: kept.
A placeholder in an answer that maps to nothing stays in the text, and `filter_statements`
(postprocess.py) drops the statement, counted as `unrestorable_placeholder`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.augment.teacher import _api_root

log = logging.getLogger(__name__)

RedactPolicy = Literal["external", "always", "never"]

# Presidio's entity names -> the label in a placeholder (and in the report).
LABELS = {
    "PERSON": "PERSON",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "CARD",
    "BANK_ACCOUNT": "ACCOUNT",
}
# Phone numbers score 0.4 without context; an account number gets there only with a context word
# ("account", "acct" ...) in the five tokens before it (Presidio's context enhancer).
SCORE_THRESHOLD = 0.4
ACCOUNT_CONTEXT = ["account", "acct", "a/c", "bank", "checking", "savings", "deposit", "debit"]

_LABEL_ALT = "|".join(sorted(set(LABELS.values())))
# "<PERSON_1>" as written, and what a teacher makes of it: "<PERSON 1>", "< PERSON_1 >", "PERSON_1".
PLACEHOLDER_RE = re.compile(rf"<\s*({_LABEL_ALT})[_ ](\d+)\s*>|\b({_LABEL_ALT})_(\d+)\b")
UNRESTORABLE = "unrestorable_placeholder"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str
    score: float


@dataclass
class Redacted:
    """One value taken out of the prompts: its label, placeholder and how often it was replaced."""

    label: str
    placeholder: str
    value: str
    replaced: int = 0


def redaction_policy(
    setting: RedactPolicy, requested: bool | None, teacher_base_url: str, own_vllm_url: str | None
) -> tuple[bool, dict[str, Any]]:
    """Whether a job redacts, and the report's first fields (why). `requested` is the request's
    `redact_pii` (None: the operator's `setting`); the teacher is "embedded" when it is this
    service's own vLLM, which never leaves the deployment."""
    embedded = own_vllm_url is not None and _api_root(teacher_base_url) == _api_root(own_vllm_url)
    if requested is not None:
        enabled, decided_by = requested, "request"
    else:
        enabled = setting == "always" or (setting == "external" and not embedded)
        decided_by = f"setting:{setting}"
    return enabled, {
        "enabled": enabled,
        "decided_by": decided_by,
        "teacher": "embedded" if embedded else "external",
    }


@functools.lru_cache(maxsize=1)
def analyzer() -> tuple[Any, bool]:
    """Presidio's AnalyzerEngine on the project's spaCy pipeline, built once per process, and
    whether it detects names (False when the spaCy model is missing: patterns only)."""
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UsBankRecognizer,
    )

    from service.augment.structure import MODEL, nlp

    try:
        pipeline, names = nlp(), True
    except RuntimeError:
        log.warning("PII redaction: spaCy model %s is missing; names are not detected", MODEL)
        pipeline, names = spacy.blank("en"), False

    ner_labels = pipeline.get_pipe("ner").labels if "ner" in pipeline.pipe_names else ()

    class LoadedSpacyEngine(SpacyNlpEngine):
        """Presidio's spaCy engine on a pipeline that is already loaded (never downloads)."""

        def __init__(self) -> None:
            super().__init__(
                models=[{"lang_code": "en", "model_name": MODEL}],
                ner_model_configuration=NerModelConfiguration(
                    model_to_presidio_entity_mapping={"PERSON": "PERSON"},
                    labels_to_ignore=[label for label in ner_labels if label != "PERSON"],
                ),
            )
            self.nlp = {"en": pipeline}

        def load(self) -> None:
            pass  # the pipeline is already loaded: Presidio's own load would download one

        def process_text(self, text: str, language: str) -> Any:
            # The dependency parse feeds nothing Presidio reads (NER, lemmas); skip its time.
            doc = self.nlp[language](text, disable=["parser"])
            return self._doc_to_nlp_artifact(doc, language)

    offline_tld = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer, checking the domain against tldextract's bundled public
        suffix list instead of fetching the current one."""

        def validate_result(self, pattern_text: str) -> bool:
            return offline_tld(pattern_text).fqdn != ""

    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        OfflineEmailRecognizer(),
        PhoneRecognizer(),
        IbanRecognizer(),
        CreditCardRecognizer(),
        UsBankRecognizer(supported_entity="BANK_ACCOUNT", context=ACCOUNT_CONTEXT),
        *([SpacyRecognizer(supported_entities=["PERSON"])] if names else []),
    ):
        registry.add_recognizer(recognizer)
    engine = AnalyzerEngine(
        registry=registry, nlp_engine=LoadedSpacyEngine(), supported_languages=["en"]
    )
    return engine, names


def _word_pattern(value: str) -> str:
    # Word boundaries where the value starts or ends with a word character, so "Ann" is not
    # replaced inside "Annual".
    head = r"\b" if re.match(r"\w", value) else ""
    tail = r"\b" if re.search(r"\w$", value) else ""
    return f"{head}{re.escape(value)}{tail}"


class PiiRedactor:
    """Placeholders for one augmentation's personal data; see the module docstring."""

    def __init__(
        self,
        template_texts: Iterable[str] = (),
        previous: dict[str, Any] | None = None,
    ) -> None:
        """`template_texts`: the prompt templates in use (their values are not redacted);
        `previous`: an earlier `report()` of this augmentation (a resumed job keeps its
        placeholders and counts)."""
        self._engine, self.names_detected = analyzer()
        self._templates = "\n".join(template_texts)
        self._by_value: dict[tuple[str, str], Redacted] = {}
        self._by_placeholder: dict[str, Redacted] = {}
        self._next: Counter[str] = Counter()
        self._line_cache: dict[str, list[Span]] = {}
        self._known_re: re.Pattern[str] | None = None
        self._name_parts: set[str] = set()  # "Priya" and "Raman" of "Priya Raman"
        self.prompts = 0
        self.prompts_redacted = 0
        self.outputs_restored = 0
        self._version = 0
        self._saved = -1
        for item in (previous or {}).get("redacted", []):
            self._add(Redacted(item["type"], item["placeholder"], item["value"], item["replaced"]))
        for key in ("prompts", "prompts_redacted", "outputs_restored"):
            setattr(self, key, int((previous or {}).get(key, 0)))

    # -- prompts ----------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """`text` with every detected or already known value replaced by its placeholder."""
        self.prompts += 1
        self._version += 1
        detected = self._detected(text)
        for span in detected:
            if span.label == "PERSON":
                self._learn_name_parts(text[span.start : span.end])
        spans = self._choose([*detected, *self._known(text)])
        if not spans:
            return text
        self.prompts_redacted += 1
        out: list[str] = []
        last = 0
        for span in spans:
            item = self._placeholder(span.label, text[span.start : span.end])
            item.replaced += 1
            out += [text[last : span.start], item.placeholder]
            last = span.end
        out.append(text[last:])
        return "".join(out)

    def _detected(self, text: str) -> list[Span]:
        spans: list[Span] = []
        offset = 0
        # Line by line, cached: a template's lines and a corpus that every global prompt repeats
        # are analyzed once per augmentation.
        for line in text.split("\n"):
            if line.strip():
                if line not in self._line_cache:
                    self._line_cache[line] = self._analyze(line)
                spans += [
                    Span(s.start + offset, s.end + offset, s.label, s.score)
                    for s in self._line_cache[line]
                ]
            offset += len(line) + 1
        return spans

    def _analyze(self, line: str) -> list[Span]:
        results = self._engine.analyze(
            text=line,
            language="en",
            entities=list(LABELS),
            score_threshold=SCORE_THRESHOLD,
        )
        spans = []
        for r in results:
            value = line[r.start : r.end].strip()
            if not value or PLACEHOLDER_RE.fullmatch(value):
                continue
            if re.search(_word_pattern(value), self._templates):
                continue  # the templates' own made-up names, not the documents' data
            start = r.start + (len(line[r.start : r.end]) - len(line[r.start : r.end].lstrip()))
            spans.append(Span(start, start + len(value), LABELS[r.entity_type], r.score))
        return spans

    def _known(self, text: str) -> list[Span]:
        labels = dict.fromkeys(self._name_parts, "PERSON")
        labels |= {value: label for label, value in self._by_value}
        if not labels:
            return []
        if self._known_re is None:
            values = sorted(labels, key=len, reverse=True)
            self._known_re = re.compile("|".join(_word_pattern(v) for v in values))
        return [
            Span(m.start(), m.end(), labels[m.group()], 1.0) for m in self._known_re.finditer(text)
        ]

    @staticmethod
    def _choose(spans: Sequence[Span]) -> list[Span]:
        """Non-overlapping spans in text order; where two overlap, the longer wins ("Priya
        Raman" over its part "Priya"), then the higher score."""
        chosen: list[Span] = []
        for span in sorted(spans, key=lambda s: (-(s.end - s.start), -s.score, s.start)):
            if all(span.end <= c.start or span.start >= c.end for c in chosen):
                chosen.append(span)
        return sorted(chosen, key=lambda s: s.start)

    def _placeholder(self, label: str, value: str) -> Redacted:
        item = self._by_value.get((label, value))
        if item is None:
            self._next[label] += 1
            item = Redacted(label, f"<{label}_{self._next[label]}>", value)
            self._add(item)
        return item

    def _add(self, item: Redacted) -> None:
        self._by_value[(item.label, item.value)] = item
        self._by_placeholder[item.placeholder] = item
        self._next[item.label] = max(self._next[item.label], _number(item.placeholder))
        self._known_re = None
        if item.label == "PERSON":
            self._learn_name_parts(item.value)

    def _learn_name_parts(self, name: str) -> None:
        """Make each capitalized part of a name ("Priya", "Raman") a known value of its own."""
        for part in re.findall(r"[A-Z][\w'-]+", name):
            if part == name or part in self._name_parts:
                continue
            if not re.search(_word_pattern(part), self._templates):
                self._name_parts.add(part)
                self._known_re = None

    # -- answers ----------------------------------------------------------------------------

    def restore(self, text: str) -> str:
        """`text` with every placeholder this redactor gave out replaced by its value; a
        placeholder it never gave out stays (see `has_placeholder`)."""

        def original(m: re.Match[str]) -> str:
            label, number = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            item = self._by_placeholder.get(f"<{label}_{int(number)}>")
            if item is None:
                return m.group()
            mapped.append(item)
            return item.value

        mapped: list[Redacted] = []
        restored = PLACEHOLDER_RE.sub(original, text)
        if mapped:
            self.outputs_restored += 1
            self._version += 1
        return restored

    # -- the report -------------------------------------------------------------------------

    @property
    def changed(self) -> bool:
        """Whether the report changed since `mark_saved()`."""
        return self._version != self._saved

    def mark_saved(self) -> None:
        self._saved = self._version

    def report(self) -> dict[str, Any]:
        """Counts per type (distinct values), what was redacted (type, placeholder, the original
        value, times replaced in prompts), and prompt and answer counts. It holds the workspace's
        own data: show it to that workspace, never log it."""
        items = sorted(
            self._by_value.values(),
            key=lambda i: (i.label, _number(i.placeholder)),
        )
        return {
            "names_detected": self.names_detected,
            "counts": dict(sorted(Counter(i.label for i in items).items())),
            "redacted": [
                {
                    "type": i.label,
                    "placeholder": i.placeholder,
                    "value": i.value,
                    "replaced": i.replaced,
                }
                for i in items
            ],
            "prompts": self.prompts,
            "prompts_redacted": self.prompts_redacted,
            "outputs_restored": self.outputs_restored,
        }


def _number(placeholder: str) -> int:
    return int(placeholder.rstrip(">").rsplit("_", 1)[1])
