"""The job queue and worker: procrastinate, with its tables in the shared schema.

* Every domain with background work has a ``tasks.py`` holding a ``blueprint``; ``make_app``
  gathers them (namespaced by domain) into one procrastinate App.
* ``tenant_task`` makes a task that works on one tenant: it takes ``tenant`` (a slug) and fails
  closed when it is missing, unknown or suspended; it opens that tenant's session, and commits
  when the work returns (nothing is saved when it raises, and procrastinate retries or records
  the failure).
* Periodic sweeps (``blueprint.periodic``) defer jobs per tenant, each with a queueing lock, so
  a slow tenant never piles up duplicates and tenants stay isolated. Daily and hourly sweeps
  visit every active tenant (``defer_for_each_tenant``). The every-few-minutes ones visit only
  tenants with a wake-up due (``defer_woken``): tables whose rows fall due (a hold expiring, a
  follow-up, an offer, a delivery) have statement triggers recording in
  ``shared.tenant_wakeup`` the minute each tenant next needs that job (shared migration 0011,
  tenant migration 0017). The job (``tenant_task(wakeup=kind)``) deletes the wake-ups it
  serves in its own transaction (a failed job leaves them for the next sweep) and sets one for
  the next minute when it stopped at its batch limit. Idle tenants cost nothing a minute.
* Procrastinate's connection pool is its own (psycopg): its connections have ``shared`` on the
  search path, where its tables and functions live. Tenant data is never reached through it.
* ``anju worker`` runs workers in their own processes; ``ANJU_WORKER_IN_PROCESS`` (on by default
  in development, so ``make run`` has one) runs one inside the gateway.
* A worker killed mid-job (SIGKILL, a lost machine) leaves its jobs ``doing``. Every worker
  writes a heartbeat (``ANJU_WORKER_HEARTBEAT_SECONDS``); the periodic ``jobs:retry_stalled_jobs``
  (``ANJU_WORKER_STALLED_CRON``) puts back in the queue the jobs of workers silent for
  ``ANJU_WORKER_STALLED_SECONDS``; one whose stalled run was its
  ``ANJU_WORKER_STALLED_MAX_ATTEMPTS``-th is failed instead (and logged as an error), so a job
  that kills its worker does not crash-loop every worker. A job may therefore run twice (the
  stalled run never committed, or, for a worker that only looked dead, is still running):
  tasks keep their effects and the marker that they were done in one transaction, and check
  the marker first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import importlib.util
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import procrastinate
import structlog
from sqlalchemy import Insert, column, insert, table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db import connection_dsn
from api.domains import DOMAINS
from api.settings import Settings
from tenants.registry import TenantInfo, get_tenant, list_tenants
from tenants.sessions import TenantDatabase

if TYPE_CHECKING:
    from api.notify import Senders
    from api.security.kit import SecurityKit

TenantTask = Any
"""A procrastinate Task made by ``tenant_task`` (it also carries ``work`` and ``wakeup``, which
procrastinate's types do not know of)."""

log = structlog.get_logger("anju.jobs")


class JobRefused(Exception):
    """A job that must not run: no tenant, an unknown one, or a suspended one."""


@dataclass
class Runtime:
    """What tasks work with: set by whoever runs the worker (``anju worker`` or the gateway)."""

    settings: Settings
    engine: AsyncEngine
    # The gateway's tenant database when the worker runs in the gateway process (one set of
    # lanes for both); otherwise the worker routes its own (tenants/routing.py).
    tenant_db: TenantDatabase | None = None

    @functools.cached_property
    def db(self) -> TenantDatabase:
        if self.tenant_db is not None:
            return self.tenant_db
        return TenantDatabase.routed(self.engine, self.settings)

    @functools.cached_property
    def kit(self) -> SecurityKit:
        from api.security.kit import build_kit

        return build_kit(self.settings)

    @functools.cached_property
    def senders(self) -> Senders:
        """Push, email and SMS senders of this worker process (api/notify)."""
        from api.notify import make_senders

        return make_senders(self.settings)


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the job runtime is not set (run tasks through `anju worker`)")
    return _runtime


WAKE_SERVED = text(
    "DELETE FROM shared.tenant_wakeup WHERE schema_name = :schema AND kind = :kind "
    "AND due_at <= now()"
)
WAKE_AGAIN = text(
    "INSERT INTO shared.tenant_wakeup (schema_name, kind, due_at) "
    "VALUES (:schema, :kind, shared.ceil_minute(now())) ON CONFLICT DO NOTHING"
)
WOKEN = text(
    "SELECT DISTINCT t.slug FROM shared.tenant_wakeup w "
    "JOIN shared.tenant t ON t.schema_name = w.schema_name "
    "WHERE w.kind = :kind AND w.due_at <= now() AND t.status = 'active' ORDER BY t.slug"
)


def tenant_task(
    blueprint: procrastinate.Blueprint,
    *,
    wakeup: str | None = None,
    limit: int | None = None,
    **options: Any,
) -> Callable[[Callable[..., Awaitable[Any]]], TenantTask]:
    """``@tenant_task(blueprint)`` on ``async def work(session, tenant, **kwargs)``: a task
    deferred as ``work.defer_async(tenant="slug", **kwargs)``. With ``wakeup`` it serves that
    kind of wake-up (``defer_woken``); ``limit`` is its batch size: a run that returns a count
    that large asks to run again next minute."""

    def decorate(fn: Callable[..., Awaitable[Any]]) -> TenantTask:
        @blueprint.task(name=fn.__name__, **options)
        @functools.wraps(fn)
        async def run(*, tenant: str | None = None, **kwargs: Any) -> Any:
            if not tenant:
                raise JobRefused(f"{fn.__name__}: a job without a tenant is refused")
            rt = runtime()
            info = await get_tenant(rt.engine, tenant)
            if info is None:
                raise JobRefused(f"{fn.__name__}: unknown tenant '{tenant}'")
            if not info.active:
                raise JobRefused(f"{fn.__name__}: tenant '{tenant}' is suspended")
            wake = {"schema": info.schema_name, "kind": wakeup}
            async with rt.db.session(info) as session:
                if wakeup:
                    await session.execute(WAKE_SERVED, wake)
                result = await fn(session, info, **kwargs)
                if wakeup and limit and isinstance(result, int) and result >= limit:
                    await session.execute(WAKE_AGAIN, wake)
                await session.commit()
            return result

        run.work = fn  # the undecorated work, for tests and for callers already in a session
        run.wakeup = wakeup
        return run

    return decorate


async def defer_for_each_tenant(
    task: TenantTask,
    *,
    lock_prefix: str,
    where: Callable[[TenantInfo], bool] | None = None,
    **kwargs: Any,
) -> int:
    """Defer ``task`` once per active tenant (``where(tenant)``: only those it accepts); a
    tenant whose previous job of this kind is still waiting is skipped (queueing lock).
    Returns how many were deferred."""
    slugs = [t.slug for t in await active_tenants() if where is None or where(t)]
    return await _defer_each(task, slugs, lock_prefix, kwargs)


async def defer_woken(task: TenantTask) -> int:
    """Defer ``task`` (a ``tenant_task`` with a ``wakeup`` kind) for every active tenant with
    a wake-up of that kind due; the kind names the queueing lock. Returns how many."""
    async with runtime().engine.connect() as conn:
        slugs = list(await conn.scalars(WOKEN, {"kind": task.wakeup}))
    return await _defer_each(task, slugs, task.wakeup, {})


async def _defer_each(
    task: TenantTask, slugs: list[str], lock_prefix: str, kwargs: dict[str, Any]
) -> int:
    """``task`` once per tenant slug under the queueing lock ``<lock_prefix>:<slug>``; one
    whose previous job is still waiting is skipped. Returns how many were deferred."""
    deferred = 0
    for slug in slugs:
        try:
            await task.configure(queueing_lock=f"{lock_prefix}:{slug}").defer_async(
                tenant=slug, **kwargs
            )
            deferred += 1
        except procrastinate.exceptions.AlreadyEnqueued:
            continue
    return deferred


async def active_tenants() -> list[TenantInfo]:
    return [t for t in await list_tenants(runtime().engine) if t.active]


# The queue's own upkeep (namespace ``jobs``). Its schedule is a setting, so ``run_worker``
# registers it (``schedule_upkeep``) rather than a decorator.
blueprint = procrastinate.Blueprint()
STALLED_SWEEP = "stalled-jobs"


@blueprint.task(name="retry_stalled_jobs", queueing_lock=STALLED_SWEEP, pass_context=True)
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> int:
    """Jobs left ``doing`` by a worker that stopped heartbeating go back to the queue now
    (attempts + 1), unless that run was their ``worker_stalled_max_attempts``-th: those are
    failed (a job that kills its worker would crash-loop every worker). Returns how many were
    retried."""
    settings = runtime().settings
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.worker_stalled_seconds
    )
    retried = 0
    for job in stalled:
        runs = job.attempts + 1  # the stalled run included
        give_up = runs >= settings.worker_stalled_max_attempts
        try:
            if give_up:
                await manager.finish_job(job, procrastinate.jobs.Status.FAILED, delete_job=False)
            else:
                await manager.retry_job(job)
        except procrastinate.exceptions.ConnectorException:
            continue  # finished or retried meanwhile (no longer doing)
        if give_up:
            log.error(
                "stalled job failed: too many attempts",
                job_id=job.id,
                task=job.task_name,
                worker_id=job.worker_id,
                attempts=runs,
                tenant=job.task_kwargs.get("tenant"),
            )
            continue
        retried += 1
        log.warning(
            "stalled job retried",
            job_id=job.id,
            task=job.task_name,
            worker_id=job.worker_id,
            attempts=runs,
        )
    return retried


