"""Alembic, driven from code: each service keeps its scripts in `services/<name>/migrations`."""
from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from shared.database import make_engine


def alembic_config(script_location: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(script_location, url), revision)


def run_env(metadata: MetaData) -> None:
    """The body of every service's `env.py` (online mode; batch mode so SQLite can ALTER)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "alembic_config sets sqlalchemy.url"
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
