"""The ``anju`` command line."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from api.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

    from api.audit.service import VerifyReport
    from tenants.migrate import MigrationReport
    from tenants.models import TenantStatus

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(no_args_is_help=True, help="The shared schema.")
tenants_app = typer.Typer(no_args_is_help=True, help="Tenants: create, list, migrate, suspend.")
schema_app = typer.Typer(no_args_is_help=True, help="The GraphQL schema.")
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(schema_app, name="schema")
permissions_app = typer.Typer(no_args_is_help=True, help="The permission catalogue.")
contracts_app = typer.Typer(no_args_is_help=True, help="The apps' documents (trusted documents).")
audit_app = typer.Typer(no_args_is_help=True, help="The tenants' audit logs.")
keys_app = typer.Typer(no_args_is_help=True, help="Field-encryption keys.")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(permissions_app, name="permissions")
app.add_typer(contracts_app, name="contracts")
stripe_app = typer.Typer(no_args_is_help=True, help="Stripe: recover events.")
app.add_typer(stripe_app, name="stripe")

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def with_engine(
    fn: Callable[[AsyncEngine, Settings], Awaitable[T]], *, create_db: bool = False
) -> T:
    """Run ``fn(engine, settings)`` against the configured database; errors become one line."""
    from sqlalchemy.pool import NullPool

    from api.db import DatabaseUnavailable, ensure_database, make_engine, server_url
    from tenants.registry import TenantError

    settings = get_settings()

    async def main() -> T:
        url = server_url(settings)  # may start the embedded PostgreSQL
        if create_db:
            await ensure_database(url)
        engine = make_engine(url, settings, poolclass=NullPool)
        try:
            return await fn(engine, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except typer.Exit:
        raise
    except TenantError as exc:
        fail(exc.message)
    except DatabaseUnavailable as exc:
        fail(f"database unavailable: {exc}")
    except OSError as exc:
        fail(f"cannot reach the database: {exc}")
    except Exception as exc:  # one line, never a traceback
        orig = getattr(exc, "orig", None) or exc
        fail(f"{type(exc).__name__}: {str(orig).strip().splitlines()[0] if str(orig) else ''}")


async def _prepare(
    engine: AsyncEngine, settings: Settings, *, migrate: bool = True, seed: bool
) -> list[str]:
    from api.seed import seed_demo
    from tenants.migrate import migrate_tenants, upgrade_shared

    out: list[str] = []
    if migrate:
        await upgrade_shared(engine)
        report = await migrate_tenants(engine, settings)
        out.extend(report.lines() if report.failed else report.lines()[-1:])
    if seed:
        out.append(await seed_demo(engine, settings))
    return out


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (ANJU_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ANJU_PORT).")] = None,
    migrate: Annotated[bool, typer.Option(help="Apply shared and tenant migrations first.")] = True,
    seed_demo: Annotated[bool, typer.Option(help="Create the demo tenant when missing.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the gateway (GraphQL on /graphql)."""
    import uvicorn

    from api.http import UVICORN_OPTIONS
    from api.logging import configure_logging

    settings = get_settings()
    configure_logging(settings)
    # Starts the embedded PostgreSQL when no URL is set; it stops when this process exits.
    url = with_engine(lambda e, s: _serve_prepare(e, s, migrate, seed_demo), create_db=True)
    host = host or settings.host
    port = port or settings.port
    typer.echo(f"Anju on http://{host}:{port}/graphql ({settings.env}; database {url.database})")
    # uvicorn re-raises the signal that stopped it; exit normally so the embedded PostgreSQL
    # this process started is stopped by its exit hook.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    uvicorn.run(
        "api.main:app",
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        **UVICORN_OPTIONS,
    )


