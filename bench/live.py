"""The live scenario (issue #5): thousands of WebSocket subscribers of one building on one
gateway process; one unit status change (a hold, then its release, over HTTP); the time until
each subscriber has the ``next`` message, measured from just before the mutation is sent.

- Gateway: mutation -> commit -> NOTIFY -> relay numbers and publishes -> bus -> hub -> one
  payload built for the document shape -> one write per socket.
- Raw baseline (``rawws`` in bench/servers.py): the same sockets, and ``POST /broadcast``
  writing a prebuilt payload to each: what the hardware and uvicorn allow for the fan-out.
- Memory: the server's RSS before the sockets connect and with all of them subscribed and idle.
- Redis hop: the same at a smaller count on a gateway whose bus is Redis, against one whose
  bus is in process (both measured here).

Targets (issue #5): 5,000 subscribers p99 < 250 ms; < 40 KiB RSS per idle subscribed socket;
Redis hop p99 < 20 ms."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import time

import asyncpg

from api.db import asyncpg_dsn, embedded_url
from api.settings import Settings
from bench import wsclient
from bench.http import _setup, server_env, start, stop

SUBSCRIBE = (
    "subscription($b: ID) { unitChanges(buildingId: $b) { __typename ... on UnitChange { seq "
    "kind unitId status standardStatus version listPrice { minorUnits currency } } } }"
)
HOLD = "mutation($id: ID!) { holdUnit(input: {unitId: $id}) { __typename } }"
RELEASE = "mutation($id: ID!) { releaseUnitHold(unitId: $id) { __typename } }"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _pick(url, slug: str) -> tuple[str, str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        schema = await conn.fetchval("SELECT schema_name FROM shared.tenant WHERE slug = $1", slug)
        row = await conn.fetchrow(
            f'SELECT id, building_id FROM "{schema}".unit '
            "WHERE status = 'available' AND list_price IS NOT NULL ORDER BY id LIMIT 1"
        )
    finally:
        await conn.close()
    return str(row["building_id"]), str(row["id"])


def _triggers(kind: str, tenant: dict, unit_id: str, rounds: int) -> list:
    if kind == "rawws":
        payload = json.dumps(
            {
                "data": {
                    "unitChanges": {
                        "__typename": "UnitChange",
                        "seq": 1,
                        "kind": "STATUS",
                        "unitId": unit_id,
                        "status": "ON_HOLD",
                        "standardStatus": "HOLD",
                        "version": 2,
                        "listPrice": {"minorUnits": 312_000_000, "currency": "CNY"},
                    }
                }
            },
            separators=(",", ":"),
        ).encode()
        return [("/broadcast", {}, payload)] * rounds
    headers = {"X-Tenant": tenant["slug"], "Authorization": f"Bearer {tenant['token']}"}
    out = []
    for i in range(rounds):
        query = HOLD if i % 2 == 0 else RELEASE
        body = json.dumps({"query": query, "variables": {"id": unit_id}}).encode()
        out.append(("/graphql", headers, body))
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def broadcast(
    kind: str, env: dict, tenant: dict, building: str, unit: str, n: int, rounds: int
) -> dict:
    proc, port = start(kind, env)
    try:
        time.sleep(1.0)
        before = rss_kib(proc.pid)
        subscribe = json.dumps({"query": SUBSCRIBE, "variables": {"b": building}})
        ctx = multiprocessing.get_context("spawn")
        parent, child_end = ctx.Pipe()
        client = ctx.Process(
            target=wsclient.child,
            args=(
                child_end,
                port,
                n,
                tenant["slug"],
                tenant["token"],
                subscribe,
                _triggers(kind, tenant, unit, rounds),
            ),
        )
        client.start()
        _, connected = parent.recv()
        time.sleep(1.0)
        after = rss_kib(proc.pid)
        parent.send("go")
        _, measured = parent.recv()
        client.join(30)
    finally:
        stop(proc)
    every = [x for r in measured for x in r["latencies"]]
    lasts = [max(r["latencies"]) * 1000 for r in measured if r["latencies"]]
    return {
        "subscribers": connected,
        "rounds": len(measured),
        "missing": sum(n - r["received"] for r in measured),
        "p50_ms": round(_pct(every, 0.50), 1),
        "p99_ms": round(_pct(every, 0.99), 1),
        "last_median_ms": round(statistics.median(lasts), 1),
        "rss_per_socket_kib": round((after - before) / max(1, connected), 1),
    }


def _redis_url() -> str:
    url = os.environ.get("ANJU_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:
        return ""
    return url


def run(size: str) -> dict:
    small = size == "small"
    n, n_hop, rounds = (500, 200, 4) if small else (5000, 1000, 10)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    base = Settings(env="development", log_level="WARNING")
    url = embedded_url(base, "bench-pg", "anju_bench_live")
    settings = base.model_copy(update={"access_token_ttl": 7200})
    [tenant] = asyncio.run(_setup(settings, url, 1))
    building, unit = asyncio.run(_pick(url, tenant["slug"]))
    env = server_env(url, base)
    raw = broadcast("rawws", env, tenant, building, unit, n, rounds)
    gw = broadcast("gateway", env, tenant, building, unit, n, rounds)
    out: dict = {
        "live_load_generator": wsclient.NAME,
        f"live_broadcast_{n}": {
            **{f"gateway_{k}": v for k, v in gw.items()},
            **{f"raw_{k}": v for k, v in raw.items() if k not in ("subscribers", "rounds")},
            "p99_ratio": round(gw["p99_ms"] / max(raw["p99_ms"], 0.1), 2),
            "rss_ratio": round(gw["rss_per_socket_kib"] / max(raw["rss_per_socket_kib"], 0.1), 2),
        },
    }
    redis_url = _redis_url()
    if redis_url:
        local = broadcast("gateway", env, tenant, building, unit, n_hop, rounds)
        hop = broadcast(
            "gateway", {**env, "ANJU_REDIS_URL": redis_url}, tenant, building, unit, n_hop, rounds
        )
        out[f"live_redis_hop_{n_hop}"] = {
            "in_process_p50_ms": local["p50_ms"],
            "in_process_p99_ms": local["p99_ms"],
            "redis_p50_ms": hop["p50_ms"],
            "redis_p99_ms": hop["p99_ms"],
            "added_p50_ms": round(hop["p50_ms"] - local["p50_ms"], 1),
            "added_p99_ms": round(hop["p99_ms"] - local["p99_ms"], 1),
            "missing": local["missing"] + hop["missing"],
        }
    else:
        out[f"live_redis_hop_{n_hop}"] = {"skipped": "no Redis at ANJU_BENCH_REDIS_URL"}
    return out


def main(size: str) -> dict:
    return run(size)
