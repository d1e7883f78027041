"""``POST /webhooks/stripe``: verify, route, store once, queue; answer fast.

- No signing secret configured: 404 (the endpoint does not exist).
- The signature is checked on the raw body (Stripe's scheme: HMAC-SHA256 of ``t.body``, within
  the tolerance); a bad or old one, or a body that is not an event: 400, nothing stored.
- Event types we do not handle: 200 and nothing stored (Stripe stops sending them).
- An event of a connected account goes to the tenant holding that account; an unknown account,
  or an object whose metadata names another tenant: 400, nothing stored.
- The event is inserted once by its id (a repeat is answered 200 as a duplicate); its job is
  queued by the same statement (one round trip, atomic without a transaction).
- Which tenant holds an account (or a plan's customer) is remembered for ``ROUTE_TTL`` seconds
  (found ones only: an unknown account is looked up every time)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import InstrumentedAttribute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.jobs import task_name
from api.payment.models import JsonObject
from api.settings import Settings
from tenants.models import Tenant

# Connected-account events we act on.
PAYMENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
    }
)
# Platform events about the tenants' own plans (Stripe Billing).
BILLING = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
HANDLED = PAYMENTS | BILLING
ROUTE_TTL = 30.0


@dataclass(frozen=True, slots=True)
class Route:
    """The tenant an event goes to."""

    id: uuid.UUID
    slug: str


_routes: dict[tuple[str, str], tuple[float, Route]] = {}


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def verify(body: bytes, header: str | None, secrets: list[str], tolerance: int) -> bool:
    payload = body.decode("utf-8", errors="replace")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
            return True
        except stripe.SignatureVerificationError:
            continue
    return False


async def receive(request: Request, engine: AsyncEngine, settings: Settings) -> Response:
    secrets = [
        s for s in (settings.stripe_webhook_secret, settings.stripe_connect_webhook_secret) if s
    ]
    if not secrets:
        return Response("not found", status_code=404)
    body = await request.body()  # at most stripe_webhook_max_bytes (api/http.py BodyLimit)
    if not verify(
        body, request.headers.get("stripe-signature"), secrets, settings.stripe_tolerance
    ):
        return _refuse(400, "bad signature")
    try:
        event = json.loads(body)
        event_id, kind, created = event["id"], event["type"], int(event["created"])
        obj = event["data"]["object"]
        if not isinstance(event_id, str) or not event_id.startswith("evt_"):
            raise ValueError(event_id)
    except (ValueError, KeyError, TypeError):
        return _refuse(400, "not a Stripe event")
    if kind not in HANDLED:
        return JSONResponse({"received": True, "ignored": kind})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        done = await store(conn, event_id, kind, created, obj, event, body.decode())
    if done.refused:
        return _refuse(400, done.refused)
    if done.stored is None:
        return JSONResponse({"received": True, "ignored": kind})
    return JSONResponse({"received": True, "duplicate": not done.stored})


# The event once by its id and, only when it was new, its job (api/jobs.py writes the same
# columns of procrastinate's table): one statement, prepared once per connection.
STORE_AND_QUEUE = text(
    "WITH stored AS (INSERT INTO shared.stripe_event (id, type, account, tenant_id, created, "
    "payload, received_at, attempts, outcome) VALUES (:id, :type, :account, :tenant_id, "
    ":created, CAST(:payload AS jsonb), now(), 0, '') ON CONFLICT (id) DO NOTHING RETURNING id) "
    "INSERT INTO shared.procrastinate_jobs (queue_name, task_name, priority, args) "
    "SELECT 'default', :task, 0, CAST(:args AS jsonb) FROM stored RETURNING id"
)


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of an event: refused (why), or stored (True), a duplicate (False) or
    ignored (None)."""

    refused: str | None = None
    stored: bool | None = None