async def _serve_prepare(engine: AsyncEngine, settings: Settings, migrate: bool, seed: bool) -> URL:
    for line in await _prepare(engine, settings, migrate=migrate, seed=seed):
        typer.echo(line)
    return engine.url


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Jobs run at once.")] = None,
    burst: Annotated[bool, typer.Option(help="Stop once the queue is empty.")] = False,
) -> None:
    """Run a job worker (periodic sweeps, reminders, deliveries) until stopped."""
    from api.db import make_engine, server_url
    from api.jobs import run_worker
    from api.logging import configure_logging

    settings = get_settings()
    configure_logging(settings)

    async def main() -> None:
        url = server_url(settings)
        engine = make_engine(url, settings)
        try:
            await run_worker(
                settings,
                engine,
                url,
                concurrency=concurrency or settings.worker_concurrency,
                wait=not burst,
            )
        finally:
            await engine.dispose()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply shared migrations, then bring every tenant to head."""

    async def run(engine: AsyncEngine, settings: Settings) -> list[str]:
        return await _prepare(engine, settings, seed=False)

    lines = with_engine(run, create_db=True)
    for line in lines:
        typer.echo(line)
    if any(line.startswith("FAILED") for line in lines):
        raise typer.Exit(1)


@app.command("seed-demo")
def seed_demo_cmd() -> None:
    """Create the demo tenant with demo data (idempotent)."""
    from api.seed import seed_demo

    typer.echo(with_engine(seed_demo))


@stripe_app.command("replay")
def stripe_replay(
    since: Annotated[str, typer.Option(help="A date (2026-11-20) or time with offset, UTC.")],
) -> None:
    """Fetch every connected account's events since a date from Stripe and store (and
    process) those that never arrived; a stored event whose processing never completed (its
    job failed or was lost) is queued again; events already processed are left alone."""
    from datetime import UTC, datetime

    from api.payment import webhook

    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        fail("--since is a date like 2026-11-20 or a time like 2026-11-20T08:00:00+08:00")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if not get_settings().stripe_secret_key:
        fail("ANJU_STRIPE_SECRET_KEY is not set")

    async def run(engine: AsyncEngine, settings: Settings) -> dict[str, int]:
        return await webhook.replay(engine, settings, int(when.timestamp()))

    counts = with_engine(run)
    typer.echo(", ".join(f"{v} {k}" for k, v in counts.items()))


def _checked(option: str, check: Callable[[str], str], value: str) -> str:
    """``check(value)``, a refusal as a usage error of ``option`` (exit 2)."""
    from tenants.registry import TenantError

    try:
        return check(value)
    except TenantError as exc:
        raise typer.BadParameter(exc.message, param_hint=f"'{option}'") from exc


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Option(help="3-40 chars: a-z, 0-9, hyphens.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    plan: Annotated[str, typer.Option(help="A known plan (free, standard, pro...).")] = "free",
    time_zone: Annotated[str, typer.Option(help="IANA time zone.")] = "Asia/Shanghai",
    locale: Annotated[str, typer.Option(help="zh-CN or en.")] = "zh-CN",
    currency: Annotated[str, typer.Option(help="ISO 4217 currency code.")] = "CNY",
) -> None:
    """Register and provision a tenant."""
    from tenants.provisioning import create_tenant
    from tenants.registry import validate_currency, validate_locale, validate_time_zone

    plans = get_settings().plans
    if plan not in plans:
        raise typer.BadParameter(f"a plan is one of {', '.join(plans)}", param_hint="'--plan'")
    regional = {
        "time_zone": _checked("--time-zone", validate_time_zone, time_zone),
        "locale": _checked("--locale", validate_locale, locale),
        "currency": _checked("--currency", validate_currency, currency),
    }
    p = with_engine(lambda e, s: create_tenant(e, slug, name, plan, **regional))
    typer.echo(
        f"created {p.tenant.slug} (schema {p.tenant.schema_name}) in {p.milliseconds:.1f} ms"
    )


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants."""
    from tenants.registry import list_tenants

    for t in with_engine(lambda e, s: list_tenants(e)):
        typer.echo(f"{t.slug:<40} {t.status:<10} {t.plan:<10} {t.schema_name}  {t.name}")


@tenants_app.command("migrate")
def tenants_migrate(
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    from_slug: Annotated[
        str | None, typer.Option("--from", help="Resume from this slug (slug order).")
    ] = None,
) -> None:
    """Bring every tenant schema to head; report ok / failed per tenant."""
    from tenants.migrate import migrate_tenants
    from tenants.registry import TenantNotFound, get_tenant

    async def run(engine: AsyncEngine, settings: Settings) -> MigrationReport:
        if from_slug is not None and await get_tenant(engine, from_slug) is None:
            raise TenantNotFound(f"--from: no tenant with slug '{from_slug}'", "from")
        return await migrate_tenants(engine, settings, parallel=parallel, from_slug=from_slug)

    report = with_engine(run)
    for line in report.lines():
        typer.echo(line)
    if report.failed:
        raise typer.Exit(1)


@tenants_app.command("status")
def tenants_status() -> None:
    """List tenants whose schema is not at head."""
    from tenants.migrate import head, tenants_behind

    behind = with_engine(lambda e, s: tenants_behind(e))
    for t, version in behind:
        typer.echo(f"{t.slug:<40} {version or 'none'} (head {head('tenant')})")
    typer.echo(f"{len(behind)} tenant(s) not at head {head('tenant')}")


def _set_status(slug: str, status: TenantStatus) -> None:
    from tenants.registry import set_status

    t = with_engine(lambda e, s: set_status(e, slug, status))
    typer.echo(f"{t.slug}: {t.status}")


