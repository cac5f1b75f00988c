"""The report as one self-contained HTML page (report.html.jinja, rendered in strict mode)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from service.report.plot import PNG_SIGNATURE
from service.report.summary import curve_lines, summary_lines
from service.report.tables import SECTIONS, tables

# The page template lives next to this module (packaged as data), rendered in strict mode.
_TEMPLATE_FILE = Path(__file__).with_name("report.html.jinja")

_ENV = Environment(autoescape=True, undefined=StrictUndefined)
_TEMPLATE = _ENV.from_string(_TEMPLATE_FILE.read_text(encoding="utf-8"))


def render_html(report: Mapping[str, Any], png_bytes: bytes) -> str:
    """A self-contained HTML page: every section, inline CSS, the plot as a base64 data URI."""
    if not png_bytes.startswith(PNG_SIGNATURE):
        raise ValueError("png_bytes is not a PNG image")
    return _TEMPLATE.render(
        title=report["meta"].get("title", "Evaluation report"),
        sections=list(SECTIONS.items()),
        summary=summary_lines(report),
        notes=report["notes"],
        tables=tables(report),
        curve_lines=curve_lines(report),
        png_b64=base64.b64encode(png_bytes).decode("ascii"),
    )
