"""One style for every `docadapt perf X --help`: the command's name as the program, the module's
whole docstring as the description, every option with its help and its default.

Option names mean one thing across all commands: `--url` and `--api-key` are the docadapt
service and a workspace key; `--vllm-url` / `--vllm-api-key` a vLLM server; `--teacher-url`,
`--teacher-model` and `--teacher-api-key` an augmentation teacher."""

from __future__ import annotations

import argparse


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
