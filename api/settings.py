"""One settings object; every knob is an ``ANJU_*`` environment variable."""

from __future__ import annotations

import re
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Prepared statements a tenant keeps hot on a connection it is served by (its document's
# statements and the membership check), for sizing the statement cache.
STATEMENTS_PER_TENANT = 4


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANJU_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    # A server database URL (postgresql://...). Empty: an embedded PostgreSQL under data_dir.
    database_url: str = ""
    # Used by the test suite instead of database_url; empty: embedded PostgreSQL.
    test_database_url: str = ""
    # Database created inside the embedded server.
    embedded_database: str = "anju"
    data_dir: Path = Path(".anju")
    host: str = "127.0.0.1"
    port: int = 8000
    # Requests to <slug>.<base_domain> resolve to tenant <slug> when no X-Tenant header is sent.
    base_domain: str = "localhost"
    # How long (seconds) a resolved tenant is cached in a gateway process.
    tenant_cache_ttl: float = 5.0
    # A fixed pool: overflow connections are closed as soon as the burst that opened them ends,
    # and each new one is cold for every tenant schema (bench: webhooks 1,472 -> 2,407 stored/s,
    # unit by id p99 262 -> 20 ms at the fixed rate, with 20 + 0 instead of 10 + 10).
    db_pool_size: int = 20
    db_max_overflow: int = 0
    # Tenant-affine routing (tenants/routing.py): the db_pool_size tenant connections are split
    # into lanes of this many; a tenant's sessions go to its home lane and, when that is busy,
    # to its next lanes, up to db_tenant_max_connections connections. 0: one pool for all.
    db_lane_size: int = Field(default=2, ge=0)
    db_tenant_max_connections: int = Field(default=8, ge=1)
    # A connection that has served this many tenant schemas is replaced (bounds the catalog
    # caches of each backend, whatever the number of tenants).
    db_max_schemas_per_connection: int = Field(default=500, ge=1)
    # With lanes: the main engine's pool, for shared-schema work (registry, sign-in, relay).
    db_shared_pool_size: int = Field(default=5, ge=1)
    # With lanes: tenant tables each lane connection plans for its home tenants at start, before
    # /readyz says ready (tenants/warming.py). Empty: no warming.
    db_warm_tables: list[str] = Field(default_factory=lambda: ["unit", "project", "building"])
    # Connections are recycled so per-connection catalog caches stay bounded with many schemas.
    db_pool_recycle: int = 1800
    # Prepared statements kept per connection (an LRU). A statement's text names its tenant's
    # schema, so a connection needs room for its schemas x their hot statements; unset: sized
    # from the schema budget (statement_cache_size below).
    db_statement_cache_size: int | None = Field(default=None, ge=0)
    # Refuse any statement of a tenant session that names another tenant's schema (defence in
    # depth beside schema_translate_map; api/db.py). Unset: on in development and test only.
    tenant_schema_guard: bool | None = None
    # Seconds a new database connection may take (a database that does not answer fails the
    # request with 503 within this, instead of hanging it).
    db_connect_timeout: float = Field(default=5.0, gt=0)
    redis_url: str = ""
    # Seconds a Redis connection (and a rate-limit count) may take: a Redis that does not answer
    # costs a request at most this, and then nothing for a few seconds (api/ratelimit.py).
    redis_timeout: float = Field(default=0.5, gt=0)
    # Redis the tests that need one use (CI sets it; without it they skip).
    test_redis_url: str = ""
    log_level: str = "INFO"
    log_json: bool = True
    # Query parser / validation caches (number of distinct documents kept).
    graphql_cache_size: int = Field(default=1024, ge=1)
    # Document limits, checked before anything runs (api/graphql/limits.py).
    graphql_max_tokens: int = Field(default=6000, ge=100)
    graphql_max_depth: int = Field(default=15, ge=3)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_cost: int = Field(default=5000, ge=10)
    # Operations a minute: per signed-in caller, per tenant, per anonymous client IP (0: no
    # limit). Counted in Redis when redis_url is set (all processes), else per process.
    rate_user_per_minute: int = Field(default=600, ge=0)
    rate_tenant_per_minute: int = Field(default=6000, ge=0)
    rate_anonymous_per_minute: int = Field(default=120, ge=0)
    # Seconds an HTTP request may run before it is stopped (0: no limit).
    request_timeout: float = Field(default=30.0, ge=0)
    # ---- the edge (docs/security.md, "Hostile input"): bodies over their limit are refused
    # with 413 from their Content-Length, or as soon as they stream past it.
    # A GraphQL JSON request (and any body other than the two below).
    http_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A multipart upload (media, imports); 0: the largest media file plus 1 MiB of form.
    http_max_upload_bytes: int = Field(default=0, ge=0)
    # A Stripe webhook delivery (Stripe's events are a few KiB).
    stripe_webhook_max_bytes: int = Field(default=512 * 1024, ge=1024)
    # A GraphQL document's length in characters, comments and whitespace included (the token
    # limit does not count comments).
    graphql_max_document_chars: int = Field(default=100_000, ge=1000)
    # Proxies (addresses or CIDR networks, JSON list) whose X-Forwarded-For is believed: the
    # client is the right-most address of that header that is not one of them. Empty: none
    # (the TCP peer is the client). Set it to the load balancers' addresses.
    trusted_proxies: list[str] = Field(default_factory=list)
    # ---- notifications (docs/notifications.md)
    # FCM: without a project id, pushes go to a log sender (the inbox still works).
    fcm_project_id: str = ""
    fcm_credentials_file: str = ""  # a service account's JSON key
    fcm_access_token: str = ""  # or an OAuth token obtained elsewhere (no call to Google)
    fcm_url: str = ""  # the FCM endpoint's base (empty: Google's)
    fcm_retries: int = Field(default=4, ge=0)  # the SDK's own retries of a 500 / 503
    # Messages in flight per worker (at most 500, FCM's batch): see api/notify/push.py.
    fcm_concurrency: int = Field(default=50, ge=1, le=500)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "Anju <no-reply@anju.local>"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    # ---- payments (docs/payments.md)
    # Without a secret key, payments are off (starting one answers CONFLICT, "payments are not
    # configured");
    # without a webhook secret, /webhooks/stripe answers 404.
    stripe_secret_key: str = ""
    stripe_publishable_key: str = ""
    stripe_webhook_secret: str = ""  # whsec_...: the platform endpoint's signing secret
    stripe_connect_webhook_secret: str = ""  # the Connect endpoint's (may be the same URL)
    stripe_api_url: str = ""  # Stripe's API base (empty: Stripe's own)
    # WeChat Pay inside the apps needs the app id registered with WeChat (else the apps are
    # offered cards and Alipay only).
    stripe_wechat_app_id: str = ""
    stripe_retries: int = Field(default=2, ge=0)  # network retries (idempotency keys kept)
    stripe_tolerance: int = Field(default=300, ge=1)  # seconds a signature stays valid
    # The platform's fee on each payment, in basis points of the amount, by plan.
    stripe_fee_bps: dict[str, int] = {"free": 200, "standard": 100, "pro": 50}
    # Stripe Billing: the price id of each paid plan, and the days a tenant may stay past due
    # before it is suspended.
    stripe_plan_prices: dict[str, str] = {}
    stripe_billing_grace_days: int = Field(default=7, ge=0)
    # ---- live updates (docs/live.md)
    # Run the outbox relay in the gateway process (one leads at a time, the others stand by).
    live_relay_in_process: bool = True
    # Seconds between relay polls when no NOTIFY woke it.
    live_relay_poll: float = Field(default=5.0, gt=0)
    # Hours published events are kept for clients that resume (``since``).
    live_retention_hours: float = Field(default=24.0, gt=0)
    # At most this many missed events are replayed; beyond, the client is told to refetch.
    live_replay_max: int = Field(default=1000, ge=1)
    live_max_subscriptions: int = Field(default=20, ge=1)
    # The Redis pub/sub channel of live events (pub/sub ignores Redis database numbers: two
    # deployments on one Redis server need two channels).
    live_channel: str = "anju:live"
    # Seconds between server pings on every WebSocket (0: none).
    live_keepalive: float = Field(default=15.0, ge=0)
    # Origins allowed to call the API from a browser (web consoles); empty: none.
    cors_origins: list[str] = Field(default_factory=list)

    # ---- identity and secrets (see docs/security.md). Empty outside production: a development
    # secret is generated once into <data_dir>/secrets.json; production refuses to start.
    # Ed25519 private key (PEM) that signs access tokens.
    jwt_private_key: str = ""
    # Public keys (PEM) of retired signing keys still accepted until their tokens expire.
    jwt_previous_public_keys: list[str] = Field(default_factory=list)
    jwt_issuer: str = "anju"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    # Field-encryption keys, "version:base64(32 bytes)" comma-separated; the highest version
    # encrypts, all decrypt.
    field_keys: str = ""
    # Key (base64, 32 bytes) from which each tenant's blind-index key is derived.
    blind_index_key: str = ""
    # Password sign-in: failures before a lockout, first lockout, longest lockout (seconds).
    login_max_failures: int = 5
    login_lockout_base: int = 60
    login_lockout_max: int = 3600

    # SMS sign-in codes: provider backend (console, capture), validity, attempts per code,
    # codes per phone per hour, codes per IP per hour, seconds between two codes to one phone.
    sms_backend: str = "console"
    sms_code_ttl: int = 300
    sms_code_max_attempts: int = 5
    sms_codes_per_phone_hour: int = 5
    sms_codes_per_ip_hour: int = 20
    sms_resend_after: int = 60
    email_backend: str = "console"
    # Invitations: validity (seconds) and the sign-up page the link points to.
    invitation_ttl: int = 7 * 24 * 3600
    invitation_url: str = "http://127.0.0.1:8000/invite"
    # Password of the demo staff that `anju seed-demo` creates (never seeded in production);
    # empty: generated once into <data_dir>/secrets.json and printed by the seed.
    demo_password: str = ""

    # ---- background jobs: `anju worker` processes; a worker inside the gateway too when
    # worker_in_process is true (unset: only in development, so `make run` has one).
    worker_in_process: bool | None = None
    worker_concurrency: int = Field(default=4, ge=1)
    # A worker writes a heartbeat every worker_heartbeat_seconds; one silent for
    # worker_stalled_seconds is taken for dead, and the jobs it was running are retried by
    # the sweep that runs on worker_stalled_cron (5 fields, or 6 with seconds last).
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    worker_stalled_seconds: float = Field(default=60.0, gt=0)
    worker_stalled_cron: str = "* * * * *"
    # A stalled job that has run this many times (the stalled run included) is failed, not
    # retried: a job that kills its worker (out of memory, a native crash) must not crash-loop
    # every worker forever.
    worker_stalled_max_attempts: int = Field(default=5, ge=1)

    # ---- media (photos, videos, floor plans). Backend "local": files under media_dir, served
    # by the gateway at /media/; "s3": any S3-compatible store (AWS, MinIO, OSS, COS...).
    media_backend: Literal["local", "s3"] = "local"
    media_dir: Path = Path(".anju/media")
    # Public base URL of stored media; empty: http://<host>:<port>/media (local) or the
    # bucket's own URL at the endpoint (s3).
    media_public_url: str = ""
    media_max_image_bytes: int = 20 * 1024 * 1024
    media_max_video_bytes: int = 200 * 1024 * 1024
    media_thumb_size: int = 480
    s3_bucket: str = ""
    s3_endpoint_url: str = ""  # empty: AWS
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""

    # ---- password reset (docs/security.md): how long an emailed reset link stays good
    # (seconds), and the page it points to (?tenant=<slug>&token=<token>). Reset codes by SMS
    # follow the sms_* settings above.
    password_reset_ttl: int = Field(default=3600, ge=60)
    password_reset_url: str = "http://127.0.0.1:8000/reset-password"  # noqa: S105
    # ---- private media (docs/inventory.md): links to private media (documents) are signed
    # with this key (base64 of 32 bytes; empty: derived from the blind-index key) and expire
    # after media_private_url_ttl seconds (at most 7 days: the longest a SigV4 presigned S3
    # link can live).
    media_url_key: str = ""
    media_private_url_ttl: int = Field(default=600, ge=10, le=604800)
    # ---- electronic signing (docs/signing.md): the RFC 3161 timestamp authority sealed
    # documents are timestamped by (empty: no timestamp, outside production only; production
    # refuses to seal without one) and how long to wait for it (seconds); the platform CA that
    # issues tenants' seal certificates, PEM certificate and PEM private key (empty: outside
    # production a development CA is generated once into <data_dir>/signing-ca.json;
    # production refuses to seal without one).
    signing_tsa_url: str = ""
    signing_tsa_timeout: float = Field(default=10.0, gt=0, le=120)
    signing_ca_cert: str = ""
    signing_ca_key: str = ""

    @model_validator(mode="after")
    def _worker_timings(self) -> Settings:
        import croniter

        if self.worker_stalled_seconds < 2 * self.worker_heartbeat_seconds:
            raise ValueError(
                "ANJU_WORKER_STALLED_SECONDS must be at least twice "
                "ANJU_WORKER_HEARTBEAT_SECONDS (a live worker is never stalled)"
            )
        if not croniter.croniter.is_valid(self.worker_stalled_cron):
            raise ValueError("ANJU_WORKER_STALLED_CRON is not a cron expression")
        return self

    @field_validator("db_warm_tables")
    @classmethod
    def _table_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
                raise ValueError(f"not a table name: {name!r}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ip_network(entry, strict=False)  # a ValueError names the entry at fault
        return value

    @property
    def max_upload_bytes(self) -> int:
        largest = max(self.media_max_image_bytes, self.media_max_video_bytes)
        return self.http_max_upload_bytes or largest + 1024 * 1024

    @property
    def is_dev(self) -> bool:
        return self.env == "development"

    @property
    def db_lanes_on(self) -> bool:
        """Tenant sessions routed through lanes (tenants/routing.py)."""
        return 0 < self.db_lane_size < self.db_pool_size

    @property
    def statement_cache_size(self) -> int:
        """Prepared statements kept per connection: ``ANJU_DB_STATEMENT_CACHE_SIZE``, else
        ``STATEMENTS_PER_TENANT`` for each schema a connection may serve (at least 1,024).
        With a budget of 1,500 schemas and 1,024 statements, 10,000 tenants ran at p50 335 ms
        against 10 ms with 4,096 (docs/performance.md): evicted statements are prepared again
        on every request."""
        if self.db_statement_cache_size is not None:
            return self.db_statement_cache_size
        return max(1024, STATEMENTS_PER_TENANT * self.db_max_schemas_per_connection)

    @property
    def tenant_schema_guard_on(self) -> bool:
        if self.tenant_schema_guard is None:
            return self.env != "production"
        return self.tenant_schema_guard

    @property
    def run_worker_in_process(self) -> bool:
        return self.is_dev if self.worker_in_process is None else self.worker_in_process

    @property
    def plans(self) -> list[str]:
        """The plans a tenant may be on: those with a platform fee or a Stripe price."""
        return sorted(set(self.stripe_fee_bps) | set(self.stripe_plan_prices))


@lru_cache
def get_settings() -> Settings:
    return Settings()
