"""One style for every `docadapt perf X --help`: the command's name as the program, the module's
whole docstring as the description, every option with its help and its default.

Option names mean one thing across all commands: `--url` and `--api-key` are the docadapt
service and a workspace key; `--vllm-url` / `--vllm-api-key` a vLLM server; `--teacher-url`,
`--teacher-model` and `--teacher-api-key` an augmentation teacher."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the docstring's paragraphs; adds an option's default to its help unless the help
    already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        return f"{text} (default: {shown})"


def perf_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of `docadapt perf <name>`, described by the module docstring `doc`."""
    return argparse.ArgumentParser(
        prog=f"docadapt perf {name}",
        description=(doc or "").strip(),
        formatter_class=_Formatter,
    )


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """`--url`, `--api-key` and `--admin-key`: the docadapt service a command drives, and the
    workspace it runs in (a new one, made with the admin key, unless a key is given)."""
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running service")
    parser.add_argument("--api-key", help="a workspace API key: run in its workspace")
    parser.add_argument(
        "--admin-key", help="create a workspace for the run (default: the local service's)"
    )


def print_figures(figures: dict[str, Any], json_path: Path | None) -> None:
    """The figures as indented JSON on stdout, and in `json_path` too when given."""
    text = json.dumps(figures, indent=2)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")
