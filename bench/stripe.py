"""The Stripe webhook scenario (issue #10): signed ``payment_intent.succeeded`` events posted to
``POST /webhooks/stripe`` of one gateway process, every event delivered twice. The load
generator is its own process (``Loader``: bench/load.py's client, sending the requests in
order and reading each answer).

- ``events_stored_per_s``: events verified and stored a second, each with its job queued in the
  same transaction (the endpoint's whole work): first deliveries of distinct events, 32 in
  flight (closed loop), after 300 unmeasured ones. ``redelivered_per_s``: all of them again,
  each answered ``{"duplicate": true}``.
- ``fixed_rate_*``, ``*_p50_ms``, ``*_p99_ms``: a stream at 70 % of the gateway's stored rate
  (as bench/http.py does), every event in it twice, the repeat half a second after the first;
  latency of all its deliveries, counted from the scheduled time (open loop), after one second
  of the same stream that is not measured.
- ``events_processed_per_s``: what one ``anju worker`` process (default concurrency) does with
  real events. Deposits are started first through GraphQL ``startDeposit(unitId, platform:
  IOS)`` (unit held, payment pending, a PaymentIntent made with the real ``stripe`` library on
  the loopback Stripe of tests/api/payment/stripe_server.py, run in a thread of this process);
  their PaymentIntents succeed on the fake and their events are delivered, twice, with no
  worker running. Then the worker starts and drains them: each job locks its event, fetches
  the PaymentIntent from the fake over HTTP, marks the payment paid, posts the journal,
  notifies the agent, reserves the unit and marks the event processed. The rate is the events
  over the span of their ``processed_at`` stamps (the worker's start-up is not in it); every
  outcome must be ``paid; unit reserved``. The receive measurements come after the worker has
  stopped: their events name PaymentIntents that do not exist, and their jobs stay queued.
- ``duplicates`` (must be 0): events of which more than one delivery answered
  ``"duplicate": false``, jobs queued beyond one an event, and of the processed events,
  payments paid, journals posted, units reserved or agents notified beyond one an event.
  ``stored_answers`` and ``duplicate_answers`` must both equal ``events``, as must
  ``stored_rows`` (rows of ``shared.stripe_event``).

Raw baseline (``python -m bench.stripe raw PORT``, its own process, same uvicorn settings as
bench/servers.py): a plain Starlette endpoint that checks the same ``Stripe-Signature`` (stdlib
``hmac``, same tolerance), reads the event id from the JSON and inserts the raw JSON with
asyncpg (pool of 10) into a table, ``ON CONFLICT DO NOTHING RETURNING``, answering the same
bodies. It opens no transaction, looks up no tenant and queues no job. Same bodies, same rate.
Ratios as in bench/http.py: ``throughput_ratio`` raw / gateway, latency ratios gateway / raw.

Target (issue #10): at least 1,000 events verified and stored a second on one process.

Database: ``anju_bench_stripe`` in the embedded bench cluster, as the other scenarios, or on
the server of ``ANJU_BENCH_DATABASE_URL`` when it is set (its database name is replaced).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal

WEBHOOK_SECRET = "whsec_bench_anju"
SECRET_KEY = "sk_test_bench_anju"
ACCOUNT = "acct_benchanju"
RAW_TABLE = "bench_raw_event"
PATH = "/webhooks/stripe"
CONCURRENCY = 32
REPEAT_AFTER_S = 0.5
START = (
    "mutation($u: ID!) { startDeposit(unitId: $u, platform: IOS) { __typename "
    "... on DepositPayload { clientSecret payment { id } } ... on UserError { code message } } }"
)


# ---------------------------------------------------------------- events


def sign(body: bytes, ts: int, secret: str = WEBHOOK_SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event(n: int, pi: str, tenant_id: str, created: int) -> bytes:
    return json.dumps(
        {
            "id": f"evt_{n}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "account": ACCOUNT,
            "created": created,
            "livemode": False,
            "data": {
                "object": {
                    "id": pi,
                    "object": "payment_intent",
                    "metadata": {"tenant_id": tenant_id},
                }
            },
        },
        separators=(",", ":"),
    ).encode()


def deliveries(first: int, pis: list[str], tenant_id: str) -> list[tuple[str, dict, bytes]]:
    """One signed delivery per event ``evt_<first + i>`` (``pis[i]`` its PaymentIntent)."""
    ts = int(time.time())
    out = []
    for i, pi in enumerate(pis):
        body = event(first + i, pi, tenant_id, ts)
        out.append((PATH, {"Stripe-Signature": sign(body, ts)}, body))
    return out


def twice(reqs: list, lag: int) -> tuple[list, list[int]]:
    """Every request twice, the repeat ``lag`` places after the first: (stream, the index of
    each stream entry's event)."""
    stream, which = [], []
    for i, r in enumerate(reqs):
        stream.append(r)
        which.append(i)
        if i >= lag:
            stream.append(reqs[i - lag])
            which.append(i - lag)
    for i in range(max(0, len(reqs) - lag), len(reqs)):
        stream.append(reqs[i])
        which.append(i)
    return stream, which


# ---------------------------------------------------------------- the load generator

STORED, DUPLICATE, OTHER = 1, 2, 0


async def _request(reader, writer, raw: bytes) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
    return status, (await reader.readexactly(length) if length else b"")


async def _post(port: int, requests: list, rate: float, concurrency: int) -> dict:
    """Send ``requests`` in order: ``rate`` > 0: open loop at that rate (latency from the
    scheduled time); else closed loop, ``concurrency`` in flight. Outcome and latency of each."""
    from bench.load import _encode

    raws = [_encode(port, p, h, b) for p, h, b in requests]
    n = len(raws)
    size = max(concurrency, 256) if rate else concurrency
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(size):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    outcomes = [OTHER] * n
    latencies = [0.0] * n
    kinds: dict[str, int] = {}

    async def one(i: int, scheduled: float) -> None:
        reader, writer = await pool.get()
        try:
            status, body = await _request(reader, writer, raws[i])
            if status != 200:
                kinds[f"HTTP {status}"] = kinds.get(f"HTTP {status}", 0) + 1
            elif b'"duplicate":true' in body:
                outcomes[i] = DUPLICATE
            elif b'"duplicate":false' in body:
                outcomes[i] = STORED
            else:
                kinds["unexpected body"] = kinds.get("unexpected body", 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            pool.put_nowait((reader, writer))
        latencies[i] = time.perf_counter() - scheduled

    t0 = time.perf_counter()
    if rate:
        tasks = []
        for i in range(n):
            at = t0 + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, at)))
        await asyncio.gather(*tasks)
    else:
        nxt = iter(range(n))

        async def worker() -> None:
            for i in nxt:
                await one(i, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    while not pool.empty():
        pool.get_nowait()[1].close()
    return {"outcomes": outcomes, "latencies": latencies, "seconds": elapsed, "kinds": kinds}


def _loader(conn) -> None:
    import uvloop

    uvloop.install()
    while (job := conn.recv()) is not None:
        conn.send(asyncio.run(_post(*job)))
    conn.close()


class Loader:
    """The load generator in its own process (as bench/load.py's, but sending the requests in
    order and reading the answers), started once for the scenario."""

    def __enter__(self) -> Loader:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_loader, args=(child,))
        self.proc.start()
        return self

    def post(self, port: int, requests: list, *, rate: float = 0.0) -> dict:
        self.pipe.send((port, requests, rate, CONCURRENCY))
        return self.pipe.recv()

    def __exit__(self, *exc) -> None:
        if self.proc.is_alive():
            self.pipe.send(None)
            self.proc.join(10)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