def schedule_upkeep(app: procrastinate.App, settings: Settings) -> None:
    """The stalled-job sweep on ``settings.worker_stalled_cron`` (replacing the schedule an
    earlier worker of this process registered)."""
    task, registry = retry_stalled_jobs, app.periodic_registry  # named jobs:... by make_app
    held = registry.periodic_tasks.get((task.name, STALLED_SWEEP))
    if held is not None and held.cron == settings.worker_stalled_cron:
        return
    registry.periodic_tasks.pop((task.name, STALLED_SWEEP), None)
    registry.register_task(
        task=task, cron=settings.worker_stalled_cron, periodic_id=STALLED_SWEEP, configure_kwargs={}
    )


def _task_modules() -> list[str]:
    return [f"api.{d}.tasks" for d in DOMAINS if importlib.util.find_spec(f"api.{d}.tasks")]


_app: tuple[str, procrastinate.App] | None = None


def make_app(url: URL) -> procrastinate.App:
    """The process's job App for the database at ``url`` (made once: the domains' blueprints
    can be bound to one App only)."""
    global _app
    dsn = connection_dsn(url)
    if _app is not None:
        if _app[0] != dsn:
            raise RuntimeError("this process already has a job App for another database")
        return _app[1]
    connector = procrastinate.PsycopgConnector(
        conninfo=dsn,
        kwargs={"options": "-c search_path=shared", "application_name": "anju-jobs"},
        min_size=1,
        max_size=4,
    )
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(blueprint, namespace="jobs")
    for path in _task_modules():
        module = importlib.import_module(path)
        app.add_tasks_from(module.blueprint, namespace=path.split(".")[1])
    _app = (dsn, app)
    return app


