"""What the `docadapt` commands share: logging, the service's settings and data folder, and the
options and error handling of the commands that talk to a running service."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from service.client import ServiceClient, ServiceError

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The service's data folder (default: DOCADAPT_DATA_DIR, else ./docadapt-data).",
        show_default=False,
    ),
]
UrlOption = Annotated[str, typer.Option(help="The running docadapt service.")]
KeyOption = Annotated[
    str, typer.Option(envvar="DOCADAPT_API_KEY", help="A workspace API key.", show_default=False)
]


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def settings(data_dir: Path | None) -> Any:
    """The service's settings as `serve` reads them, with `--data-dir` over DOCADAPT_DATA_DIR."""
    from service.core.config import Settings

    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


def service_data(data_dir: Path | None) -> Any:
    """The settings of the service whose data is in `--data-dir` (or where `serve` looks);
    exits with one sentence, creating nothing, when no service has data there."""
    found = settings(data_dir)
    where = found.data_dir
    has_db = found.database_url is not None or (where / "docadapt.db").is_file()
    if not where.is_dir() or not has_db:
        typer.echo(
            f"docadapt: no service data in {where}: run this where `docadapt serve` runs, or "
            "point --data-dir (or DOCADAPT_DATA_DIR) at the service's data folder.",
            err=True,
        )
        raise typer.Exit(2)
    return found


def call_service(url: str, api_key: str, request: Callable[[ServiceClient], Any]) -> Any:
    """`request(api)` against the service at `url`; a refusal or an unreachable service prints
    the reason and exits with status 2."""
    with ServiceClient.connect(url, api_key) as api:
        try:
            return request(api)
        except ServiceError as exc:
            typer.echo(exc.brief(), err=True)
            raise typer.Exit(2) from exc