# ---------------------------------------------------------------- the raw baseline


def raw_app(dsn: str, secret: str, tolerance: int):
    import contextlib

    import asyncpg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    state: dict = {}
    key = secret.encode()
    insert = (
        f"INSERT INTO {RAW_TABLE} (id, payload) VALUES ($1, $2::jsonb) "
        "ON CONFLICT (id) DO NOTHING RETURNING true"
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["pool"] = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        yield
        await state["pool"].close()

    def refuse(message: str) -> Response:
        return Response(json.dumps({"error": message}), 400, media_type="application/json")

    async def webhook(request: Request) -> Response:
        body = await request.body()
        ts, sigs = None, []
        for part in request.headers.get("stripe-signature", "").split(","):
            k, _, v = part.partition("=")
            if k == "t":
                ts = v
            elif k == "v1":
                sigs.append(v)
        if not ts or not ts.isdigit() or time.time() - int(ts) > tolerance:
            return refuse("bad signature")
        expected = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, s) for s in sigs):
            return refuse("bad signature")
        try:
            event_id = json.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            return refuse("not a Stripe event")
        async with state["pool"].acquire() as c:
            stored = await c.fetchval(insert, event_id, body.decode())
        return Response(
            b'{"received":true,"duplicate":%s}' % (b"false" if stored else b"true"),
            media_type="application/json",
        )

    return Starlette(routes=[Route(PATH, webhook, methods=["POST"])], lifespan=lifespan)


