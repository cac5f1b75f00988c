"""Autogenerate an Alembic migration against a scratch SQLite database at the current head.

Usage: python scripts/make_migration.py "message"
"""

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from service.db.session import MIGRATIONS_DIR, make_engine

with tempfile.TemporaryDirectory() as tmp:
    engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        command.revision(cfg, message=sys.argv[1], autogenerate=True)
