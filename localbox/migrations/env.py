"""Alembic environment of localbox: run through localbox.stores.migrate (`localbox migrate`), which hands
over either a URL or an open connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from localbox.stores.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=metadata, render_as_batch=True,
                              transaction_per_migration=False)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("localbox migrations run online only (localbox migrate)")
run()