def _serve_raw(port: int) -> None:
    from api.db import asyncpg_dsn, server_url
    from api.settings import get_settings
    from bench.servers import serve

    settings = get_settings()
    app = raw_app(
        asyncpg_dsn(server_url(settings)), settings.stripe_webhook_secret, settings.stripe_tolerance
    )
    serve(app, port)


def start_raw(env: dict) -> tuple[subprocess.Popen, int]:
    """Like bench.http.start, for this module's raw server."""
    from bench.http import _free_port

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.stripe", "raw", str(port)], env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("raw server did not start")


# ---------------------------------------------------------------- setup


def _database_url(base):
    from sqlalchemy.engine import make_url

    from api.db import embedded_url

    given = os.environ.get("ANJU_BENCH_DATABASE_URL")
    if given:
        return make_url(given).set(drivername="postgresql+asyncpg", database="anju_bench_stripe")
    return embedded_url(base, "bench-pg", "anju_bench_stripe")


async def _setup(settings, url, n_units: int) -> dict:
    import asyncpg

    from api.db import asyncpg_dsn, ensure_database, make_engine
    from api.ids import uuid7
    from api.security.kit import build_kit
    from bench.seed import UNIT_COLUMNS, tenant_with_admin, unit_record
    from tenants.migrate import upgrade_shared
    from tenants.sessions import TenantDatabase

    await ensure_database(url, recreate=True)
    engine = make_engine(url, settings)
    await upgrade_shared(engine)
    t, token = await tenant_with_admin(
        engine,
        TenantDatabase(engine),
        build_kit(settings),
        "bench-stripe",
        "Bench Stripe",
        "pay@bench.example.com",
    )
    await engine.dispose()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "UPDATE shared.tenant SET stripe_account_id = $1 WHERE id = $2",
            ACCOUNT,
            uuid.UUID(str(t.id)),
        )
        await conn.execute(
            f"CREATE TABLE {RAW_TABLE} (id text PRIMARY KEY, payload jsonb NOT NULL)"
        )
        pid, bid = uuid7(), uuid7()
        await conn.execute(
            f'INSERT INTO "{t.schema_name}".project (id, name, city, district, address) '
            "VALUES ($1, 'Project', 'Shanghai', 'Pudong', '')",
            pid,
        )
        floors = n_units // 8 + 1
        await conn.execute(
            f'INSERT INTO "{t.schema_name}".building (id, project_id, name, floors) '
            "VALUES ($1, $2, '1', $3)",
            bid,
            pid,
            floors,
        )
        rng = random.Random(10)
        units = []
        for j in range(n_units):
            floor, area = j // 8 + 1, Decimal(f"{rng.uniform(45, 140):.2f}")
            units.append(
                unit_record(
                    id=uuid7(),
                    project_id=pid,
                    building_id=bid,
                    floor=floor,
                    number=f"{floor}{j % 8 + 1:02d}",
                    gross_area=area,
                    status="available",
                    list_price=int(area * rng.randint(40_000, 90_000)) * 100,
                    rooms=2,
                )
            )
        await conn.copy_records_to_table(
            "unit", schema_name=t.schema_name, columns=UNIT_COLUMNS, records=units
        )
    finally:
        await conn.close()
    return {"slug": t.slug, "id": str(t.id), "token": token, "units": [str(u[0]) for u in units]}


async def _start_deposits(port: int, tenant: dict, concurrency: int = 8) -> list[str]:
    """startDeposit for every unit through the gateway: the PaymentIntent ids."""
    import httpx

    headers = {"X-Tenant": tenant["slug"], "Authorization": f"Bearer {tenant['token']}"}
    units = iter(tenant["units"])
    out: list[str] = []

    async def worker(client) -> None:
        for unit in units:
            res = await client.post("/graphql", json={"query": START, "variables": {"u": unit}})
            data = res.json()
            got = (data.get("data") or {}).get("startDeposit") or {}
            if got.get("__typename") != "DepositPayload":
                raise RuntimeError(f"startDeposit failed: {json.dumps(data)[:500]}")
            out.append(got["clientSecret"].split("_secret_")[0])

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return out