@tenants_app.command("suspend")
def tenants_suspend(slug: str) -> None:
    """Suspend a tenant (its requests get 403)."""
    from tenants.models import TenantStatus

    _set_status(slug, TenantStatus.SUSPENDED)


@tenants_app.command("resume")
def tenants_resume(slug: str) -> None:
    """Resume a suspended tenant."""
    from tenants.models import TenantStatus

    _set_status(slug, TenantStatus.ACTIVE)


@schema_app.command("export")
def schema_export(
    path: Annotated[Path, typer.Option(help="Where to write the SDL.")] = Path(
        "mobile_contracts/schema.graphql"
    ),
    check: Annotated[bool, typer.Option(help="Exit 1 when the file is stale.")] = False,
) -> None:
    """Write the GraphQL SDL (or check that the committed file is current)."""
    from api.graphql.schema import export_sdl

    sdl = export_sdl()
    if check:
        if not path.exists() or path.read_text() != sdl:
            fail(f"{path} is stale: run `anju schema export`")
        typer.echo(f"{path} is current")
        return
    path.write_text(sdl)
    typer.echo(f"wrote {path}")


@audit_app.command("verify")
def audit_verify(tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug.")]) -> None:
    """Recompute a tenant's audit hash chain; report the first broken entry."""
    from api.audit.service import verify
    from tenants.registry import TenantNotFound, get_tenant
    from tenants.sessions import TenantDatabase

    async def run(engine: AsyncEngine, settings: Settings) -> VerifyReport:
        info = await get_tenant(engine, tenant)
        if info is None:
            raise TenantNotFound(f"no tenant with slug '{tenant}'", "tenant")
        async with TenantDatabase(engine).session(info) as session:
            return await verify(session)

    report = with_engine(run)
    if report.ok:
        typer.echo(f"{tenant}: audit chain intact ({report.entries} entries)")
        return
    typer.echo(f"{tenant}: audit chain BROKEN at entry {report.first_broken_seq}: {report.reason}")
    raise typer.Exit(1)


@keys_app.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option(min=1, max=10000, help="Rows per transaction.")] = 500,
) -> None:
    """Re-encrypt personal data under the newest key of ANJU_FIELD_KEYS (online)."""
    from api.security.fields import rotate_keys
    from api.security.kit import build_kit

    counts = with_engine(lambda e, s: rotate_keys(e, build_kit(s), batch))
    for name, n in counts.items():
        typer.echo(f"{name}: {n} re-encrypted")


@contracts_app.command("manifest")
def contracts_manifest(
    check: Annotated[bool, typer.Option(help="Fail if the file is stale; write nothing.")] = False,
) -> None:
    """Write (or check) mobile_contracts/manifest.json, the trusted documents."""
    from mobile_contracts.contracts import MANIFEST, manifest_text

    text = manifest_text()
    if check:
        if not MANIFEST.exists() or MANIFEST.read_text() != text:
            fail("mobile_contracts/manifest.json is stale: run `anju contracts manifest`")
        typer.echo("mobile_contracts/manifest.json is current")
        return
    MANIFEST.write_text(text)
    typer.echo(f"wrote {MANIFEST.relative_to(MANIFEST.parent.parent)}")


@contracts_app.command("release")
def contracts_release() -> None:
    """Record the current schema as the one the released apps use (when an app ships):
    breaking changes are measured against it."""
    from api.graphql.schema import export_sdl
    from mobile_contracts.contracts import RELEASED

    RELEASED.write_text(export_sdl())
    typer.echo(f"wrote {RELEASED.relative_to(RELEASED.parent.parent)}")


@permissions_app.command("doc")
def permissions_doc(
    path: Annotated[Path, typer.Option(help="Where to write the table.")] = Path(
        "docs/permissions.md"
    ),
    check: Annotated[bool, typer.Option(help="Exit 1 when the file is stale.")] = False,
) -> None:
    """Write the generated permission table (or check that it is current)."""
    from api.security.catalogue import markdown_table

    text = markdown_table()
    if check:
        if not path.exists() or path.read_text() != text:
            fail(f"{path} is stale: run `anju permissions doc`")
        typer.echo(f"{path} is current")
        return
    path.write_text(text)
    typer.echo(f"wrote {path}")


def main() -> None:
    """Run ``anju``. A usage error (unknown command or option, missing or bad value) is one
    ``error: ...`` line on stderr and exit code 2, like every refusal (exit 1): no panel."""
    # click's exceptions, wherever this typer takes click from (recent ones vendor it)
    click = sys.modules[typer.BadParameter.__module__]
    no_args = getattr(click, "NoArgsIsHelpError", ())
    try:
        code = app(standalone_mode=False)
    except no_args as exc:  # a bare group: its help
        typer.echo(exc.format_message(), err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        message = " ".join(exc.format_message().split())
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
