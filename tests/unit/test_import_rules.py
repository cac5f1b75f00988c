"""The import rules of pyproject.toml's [tool.importlinter] hold: the model side (adapters/)
imports neither the service nor FastAPI/Starlette."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.is_file(), "lint-imports is missing: install the dev extra (.[dev])"
    # --no-cache: the check writes nothing into the working tree.
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