async def _query(url, sql: str, *args):
    import asyncpg

    from api.db import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def _one(url, sql: str, *args):
    return asyncio.run(_query(url, sql, *args))[0][0]


# ---------------------------------------------------------------- phases


def processing(load: Loader, url, env: dict, port: int, fake, tenant: dict) -> dict:
    """Deposits, their events delivered twice with no worker, then one worker drains them."""
    pis = asyncio.run(_start_deposits(port, tenant))
    for pi in pis:
        fake.succeed(pi)
    reqs = deliveries(1, pis, tenant["id"])
    n = len(reqs)
    stream, which = twice(reqs, lag=min(n, 64))
    posted = load.post(port, stream)
    posted["events"] = [1 + i for i in which]
    ids = [f"evt_{1 + i}" for i in range(n)]
    worker = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import main; main()", "worker"], env=env
    )
    done = (
        "SELECT count(*) FROM shared.stripe_event WHERE id = ANY($1) AND processed_at IS NOT NULL"
    )
    deadline = time.time() + 300
    try:
        while _one(url, done, ids) < n:
            if time.time() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not process every event")
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(60)
    span = _one(
        url,
        "SELECT extract(epoch FROM max(processed_at) - min(processed_at)) "
        "FROM shared.stripe_event WHERE id = ANY($1)",
        ids,
    )
    outcomes = dict(
        asyncio.run(
            _query(
                url,
                "SELECT outcome, count(*) FROM shared.stripe_event "
                "WHERE id = ANY($1) GROUP BY outcome",
                ids,
            )
        )
    )
    s = (
        '"'
        + _one(url, "SELECT schema_name FROM shared.tenant WHERE slug = $1", tenant["slug"])
        + '"'
    )
    effects = asyncio.run(
        _query(
            url,
            (
                f"SELECT (SELECT count(*) FROM {s}.payment WHERE status = 'paid'), "
                f"(SELECT count(*) FROM {s}.journal WHERE source LIKE 'payment:%:paid'), "
                f"(SELECT count(*) FROM {s}.unit WHERE status = 'reserved'), "
                f"(SELECT count(*) FROM {s}.notification WHERE template = 'payment.received')"
            ),
        )
    )[0]
    return {
        "events": n,
        "per_s": (n - 1) / float(span) if span else 0.0,
        "outcomes": outcomes,
        # Payments paid, journals posted, units reserved, agents told beyond one an event.
        "applied_twice": sum(max(0, x - n) for x in effects),
        "posted": posted,
    }


def _send(load: Loader, port: int, reqs: list, events: list[int], rate: float = 0.0) -> dict:
    """``load.post``, and the number n of each request's event ``evt_<n>``."""
    return {**load.post(port, reqs, rate=rate), "events": events}