async def store(
    conn: AsyncConnection,
    event_id: str,
    kind: str,
    created: int,
    obj: Any,
    event: JsonObject,
    raw: str | None = None,
) -> Stored:
    """Store a verified event once (``raw``: its JSON as received; ``obj``: its data.object)
    and queue its job, in one statement."""
    if kind not in HANDLED:
        return Stored()
    account = event.get("account")
    if kind in BILLING:
        customer = obj.get("customer") if isinstance(obj, dict) else None
        if account or not isinstance(customer, str):
            return Stored("a billing event is the platform's, about a customer")
        tenant = await _route(conn, Tenant.stripe_customer_id, customer)
        if tenant is None:
            return Stored("unknown customer")
    else:
        if not account:
            return Stored("a payment event without its connected account")
        tenant = await _route(conn, Tenant.stripe_account_id, account)
        if tenant is None:
            return Stored("unknown connected account")
    named = (obj.get("metadata") or {}).get("tenant_id") if isinstance(obj, dict) else None
    if named is not None and named != str(tenant.id):
        return Stored("the event's object belongs to another tenant")
    task = _task_for(kind)
    job = await conn.scalar(
        STORE_AND_QUEUE,
        {
            "id": event_id,
            "type": kind,
            "account": account,
            "tenant_id": tenant.id,
            "created": created,
            "payload": raw if raw is not None else json.dumps(event),
            "task": task_name(task),
            "args": json.dumps({"tenant": tenant.slug, "event_id": event_id}),
        },
    )
    return Stored(stored=job is not None)


def _task_for(kind: str) -> Any:  # a procrastinate task (its Task type is generic over it)
    """The job that applies an event of this type."""
    from api.payment import tasks

    return tasks.apply_billing_event if kind in BILLING else tasks.apply_stripe_event


async def _route(
    conn: AsyncConnection, column: InstrumentedAttribute[str | None], key: str
) -> Route | None:
    """The tenant whose ``column`` is ``key``, or None."""
    now = time.monotonic()
    hit = _routes.get((column.key, key))
    if hit is not None and hit[0] > now:
        return hit[1]
    row = (await conn.execute(select(Tenant.id, Tenant.slug).where(column == key))).first()
    if row is None:
        return None
    tenant = Route(row.id, row.slug)
    if len(_routes) > 10_000:
        _routes.clear()
    _routes[(column.key, key)] = (now + ROUTE_TTL, tenant)
    return tenant


# A stored event whose processing never completed (its job failed for good, or was lost)
# gets a new job, unless one is still waiting or running for it.
REQUEUE = text(
    "INSERT INTO shared.procrastinate_jobs (queue_name, task_name, priority, args) "
    "SELECT 'default', CAST(:task AS varchar), 0, "
    "jsonb_build_object('tenant', t.slug, 'event_id', e.id) "
    "FROM shared.stripe_event e JOIN shared.tenant t ON t.id = e.tenant_id "
    "WHERE e.id = :id AND e.processed_at IS NULL AND NOT EXISTS (SELECT 1 FROM "
    "shared.procrastinate_jobs j WHERE j.task_name = CAST(:task AS varchar) "
    "AND j.args->>'event_id' = e.id AND j.status IN ('todo', 'doing')) RETURNING id"
)


async def requeue(conn: AsyncConnection, event_id: str, kind: str) -> bool:
    """Queue a stored event again if it was never processed and no job of it is waiting or
    running. Returns whether it was queued."""
    job = await conn.scalar(REQUEUE, {"id": event_id, "task": task_name(_task_for(kind))})
    return job is not None


async def replay(engine: AsyncEngine, settings: Settings, since: int) -> dict[str, int]:
    """Fetch the platform's events and every connected account's since ``since`` (unix
    seconds) from Stripe and store those that never arrived (``anju stripe replay``); one
    stored already whose processing never completed is queued again (``requeued``)."""
    from api.payment import stripe_api

    counts = {"stored": 0, "requeued": 0, "duplicate": 0, "ignored": 0, "refused": 0}
    async with engine.connect() as conn:
        accounts = list(
            await conn.scalars(
                select(Tenant.stripe_account_id).where(Tenant.stripe_account_id.is_not(None))
            )
        )
    for account in [None, *accounts]:  # the platform's own (plans), then each tenant's
        async for ev in stripe_api.events_since(settings, since, account):
            event = ev.to_dict(for_json=True)  # decimal strings stay strings
            if account:
                event.setdefault("account", account)
            async with engine.begin() as conn:
                done = await store(
                    conn,
                    event["id"],
                    event["type"],
                    int(event["created"]),
                    event["data"]["object"],
                    event,
                )
                again = done.stored is False and await requeue(conn, event["id"], event["type"])
            key = (
                "refused"
                if done.refused
                else "ignored"
                if done.stored is None
                else "stored"
                if done.stored
                else "requeued"
                if again
                else "duplicate"
            )
            counts[key] += 1
    return counts