async def run_worker(
    settings: Settings,
    engine: AsyncEngine,
    url: URL,
    *,
    concurrency: int = 4,
    wait: bool = True,
    install_signal_handlers: bool = True,
    name: str = "anju-worker",
    db: TenantDatabase | None = None,
) -> None:
    """Run a worker until stopped (``wait=False``: until the queue is empty).

    A waiting worker survives the database: procrastinate's worker ends when its connection
    fails (a restart, a failover), so it is started again, after 1 s, then up to 30 s between
    attempts while the database stays away. SIGINT/SIGTERM (with ``install_signal_handlers``)
    or cancelling this coroutine stops it gracefully, running jobs finished first."""
    runtime = Runtime(settings, engine, tenant_db=db)
    set_runtime(runtime)
    try:
        await _run_worker(settings, url, concurrency, wait, install_signal_handlers, name)
    finally:
        if db is None and "db" in runtime.__dict__:  # lanes this worker opened
            await runtime.db.dispose()


async def _run_worker(
    settings: Settings,
    url: URL,
    concurrency: int,
    wait: bool,
    install_signal_handlers: bool,
    name: str,
) -> None:
    app = make_app(url)
    schedule_upkeep(app, settings)
    if not wait:
        await _work(app, settings, concurrency, False, name)
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if install_signal_handlers else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    delay = WORKER_RESTART_MIN
    try:
        while not stop.is_set():
            started = time.monotonic()
            worker = asyncio.create_task(_work(app, settings, concurrency, True, name))
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not worker.done():  # stopped (a signal) or cancelled: jobs finish first
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
            if stop.is_set():
                return
            error = worker.exception()  # None: a side task failed and stopped it
            if time.monotonic() - started > 60:
                delay = WORKER_RESTART_MIN
            log.warning(
                "worker stopped by itself; starting it again",
                name=name,
                error=repr(error),
                retry_in=delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, WORKER_RESTART_MAX)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