def run(size: str) -> dict:
    from api.settings import Settings
    from bench.http import server_env, start, stop
    from tests.api.payment.stripe_server import FakeStripe

    small = size == "small"
    n_deposits, n_events, fixed_s = (100, 1500, 3.0) if small else (500, 6000, 8.0)
    warm = 300
    base = Settings(env="development", log_level="WARNING")
    url = _database_url(base)
    settings = base.model_copy(update={"access_token_ttl": 7200})
    tenant = asyncio.run(_setup(settings, url, n_deposits))
    fake = FakeStripe(api_key=SECRET_KEY).start()
    env = server_env(url, base)
    env.update(
        ANJU_STRIPE_SECRET_KEY=SECRET_KEY,
        ANJU_STRIPE_PUBLISHABLE_KEY="pk_test_bench_anju",
        ANJU_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ANJU_STRIPE_API_URL=fake.url,
        ANJU_STRIPE_WECHAT_APP_ID="wx_bench_anju",
    )
    gw, gw_port = start("gateway", env)
    raw, raw_port = start_raw(env)
    ports = {"gateway": gw_port, "raw": raw_port}
    try:
        with Loader() as load:
            proc = processing(load, url, env, gw_port, fake, tenant)
            # Receive only, from evt_<n_deposits + 1> on (PaymentIntents that do not exist).
            n0 = n_deposits + 1
            every = list(range(n0, n0 + warm + n_events))
            reqs = deliveries(n0, [f"pi_{n}" for n in every], tenant["id"])
            warmed = {k: _send(load, p, reqs[:warm], every[:warm]) for k, p in ports.items()}
            firsts = {k: _send(load, p, reqs[warm:], every[warm:]) for k, p in ports.items()}
            agains = {k: _send(load, p, reqs, every) for k, p in ports.items()}
            stored = {k: n_events / r["seconds"] for k, r in firsts.items()}
            # The fixed rate: 70 % of what the gateway stores a second, as in bench/http.py.
            rate = 0.7 * stored["gateway"]
            lag = max(1, int(rate * REPEAT_AFTER_S / 2))
            n1, m = n0 + warm + n_events, int(rate * (1 + fixed_s) / 2)
            events = deliveries(n1, [f"pi_{n1 + i}" for i in range(m)], tenant["id"])
            # The first second of the stream is a warm-up at the same rate, not measured.
            w = int(rate / 2)
            stream, which = twice(events[:w], lag)
            steady, which2 = twice(events[w:], lag)
            which, which2 = [n1 + i for i in which], [n1 + w + i for i in which2]
            fixed_warm = {k: _send(load, p, stream, which, rate) for k, p in ports.items()}
            fixed = {k: _send(load, p, steady, which2, rate) for k, p in ports.items()}
    finally:
        stop(gw, raw)
        fake.stop()
    ids = [f"evt_{i}" for i in range(1, n1 + m)]
    rows = _one(url, "SELECT count(*) FROM shared.stripe_event WHERE id = ANY($1)", ids)
    jobs, distinct = asyncio.run(
        _query(
            url,
            (
                "SELECT count(*), count(DISTINCT args->>'event_id') FROM shared.procrastinate_jobs "
                "WHERE task_name = 'payment:apply_stripe_event'"
            ),
        )
    )[0]
    p50 = {k: _pct(x["latencies"], 0.50) for k, x in fixed.items()}
    p99 = {k: _pct(x["latencies"], 0.99) for k, x in fixed.items()}
    runs = (warmed, firsts, agains, fixed_warm, fixed)
    gw_runs = [proc["posted"], *(x["gateway"] for x in runs)]
    answered = {o: sum(x["outcomes"].count(o) for x in gw_runs) for o in (STORED, DUPLICATE)}
    stored_by_event = collections.Counter(
        e for x in gw_runs for e, o in zip(x["events"], x["outcomes"], strict=True) if o == STORED
    )
    kinds: collections.Counter = collections.Counter(proc["posted"]["kinds"])
    for run_ in runs:
        for k, x in run_.items():
            kinds.update({f"{k} {kind}": v for kind, v in x["kinds"].items()})
    return {
        "stripe_webhooks": {
            "events_stored_per_s": round(stored["gateway"]),
            "target_1000_per_s": "met" if stored["gateway"] >= 1000 else "missed",
            "raw_stored_per_s": round(stored["raw"]),
            "throughput_ratio": round(stored["raw"] / stored["gateway"], 2),
            "redelivered_per_s": round((warm + n_events) / agains["gateway"]["seconds"]),
            "raw_redelivered_per_s": round((warm + n_events) / agains["raw"]["seconds"]),
            "fixed_rate_deliveries_per_s": round(rate),
            "fixed_rate_events_per_s": round(rate / 2),
            "gateway_p50_ms": round(p50["gateway"], 2),
            "gateway_p99_ms": round(p99["gateway"], 2),
            "raw_p50_ms": round(p50["raw"], 2),
            "raw_p99_ms": round(p99["raw"], 2),
            "p50_ratio": round(p50["gateway"] / p50["raw"], 2),
            "p99_ratio": round(p99["gateway"] / p99["raw"], 2),
            "events_processed_per_s": round(proc["per_s"], 1),
            "worker_concurrency": base.worker_concurrency,
            "events_processed": proc["events"],
            "processed_outcomes": proc["outcomes"],
            "events": len(ids),
            "deliveries": 2 * len(ids),
            # Each event: one answer "duplicate": false, one "duplicate": true.
            "stored_answers": answered[STORED],
            "duplicate_answers": answered[DUPLICATE],
            "stored_rows": rows,
            # Events stored or applied more than once (by the answers, the queued jobs and
            # the effects of the worker's jobs): must be 0.
            "duplicates": sum(c > 1 for c in stored_by_event.values())
            + (jobs - distinct)
            + proc["applied_twice"],
            "jobs_queued": jobs,  # the worker deleted those of the events it processed
            "errors": sum(kinds.values()),
            "error_kinds": dict(kinds),
        }
    }


def main(size: str) -> dict:
    return run(size)


if __name__ == "__main__":
    if sys.argv[1] == "raw":
        _serve_raw(int(sys.argv[2]))
