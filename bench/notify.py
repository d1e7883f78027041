"""The notification scenario (issue #6): one notice to 10,000 devices (small: 2,000), each of
its own account. Measured in a separate worker process, as the job worker runs it:

- ``notify``: the inbox rows, deliveries and queued jobs, in chunks of 1,000 recipients, one
  transaction each (as the notice job does);
- ``deliver``: ``api.notify.delivery.deliver`` over the deliveries, 500 a transaction (as one
  worker runs the deliver jobs), with the real ``FcmPushSender`` (firebase-admin's async API)
  until the loopback FCM (bench/fcm.py, its own process) has answered every message;
- peak memory: the worker process's maximum RSS, and its growth during the scenario.

Raw baseline: the same FCM request bodies posted by a bare httpx client with the same
concurrency (the sender's default, ``GROUP``) to the same server. Target: every message handed
over in < 3 s."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from api.db import asyncpg_dsn, embedded_url, ensure_database, make_engine
from api.notify.push import GROUP
from api.settings import Settings
from bench.http import _free_port, stop
from tenants.migrate import upgrade_shared
from tenants.provisioning import create_tenant


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _setup(url, n: int) -> dict:
    await ensure_database(url, recreate=True)
    engine = make_engine(url, Settings(env="development"))
    await upgrade_shared(engine)
    tenant = (await create_tenant(engine, "bench-notify", "Bench Notify")).tenant
    await engine.dispose()
    accounts = [uuid.uuid4() for _ in range(n)]
    now = datetime.now(UTC)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    await conn.copy_records_to_table(
        "device",
        schema_name=tenant.schema_name,
        columns=(
            "id",
            "account_id",
            "app",
            "platform",
            "token",
            "is_fid",
            "installation_id",
            "locale",
            "app_version",
            "created_at",
            "last_seen_at",
        ),
        records=[
            (
                uuid.uuid4(),
                a,
                "owner",
                "android",
                f"ok-{a.hex}{'x' * 120}",
                False,
                "",
                "zh-CN",
                "3.2.0",
                now,
                now,
            )
            for a in accounts
        ],
    )
    await conn.close()
    return {"slug": tenant.slug, "accounts": [str(a) for a in accounts]}


async def _gateway(url, setup: dict, fcm_url: str) -> dict:
    from api.notify import Senders, delivery, service
    from api.notify.push import FcmPushSender
    from tenants.registry import get_tenant
    from tenants.sessions import TenantDatabase

    engine = make_engine(url, Settings(env="development"))
    tenant = await get_tenant(engine, setup["slug"])
    db = TenantDatabase(engine)
    sender = FcmPushSender("bench", access_token="bench", url=fcm_url, retries=0)
    rss0 = _rss_mib()
    accounts = [uuid.UUID(a) for a in setup["accounts"]]
    t0 = time.perf_counter()
    made = 0
    # As the notice job does: notify in chunks of NOTICE_CHUNK, one transaction each.
    for start in range(0, len(accounts), service.NOTICE_CHUNK):
        async with db.session(tenant) as session:
            made += len(
                await service.notify(
                    session,
                    tenant.slug,
                    accounts[start : start + service.NOTICE_CHUNK],
                    "property_notices",
                    "notice",
                    {"title": "停水通知", "text": "明天 9:00-12:00 二期 3 号楼停水检修。"},
                    urgent=True,
                )
            )
            await session.commit()
    t1 = time.perf_counter()
    from sqlalchemy import select

    from api.notify.models import Delivery

    async with db.session(tenant) as session:
        ids = list(await session.scalars(select(Delivery.id).order_by(Delivery.id)))
    sent = 0
    # As one worker runs the deliver jobs: JOB_SIZE deliveries each, one transaction each.
    for start in range(0, len(ids), service.JOB_SIZE):
        async with db.session(tenant) as session:
            out = await delivery.deliver(
                session, ids[start : start + service.JOB_SIZE], senders=Senders(None, None, sender)
            )
            await session.commit()
        sent += out.sent
    t2 = time.perf_counter()
    await sender.close()
    await engine.dispose()
    return {
        "notifications": made,
        "sent": sent,
        "notify_s": t1 - t0,
        "deliver_s": t2 - t1,
        "rss_peak_mib": _rss_mib(),
        "rss_growth_mib": _rss_mib() - rss0,
    }


async def _raw(setup: dict, fcm_url: str) -> dict:
    import httpx

    bodies = [
        json.dumps(
            {
                "message": {
                    "token": f"ok-{a}",
                    "notification": {
                        "title": "停水通知",
                        "body": "明天 9:00-12:00 二期 3 号楼停水检修。",
                    },
                    "android": {"priority": "high"},
                    "apns": {"headers": {"apns-priority": "10"}},
                }
            }
        )
        for a in setup["accounts"]
    ]
    url = f"{fcm_url}/v1/projects/bench/messages:send"
    t0 = time.perf_counter()
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    # The SDK's client: httpx's default pool (100 connections), the sender's 30 s timeout.
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        for start in range(0, len(bodies), GROUP):  # the sender's default concurrency
            await asyncio.gather(
                *(client.post(url, content=b) for b in bodies[start : start + GROUP])
            )
    return {"deliver_s": time.perf_counter() - t0}


def _child(pipe, kind: str, url, setup: dict, fcm_url: str) -> None:
    import uvloop

    uvloop.install()
    result = asyncio.run(
        _gateway(url, setup, fcm_url) if kind == "gateway" else _raw(setup, fcm_url)
    )
    pipe.send(result)


def _in_child(kind: str, url, setup: dict, fcm_url: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, kind, url, setup, fcm_url))
    proc.start()
    result = parent.recv()
    proc.join(60)
    return result


def _count(port: int) -> int:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=10) as res:
        return json.loads(res.read())["count"]


def run(size: str) -> dict:
    n = 2000 if size == "small" else 10_000
    base = Settings(env="development", log_level="WARNING")
    url = embedded_url(base, "bench-pg", "anju_bench_notify")
    setup = asyncio.run(_setup(url, n))
    port = _free_port()
    fcm = subprocess.Popen([sys.executable, "-m", "bench.fcm", str(port)])
    try:
        deadline = time.time() + 20
        while True:
            try:
                _count(port)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        fcm_url = f"http://127.0.0.1:{port}"
        raw = _in_child("raw", url, setup, fcm_url)
        before = _count(port)
        gw = _in_child("gateway", url, setup, fcm_url)
        received = _count(port) - before
    finally:
        stop(fcm)
    return {
        f"notice_to_{n}_devices": {
            "notify_inbox_s": round(gw["notify_s"], 2),
            "deliver_s": round(gw["deliver_s"], 2),
            "total_s": round(gw["notify_s"] + gw["deliver_s"], 2),
            "fcm_received": received,
            "sent": gw["sent"],
            "raw_deliver_s": round(raw["deliver_s"], 2),
            "deliver_ratio": round(gw["deliver_s"] / raw["deliver_s"], 2),
            "worker_rss_peak_mib": round(gw["rss_peak_mib"], 1),
            "worker_rss_growth_mib": round(gw["rss_growth_mib"], 1),
        }
    }


def main(size: str) -> dict:
    return run(size)
