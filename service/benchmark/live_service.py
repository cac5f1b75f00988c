"""What every benchmark run against a live service shares: its error, a workspace of its own
(made with the admin key, the local service's unless given), and a job's wall time."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from service.client import ServiceClient


class BenchError(RuntimeError):
    """The run cannot go on; the message says why. (A request the service refuses raises
    `service.client.ServiceError`.)"""


def read_admin_key(settings: Any) -> str | None:
    """The admin key a local `docadapt serve` uses: DOCADAPT_ADMIN_KEY, else the key file it
    generated in its data folder; None when neither exists."""
    if settings.admin_key is not None:
        return str(settings.admin_key.get_secret_value())
    path = Path(settings.data_dir) / "admin_key"
    return path.read_text().strip() if path.exists() else None


def run_workspace_key(api: ServiceClient, admin_key: str | None, prefix: str) -> str:
    """The API key of a new workspace `<prefix>-<random>` for one benchmark run, made with
    `admin_key` or else the local service's (DOCADAPT_ADMIN_KEY or its key file)."""
    if admin_key is None:
        from service.core.config import Settings

        admin_key = read_admin_key(Settings())
    if admin_key is None:
        raise BenchError("give --api-key, or --admin-key to create a workspace for the run")
    return api.create_workspace(admin_key, f"{prefix}-{uuid.uuid4().hex[:6]}")[1]


def job_seconds(job: dict[str, Any]) -> float:
    """Wall time of a finished job from its start and end stamps (0 when it never started)."""
    try:
        start = datetime.fromisoformat(job["started_at"])
        end = datetime.fromisoformat(job["finished_at"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    return max(0.0, (end - start).total_seconds())
