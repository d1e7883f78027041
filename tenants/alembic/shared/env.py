"""Alembic environment of the shared stream (schema ``shared``, version table inside it)."""

from alembic import context
from sqlalchemy import Connection

from api.db import SHARED_SCHEMA, SharedBase
from api.domains import load_models
from tenants import models  # noqa: F401  (registers the shared tables)

load_models()

config = context.config


def run(connection: Connection) -> None:
    connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{SHARED_SCHEMA}"')
    context.configure(
        connection=connection,
        target_metadata=SharedBase.metadata,
        version_table_schema=SHARED_SCHEMA,
        include_schemas=True,
        include_name=lambda name, type_, _: type_ != "schema" or name == SHARED_SCHEMA,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:  # plain `alembic -n shared ...`: connect with the application's settings
    from tenants.migrate import run_with_app_engine

    run_with_app_engine(run)
