"""Alembic environment of the tenant stream.

Tenant migrations are written without a schema. Online, the runner opens a transaction, sets
``search_path`` for that transaction only (SET LOCAL) to the tenant's schema, and keeps the
version table inside that schema. Offline (``--sql``), the same migrations render one script
with unqualified names: provisioning runs it after ``SET LOCAL search_path`` in a new schema.
"""

from alembic import context
from sqlalchemy import Connection

from api.db import TenantBase
from api.domains import load_models

load_models()
config = context.config


def run(connection: Connection, schema: str) -> None:
    connection.exec_driver_sql(f'SET LOCAL search_path TO "{schema}", public')
    context.configure(
        connection=connection,
        target_metadata=TenantBase.metadata,
        version_table_schema=schema,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url="postgresql://",
        target_metadata=TenantBase.metadata,
        literal_binds=True,
        transactional_ddl=False,
    )
    context.run_migrations()
else:
    connection = config.attributes.get("connection")
    schema = config.attributes.get("tenant_schema")
    if connection is not None:
        if not isinstance(schema, str):
            raise SystemExit("the tenant runner gives tenant_schema with the connection")
        run(connection, schema)
    else:  # plain `alembic -n tenant -x tenant=<slug> upgrade head`
        from tenants.migrate import run_with_app_engine
        from tenants.registry import schema_for

        slug = context.get_x_argument(as_dictionary=True).get("tenant")
        if not slug:
            raise SystemExit("give the tenant: alembic -n tenant -x tenant=<slug> ...")
        schema_name = schema_for(slug)
        run_with_app_engine(lambda conn: run(conn, schema_name))
