"""`docadapt admin`: administrative commands run where the service's data is."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.common import DataDirOption, service_data

app = typer.Typer(help="Administrative commands.", no_args_is_help=True)


@app.command("create-workspace")
def create_workspace_cmd(
    name: Annotated[str, typer.Argument(help="The workspace's name.")],
    data_dir: DataDirOption = None,
) -> None:
    """Create a workspace in the service's database and print its first API key (shown once).

    Run it where `docadapt serve` runs (same settings), or point --data-dir at its data."""
    from service.audit import log as audit
    from service.core.storage import private_dir
    from service.db.session import make_engine, make_session_factory, migrate, session_scope
    from service.workspaces.records import create_workspace, first_key_id

    settings = service_data(data_dir)
    private_dir(settings.data_dir)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    with session_scope(make_session_factory(engine)) as session:
        workspace, key = create_workspace(session, name)
        ws_id = workspace.id
        entry = audit.AuditEntry(
            action="workspace.create",
            resource_type="workspace",
            actor="cli",
            workspace_id=ws_id,
            resource_id=ws_id,
            status_code=201,
            details={"name": name, "api_key_id": first_key_id(session, ws_id)},
        )
        session.commit()
        audit.record(session, entry)
    engine.dispose()
    typer.echo(f"workspace_id: {ws_id}")
    typer.echo(f"api_key: {key}")
