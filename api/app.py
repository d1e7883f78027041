"""The gateway: ``create_app(settings) -> Starlette``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import console, health
from api.client import http as client_http
from api.db import make_engine, server_url
from api.graphql.schema import build_schema
from api.graphql.view import GraphQLView
from api.http import BodyLimit, RequestTimeout, SecurityHeaders
from api.live.bus import make_bus
from api.live.hub import Hub
from api.live.relay import Relay
from api.live.schema import to_object
from api.live.ws import LiveEndpoint
from api.media import http as media_http
from api.media.storage import make_storage
from api.notify import Senders
from api.notify.email import make_email_sender
from api.notify.sms import make_sender
from api.payment import http as payment_http
from api.ratelimit import make_limiter
from api.sales import http as sales_http
from api.security.kit import build_kit
from api.settings import Settings
from api.unavailable import UnavailableMiddleware
from tenants.middleware import TenantMiddleware
from tenants.registry import TenantCache
from tenants.sessions import TenantDatabase
from tenants.warming import Warmup, warm


def create_app(
    settings: Settings, *, url: URL | None = None, engine: AsyncEngine | None = None
) -> Starlette:
    owned = engine is None
    if engine is None:
        engine = make_engine(url or server_url(settings), settings)
    db = TenantDatabase.routed(engine, settings)
    cache = TenantCache(engine, settings.tenant_cache_ttl)
    warmup = Warmup()
    schema = build_schema(settings)
    senders = Senders(
        sms=make_sender(settings.sms_backend),
        email=make_email_sender(settings.email_backend, settings),
    )
    kit = build_kit(settings)
    storage = make_storage(settings, kit)
    limiter = make_limiter(settings.redis_url, settings.redis_timeout)
    graphql = GraphQLView(
        schema,
        db,
        kit,
        senders,
        storage,
        graphql_ide="graphiql" if settings.is_dev else None,
        allow_queries_via_get=False,
        # File uploads (imports, media) use the GraphQL multipart request spec. Calls are
        # authorised by a bearer token, never a cookie, so a cross-site form post is anonymous.
        multipart_uploads_enabled=True,
        production=settings.env == "production",
        limiter=limiter,
        limits=(
            settings.rate_user_per_minute,
            settings.rate_tenant_per_minute,
            settings.rate_anonymous_per_minute,
        ),
    )

    bus = make_bus(settings.redis_url, settings.live_channel, settings.redis_timeout)
    hub = Hub(schema._schema, engine, to_object=to_object)
    relay = Relay(
        engine,
        bus,
        poll=settings.live_relay_poll,
        retention=timedelta(hours=settings.live_retention_hours),
    )
    live = LiveEndpoint(
        schema,
        hub,
        db,
        kit,
        trusted=graphql.trusted,
        production=settings.env == "production",
        max_tokens=settings.graphql_max_tokens,
        max_chars=settings.graphql_max_document_chars,
        max_subscriptions=settings.live_max_subscriptions,
        replay_max=settings.live_replay_max,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything loaded so far (schema, mappers, compiled caches) lives as long as the
        # process: keep it out of the collector's way, and collect the young generation less
        # often. Full collections otherwise pause a busy gateway for ~100 ms every few seconds.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        hub.start()
        await bus.start(hub.on_bus, hub.on_resume)
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(warm(db, settings.db_warm_tables, warmup, cache), name="anju-warm")
        ]
        if settings.live_relay_in_process:
            tasks.append(asyncio.create_task(relay.run(), name="anju-live-relay"))
        if settings.live_keepalive:
            tasks.append(
                asyncio.create_task(
                    hub.keepalive(settings.live_keepalive), name="anju-live-keepalive"
                )
            )
        worker = None
        if settings.run_worker_in_process:
            from api.jobs import run_worker

            worker = asyncio.create_task(
                run_worker(
                    settings,
                    engine,
                    engine.url,
                    concurrency=settings.worker_concurrency,
                    install_signal_handlers=False,
                    name="anju-gateway-worker",
                    db=db,
                )
            )
        yield
        for task in [*tasks, *([worker] if worker is not None else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await bus.close()
        await hub.stop()
        await db.dispose()
        if owned:
            await engine.dispose()

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", live),
        *client_http.routes(cache, db),
        *payment_http.routes(engine, settings, cache, db, kit),
        *sales_http.routes(cache, db, kit),
        *health.routes(engine, warmup),
        *media_http.routes(storage),
        *console.routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.tenant_cache = cache
    app.state.db = db  # the tenant database: its lanes and their stats
    app.state.warmup = warmup
    app.state.schema = schema
    app.state.kit = kit
    app.state.sms = senders.sms
    app.state.email = senders.email
    app.state.storage = storage
    app.state.hub = hub
    app.state.relay = relay
    # Outermost last: the client address first (behind trusted proxies), headers on every
    # answer (refusals too), CORS preflights answered before tenant resolution, an oversized
    # body refused before the tenant is looked up, the time limit innermost (around the
    # GraphQL work).
    app.add_middleware(RequestTimeout, seconds=settings.request_timeout)
    app.add_middleware(TenantMiddleware, cache=cache, base_domain=settings.base_domain)
    app.add_middleware(
        BodyLimit,
        default=settings.http_max_body_bytes,
        multipart=settings.max_upload_bytes,
        paths={payment_http.WEBHOOK_PATH: settings.stripe_webhook_max_bytes},
    )
    app.add_middleware(UnavailableMiddleware)  # database out of reach: 503, not 500
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-tenant", "x-anju-app"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders, production=settings.env == "production")
    if settings.trusted_proxies:  # uvicorn's walk: the right-most untrusted X-Forwarded-For
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
