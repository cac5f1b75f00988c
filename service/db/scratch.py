"""Throwaway PostgreSQL: a pgserver (PostgreSQL's binaries in a wheel) started in a folder, and
empty databases on it; for the queue benchmark and the tests that need the real thing."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text

from service.db.session import make_engine


@contextlib.contextmanager
def scratch_postgres(folder: Path | str) -> Iterator[str]:
    """A PostgreSQL server with its data in `folder`, stopped on exit; yields the SQLAlchemy URL
    of its maintenance database."""
    import pgserver

    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()


def new_database(admin_url: str, prefix: str = "d") -> str:
    """Create an empty database on the server of `admin_url`; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    head, sep, query = admin_url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}{sep}{query}"