WORKER_RESTART_MIN, WORKER_RESTART_MAX = 1.0, 30.0


async def _work(
    app: procrastinate.App, settings: Settings, concurrency: int, wait: bool, name: str
) -> None:
    async with app.open_async():
        log.info("worker started", name=name, concurrency=concurrency)
        await app.run_worker_async(
            concurrency=concurrency,
            wait=wait,
            name=name,
            install_signal_handlers=False,
            shutdown_graceful_timeout=30,
            delete_jobs="successful",
            update_heartbeat_interval=settings.worker_heartbeat_seconds,
            stalled_worker_timeout=settings.worker_stalled_seconds,
        )


# The queue's job table (procrastinate's, in the shared schema): a job written in the caller's
# own transaction exists exactly when that transaction commits (the table's trigger wakes the
# workers at commit). Columns as in the pinned procrastinate version's schema (migration 0007).
JOBS = table(
    "procrastinate_jobs",
    column("queue_name"),
    column("task_name"),
    column("priority"),
    column("lock"),
    column("queueing_lock"),
    column("args", JSONB),
    column("scheduled_at"),
    schema="shared",
)


def task_name(task: TenantTask) -> str:
    """The queue's name of a task (``domain:name``)."""
    name = task.name  # namespaced by its domain once make_app has gathered the blueprints
    if ":" not in name:
        name = f"{task.func.__module__.split('.')[1]}:{name}"
    return name


def enqueue(
    task: TenantTask,
    *,
    tenant: str,
    scheduled_at: datetime | None = None,
    queue: str = "default",
    queueing_lock: str | None = None,
    **kwargs: Any,
) -> Insert:
    """The statement deferring ``task`` (a ``tenant_task``) for ``tenant`` inside the caller's
    transaction: ``await session.execute(enqueue(...))`` (or ``session.execute`` in a flush
    hook). Nothing is queued when that transaction rolls back. With ``queueing_lock`` (which
    should name the tenant) nothing is queued while a job with that lock is still waiting:
    many triggers, one job."""
    if not tenant:
        raise JobRefused("a job without a tenant is refused")
    values = dict(
        queue_name=queue,
        task_name=task_name(task),
        priority=0,
        lock=None,
        queueing_lock=queueing_lock,
        args={"tenant": tenant, **kwargs},
        scheduled_at=scheduled_at,
    )
    if queueing_lock is None:
        return insert(JOBS).values(**values)
    return (
        pg_insert(JOBS)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["queueing_lock"], index_where=text("status = 'todo'")
        )
    )
