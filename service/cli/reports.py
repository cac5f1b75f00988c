"""`docadapt report`: an evaluation's report, from the running service or its data folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli.common import DataDirOption, call_service, service_data


def report(
    evaluation_id: Annotated[str, typer.Argument(help="The evaluation's id (ev_...).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="md (default), json or html.")
    ] = "md",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    url: Annotated[str, typer.Option(help="The running docadapt service.")] = (
        "http://127.0.0.1:8000"
    ),
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="DOCADAPT_API_KEY",
            help="A workspace API key: read the report from the service at --url. Without "
            "one, read it from the service's data folder (--data-dir).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print an evaluation's report: from the running service (with an API key), else from
    the service's data folder on this machine."""
    if format not in ("md", "json", "html"):
        raise typer.BadParameter("use md, json or html", param_hint="--format")
    if api_key is not None:
        path = f"/v1/evaluations/{evaluation_id}/report"
        body = call_service(url, api_key, lambda api: api.content(path, {"format": format}))
    else:
        body = _local_report(service_data(data_dir), evaluation_id, format)
    if out is None:
        typer.echo(body.decode(), nl=not body.endswith(b"\n"))
    else:
        out.write_bytes(body)
        typer.echo(f"wrote {out}", err=True)


def _local_report(settings: Any, evaluation_id: str, format: str) -> bytes:
    from service.core.errors import DocadaptError
    from service.db.session import make_engine, make_session_factory, migrate
    from service.db.tables import Evaluation
    from service.evaluate.records import finished_report, render_report

    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    try:
        with make_session_factory(engine)() as session:
            evaluation = session.get(Evaluation, evaluation_id)
            if evaluation is None:
                typer.echo(f"evaluation {evaluation_id} not found in {settings.data_dir}", err=True)
                raise typer.Exit(1)
            try:
                body, _ = render_report(finished_report(evaluation), format)
                return body
            except DocadaptError as exc:
                typer.echo(exc.message, err=True)
                raise typer.Exit(1) from exc
    finally:
        engine.dispose()
