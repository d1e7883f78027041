"""A loopback Stripe REST API (``/v1/...``) good enough for the real ``stripe`` library
(``StripeClient(base_addresses={"api": fake.url}, http_client=stripe.HTTPXClient())``).

Bodies (POST) and query strings (GET) are form-encoded with bracket keys, like Stripe's;
``parse_form`` turns them into nested dicts and lists, with every leaf a string. Answers use
Stripe's JSON shapes, and errors look like ``{"error": {"type", "code", "param", "message"}}``.

Endpoints:
- ``POST /v1/payment_intents``, ``GET|POST /v1/payment_intents/{id}``,
  ``POST /v1/payment_intents/{id}/cancel``
- ``POST /v1/refunds``, ``GET /v1/refunds/{id}``
- ``POST /v1/accounts``, ``GET /v1/accounts/{id}``, ``GET /v1/account``; ``POST /v1/account_links``
- ``POST /v1/customers``, ``GET /v1/customers/{id}``; ``POST /v1/ephemeral_keys``
- ``GET /v1/events`` (``created[gt|gte|lt|lte]``, ``type`` with ``*``, ``types[]``, ``limit``,
  ``starting_after``, ``ending_before``), newest first
- Billing: ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``; ``GET /v1/prices``
  (``lookup_keys[]``, ``active``, ``currency``, ``type``), ``GET /v1/prices/{id}``;
  ``GET /v1/subscriptions`` (``customer``, ``price``, ``status``: default not canceled, ``all``,
  ``ended`` or one status), ``GET|POST /v1/subscriptions/{id}`` (update: ``metadata``,
  ``cancel_at_period_end``), ``DELETE /v1/subscriptions/{id}`` (what the library's ``cancel``
  sends); ``GET /v1/invoices/{id}``. Lists take ``limit``, ``starting_after``, ``ending_before``
  and come newest first.

Behaviour:
- Every object belongs to the ``Stripe-Account`` it was created with (``None``: the platform).
  Reading it with another account gives a 404 ``resource_missing``. Accounts themselves
  belong to the platform and may also be read with their own ``Stripe-Account``. Events are
  listed for the ``Stripe-Account`` sent, or only the platform's when none is sent.
- ``Idempotency-Key`` is honoured on every POST, scoped to the ``Stripe-Account``. Reusing a key
  with the same method, path and parameters replays the first answer byte for byte, with
  ``Idempotent-Replayed: true``; different parameters give a 400 ``idempotency_error``. Only 2xx
  answers are stored, so a retry after an error runs again.
- Parameters the real API does not know give a 400 ``parameter_unknown`` (the list comes from
  the stripe library's ``*Params`` TypedDicts; the check is skipped if stripe can't be imported).
- ``application_fee_amount`` needs a ``Stripe-Account`` header or ``transfer_data[destination]``,
  as on the real API.
- API calls emit no events unless ``FakeStripe(api_events=True)``. The test controls
  (``succeed``, ``fail``, ``cancel``, ``event``...) emit them. As on the real API, an event has
  an ``account`` key only when it belongs to a connected account.
- ``expand[]`` works on any answer for fields holding the id of an object the fake stores
  (``customer``, ``subscription``, ``latest_invoice``, ``data.customer`` on lists...).
- Billing (shapes of API version 2026-10-28): prices come from ``add_price`` only (a lookup key
  moves to the newest price using it). A subscription item carries ``current_period_start|end``
  (the subscription itself has none), and an invoice names its subscription in
  ``parent.subscription_details.subscription`` (there is no top-level ``invoice.subscription``).
  ``complete_checkout`` makes the customer (if needed), the subscription and its first invoice
  (``billing_reason`` ``subscription_create``; paid unless the status is ``incomplete``), and
  emits ``customer.subscription.created`` then ``checkout.session.completed``. ``invoice``
  renews: it moves every item one interval on and bills the new period, or, when the latest
  invoice is still open, retries that one; a failure makes an active or trialing subscription
  ``past_due``, a payment makes a ``past_due``/``unpaid``/``incomplete`` one ``active``, both
  without a ``customer.subscription.updated`` event. Canceling (API or ``set_subscription_status``)
  sets ``canceled_at``/``ended_at`` and emits ``customer.subscription.deleted``.

Every request is recorded in ``requests`` as ``Call(method, path, headers, body)``: headers
with lower-cased names, and body the parsed form, or for a GET the parsed query string.

    with FakeStripe() as fake:          # or: fake = FakeStripe().start(); ...; fake.stop()
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url},
                                     http_client=stripe.HTTPXClient())
"""

from __future__ import annotations

import calendar
import copy
import importlib
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.loopback import LoopbackServer

API_VERSION = "2026-10-28.endive"  # stripe-python 16.1.0's _ApiVersion.CURRENT
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
DECLINE_MESSAGES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
}


# ---------------------------------------------------------------- form bodies

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(body: bytes | str) -> dict:
    """``a[b][0]=x&a[b][1]=y&m[k]=v&n=1`` -> ``{"a": {"b": ["x", "y"]}, "m": {"k": "v"},
    "n": "1"}``. A dict whose keys are all digits becomes a list (except under ``metadata``);
    ``[]`` appends. Leaves stay strings ("true", "1000", "" to unset), as Stripe sends them."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(key)
        parts = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])] if match else [key]
        node = root
        for i, part in enumerate(parts):
            if part == "":
                part = str(len(node))
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return _listify(root)


def _listify(node: Any, parent: str | None = None) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v, k) for k, v in node.items()}
    if out and parent != "metadata" and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


# ---------------------------------------------------------------- plumbing


class Call(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: dict


class StripeFault(Exception):
    """Raised by a handler; becomes ``{"error": {...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        error = {"type": type, "message": message}
        if code:
            error["code"] = code
        if param:
            error["param"] = param
        error.update(extra)
        self.status, self.error = status, error


def _missing(kind: str, obj_id: str, param: str = "id", status: int = 404) -> StripeFault:
    return StripeFault(status, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def _int(params: dict, name: str, *, required: bool = False, default: int | None = None):
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise StripeFault(
                400, f"Missing required param: {name}.", code="parameter_missing", param=name
            )
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeFault(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name
        ) from None


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _required(params: dict, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise StripeFault(
            400, f"Missing required param: {name}.", code="parameter_missing", param=name
        )
    return value


def _metadata(value: Any, current: dict | None = None) -> dict:
    """Stripe's metadata semantics: merged into ``current``; "" unsets a key or, alone, all."""
    out = dict(current or {})
    if value == "":
        return {}
    if isinstance(value, dict):
        for k, v in value.items():
            if v == "":
                out.pop(k, None)
            else:
                out[k] = str(v)
    return out


def _amount_text(amount: int, currency: str) -> str:
    return f"{amount} {currency}"


_PARAMS_CACHE: dict[str, frozenset[str] | None] = {}
# Accepted although stripe-python 16's TypedDicts no longer list them (older API versions).
_LEGACY_PARAMS = {
    "PaymentIntentCreateParams": {"payment_method_types"},
    "PaymentIntentUpdateParams": {"payment_method_types"},
}


def _known_params(name: str) -> frozenset[str] | None:
    """Top-level parameter names of ``stripe.params.<name>`` (``name`` may be dotted, e.g.
    ``checkout.SessionCreateParams``), without the request options."""
    if name not in _PARAMS_CACHE:
        try:
            from stripe._request_options import RequestOptions

            module, _, cls_name = ("stripe.params." + name).rpartition(".")
            cls = getattr(importlib.import_module(module), cls_name)
            names = set(cls.__annotations__) - set(RequestOptions.__annotations__)
            _PARAMS_CACHE[name] = frozenset(names | _LEGACY_PARAMS.get(name, set()))
        except Exception:
            _PARAMS_CACHE[name] = None
    return _PARAMS_CACHE[name]


def _add_interval(ts: int, interval: str, count: int = 1) -> int:
    """``ts`` moved on by ``count`` ``interval``s (day, week, month, year), in UTC; a month
    from Jan 31 is Feb 28/29, as Stripe bills."""
    if interval == "day":
        return ts + 86400 * count
    if interval == "week":
        return ts + 7 * 86400 * count
    months = count * (12 if interval == "year" else 1)
    t = time.gmtime(ts)
    index = t.tm_year * 12 + t.tm_mon - 1 + months
    year, month = divmod(index, 12)
    day = min(t.tm_mday, calendar.monthrange(year, month + 1)[1])
    return calendar.timegm((year, month + 1, day, t.tm_hour, t.tm_min, t.tm_sec))


SUBSCRIPTION_STATUSES = (
    "active",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)
ENDED = ("canceled", "incomplete_expired")


# ---------------------------------------------------------------- the server


class FakeStripe(LoopbackServer):
    def __init__(self, *, api_key: str | None = None, api_events: bool = False) -> None:
        """``api_key``: when set, the ``Authorization: Bearer`` key must equal it (else 401).
        ``api_events``: API calls emit the events the real API would (payment_intent.canceled
        on cancel; refund.created and charge.refunded on a refund)."""
        self.api_key = api_key
        self.api_events = api_events
        self.api_version = API_VERSION
        self.clock: Callable[[], int] = lambda: int(time.time())
        # unknown top-level parameters give a 400 parameter_unknown, like the real API
        self.strict_params = True
        self.refund_status = "succeeded"  # the status new refunds get ("pending" also works)
        self._lock = threading.RLock()
        self.reset()
        app = Starlette(
            routes=[Route("/{path:path}", self._asgi, methods=["GET", "POST", "DELETE"])]
        )
        super().__init__(
            app,
            label="fake Stripe",
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._routes: list[tuple[str, re.Pattern, Callable, str | None]] = [
            (m, re.compile(f"^{p}$"), h, params)
            for m, p, h, params in [
                ("POST", "/v1/payment_intents", self._pi_create, "PaymentIntentCreateParams"),
                ("GET", "/v1/payment_intents/([^/]+)", self._pi_get, "PaymentIntentRetrieveParams"),
                (
                    "POST",
                    "/v1/payment_intents/([^/]+)",
                    self._pi_update,
                    "PaymentIntentUpdateParams",
                ),
                (
                    "POST",
                    "/v1/payment_intents/([^/]+)/cancel",
                    self._pi_cancel,
                    "PaymentIntentCancelParams",
                ),
                ("POST", "/v1/refunds", self._refund_create, "RefundCreateParams"),
                ("GET", "/v1/refunds/([^/]+)", self._refund_get, "RefundRetrieveParams"),
                ("POST", "/v1/accounts", self._account_create, "AccountCreateParams"),
                ("GET", "/v1/accounts/([^/]+)", self._account_get, "AccountRetrieveParams"),
                ("GET", "/v1/account", self._account_current, None),
                ("POST", "/v1/account_links", self._account_link_create, "AccountLinkCreateParams"),
                ("POST", "/v1/customers", self._customer_create, "CustomerCreateParams"),
                ("GET", "/v1/customers/([^/]+)", self._customer_get, "CustomerRetrieveParams"),
                (
                    "POST",
                    "/v1/ephemeral_keys",
                    self._ephemeral_key_create,
                    "EphemeralKeyCreateParams",
                ),
                ("GET", "/v1/events", self._event_list, "EventListParams"),
                (
                    "POST",
                    "/v1/checkout/sessions",
                    self._session_create,
                    "checkout.SessionCreateParams",
                ),
                (
                    "GET",
                    "/v1/checkout/sessions/([^/]+)",
                    self._session_get,
                    "checkout.SessionRetrieveParams",
                ),
                ("GET", "/v1/prices", self._price_list, "PriceListParams"),
                ("GET", "/v1/prices/([^/]+)", self._price_get, "PriceRetrieveParams"),
                ("GET", "/v1/subscriptions", self._sub_list, "SubscriptionListParams"),
                (
                    "GET",
                    "/v1/subscriptions/([^/]+)",
                    self._sub_get,
                    "SubscriptionRetrieveParams",
                ),
                (
                    "POST",
                    "/v1/subscriptions/([^/]+)",
                    self._sub_update,
                    "SubscriptionUpdateParams",
                ),
                (
                    "DELETE",
                    "/v1/subscriptions/([^/]+)",
                    self._sub_cancel,
                    "SubscriptionCancelParams",
                ),
                ("GET", "/v1/invoices/([^/]+)", self._invoice_get, "InvoiceRetrieveParams"),
            ]
        ]

    # ---------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        """Forget every object, event, recorded request, queued failure and idempotency key."""
        with self._lock:
            self.requests: list[Call] = []
            self.payment_intents: dict[str, dict] = {}
            self.refunds: dict[str, dict] = {}
            self.accounts: dict[str, dict] = {}
            self.customers: dict[str, dict] = {}
            self.ephemeral_keys: dict[str, dict] = {}
            self.checkout_sessions: dict[str, dict] = {}
            self.prices: dict[str, dict] = {}
            self.subscriptions: dict[str, dict] = {}
            self.invoices: dict[str, dict] = {}
            self._session_items: dict[str, list[tuple[str, int]]] = {}  # cs_ -> [(price, qty)]
            self._session_sub_metadata: dict[str, dict | None] = {}  # subscription_data[metadata]
            self.events: list[dict] = []  # oldest first
            self._owner: dict[str, str | None] = {}
            self._charges: dict[str, str] = {}  # ch_ -> pi_
            self._refunded: dict[str, int] = {}  # pi_ -> amount refunded
            self._failures: list[tuple[int, dict, dict]] = []
            self._idempotency: dict[tuple[str | None, str], tuple[tuple, int, bytes]] = {}
            self._counters: dict[str, itertools.count] = {}

    # ---------------------------------------------------------------- test controls

    def fail_next(
        self,
        status: int = 500,
        error_body: dict | None = None,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The next ``times`` API calls (any endpoint) answer ``status`` with ``error_body``
        (default: an ``api_error``) and ``headers`` (e.g. ``{"Stripe-Should-Retry": "false"}``,
        ``{"Retry-After": "1"}``), without touching any state. They are still recorded."""
        body = error_body or {
            "error": {
                "type": "api_error" if status >= 500 else "invalid_request_error",
                "message": f"Injected failure ({status}).",
            }
        }
        if status == 429 and error_body is None:
            body = {
                "error": {
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                    "message": "Too many requests hit the API too quickly.",
                }
            }
        with self._lock:
            self._failures.extend([(status, body, dict(headers or {}))] * times)

    def succeed(self, pi_id: str) -> dict:
        """The PaymentIntent succeeds (a charge ``ch_<n>`` is made); emits
        ``payment_intent.succeeded`` and returns the event."""
        with self._lock:
            pi = self._pi(pi_id)
            charge = self._new_id("ch")
            self._charges[charge] = pi_id
            pi.update(
                status="succeeded",
                amount_received=pi["amount"],
                latest_charge=charge,
                last_payment_error=None,
                next_action=None,
            )
            return self._pi_event(pi, "payment_intent.succeeded")

    def fail(
        self,
        pi_id: str,
        code: str = "card_declined",
        message: str | None = None,
        decline_code: str | None = None,
    ) -> dict:
        """A payment attempt fails: status back to ``requires_payment_method`` with
        ``last_payment_error``; emits ``payment_intent.payment_failed`` and returns the event."""
        with self._lock:
            pi = self._pi(pi_id)
            error = {
                "type": "card_error",
                "code": code,
                "message": message or DECLINE_MESSAGES.get(code, "The payment failed."),
            }
            if decline_code or code == "card_declined":
                error["decline_code"] = decline_code or "generic_decline"
            pi.update(status="requires_payment_method", last_payment_error=error)
            return self._pi_event(pi, "payment_intent.payment_failed")

    def cancel(self, pi_id: str, reason: str | None = None) -> dict:
        """The PaymentIntent is canceled (e.g. it expired: reason ``"abandoned"``); emits
        ``payment_intent.canceled`` and returns the event."""
        with self._lock:
            pi = self._pi(pi_id)
            pi.update(status="canceled", canceled_at=self.clock(), cancellation_reason=reason)
            return self._pi_event(pi, "payment_intent.canceled")

    def set_status(self, pi_id: str, status: str, event_type: str | None = None) -> dict | None:
        """Set any status (``processing``, ``requires_action``...); emit ``event_type`` if given."""
        with self._lock:
            pi = self._pi(pi_id)
            pi["status"] = status
            return self._pi_event(pi, event_type) if event_type else None

    def event(
        self,
        type: str,
        obj: Mapping[str, Any],
        account: str | None = None,
        previous_attributes: Mapping[str, Any] | None = None,
    ) -> dict:
        """Append an arbitrary event (``data.object`` = a copy of ``obj``) and return it."""
        with self._lock:
            if hasattr(obj, "to_dict"):
                obj = obj.to_dict()
            data: dict[str, Any] = {"object": copy.deepcopy(dict(obj))}
            if previous_attributes is not None:
                data["previous_attributes"] = copy.deepcopy(dict(previous_attributes))
            event = {
                "id": self._new_id("evt"),
                "object": "event",
                "api_version": self.api_version,
                "created": self.clock(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": type,
            }
            if account is not None:
                event["account"] = account
            self.events.append(event)
            return copy.deepcopy(event)

    def pi_event(self, pi_id: str, type: str) -> dict:
        """Emit ``type`` for the PaymentIntent as it is now."""
        with self._lock:
            return self._pi_event(self._pi(pi_id), type)

    def charge_refunded_event(self, refund: str | Mapping[str, Any]) -> dict:
        """Emit ``charge.refunded`` for a refund's charge (``refund``: its id or the object)."""
        with self._lock:
            return self._charge_refunded(self._refund(refund))

    def update_refund(
        self, refund: str | Mapping[str, Any], status: str, failure_reason: str | None = None
    ) -> dict:
        """Change a refund's status (e.g. ``"failed"``, which gives the amount back); emits
        ``refund.failed`` or ``refund.updated`` and returns the event."""
        with self._lock:
            r = self._refund(refund)
            previous = {"status": r["status"]}
            live = ("pending", "succeeded", "requires_action")
            if r["status"] in live and status not in live:
                self._refunded[r["payment_intent"]] -= r["amount"]
            elif r["status"] not in live and status in live:
                self._refunded[r["payment_intent"]] += r["amount"]
            r["status"] = status
            if failure_reason:
                r["failure_reason"] = failure_reason
            type = "refund.failed" if status == "failed" else "refund.updated"
            return self.event(type, r, self._owner.get(r["id"]), previous)

    def activate_account(self, account_id: str, **changes: Any) -> dict:
        """Onboarding done: charges/payouts enabled, details submitted, requested
        capabilities active (plus ``changes``); emits ``account.updated`` (with
        ``account`` = the account) and returns the event."""
        with self._lock:
            acct = self._account(account_id)
            fields = {
                "charges_enabled": True,
                "payouts_enabled": True,
                "details_submitted": True,
                "capabilities": {k: "active" for k in acct["capabilities"]},
                **changes,
            }
            previous = {k: copy.deepcopy(acct.get(k)) for k in fields}
            acct.update(fields)
            return self.event("account.updated", acct, account_id, previous)

    def add_price(
        self,
        lookup_key: str,
        amount: int,
        currency: str = "cny",
        interval: str = "month",
        *,
        interval_count: int = 1,
        account: str | None = None,
    ) -> dict:
        """A recurring price (and its product ``prod_<n>``) that checkout sessions can use;
        ``lookup_key`` moves from any older price to this one. Returns the price."""
        with self._lock:
            for old in self.prices.values():
                if old["lookup_key"] == lookup_key and self._owner.get(old["id"]) == account:
                    old["lookup_key"] = None
            price = {
                "id": self._new_id("price"),
                "object": "price",
                "active": True,
                "billing_scheme": "per_unit",
                "created": self.clock(),
                "currency": currency.lower(),
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": lookup_key,
                "metadata": {},
                "nickname": None,
                "product": self._new_id("prod"),
                "recurring": {
                    "interval": interval,
                    "interval_count": interval_count,
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                },
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "recurring",
                "unit_amount": amount,
                "unit_amount_decimal": str(amount),
            }
            return self._store(self.prices, price, account)

    def complete_checkout(self, session_id: str, status: str = "active") -> tuple[dict, dict]:
        """The customer finishes a subscription-mode Checkout Session: a customer ``cus_<n>``
        is made if the session had none (email = ``customer_email``, metadata = the session's),
        then a subscription with ``status`` for the session's prices (metadata =
        ``subscription_data[metadata]``, else the session's) and its first invoice. The session
        becomes ``complete``. Emits ``customer.subscription.created`` and
        ``checkout.session.completed``; returns ``(session_event, subscription_event)``."""
        with self._lock:
            session = self._get(self.checkout_sessions, session_id, "Checkout Session")
            if session["status"] != "open":
                raise ValueError(f"Checkout Session {session_id} is {session['status']}")
            if session["mode"] != "subscription":
                raise ValueError("complete_checkout only handles mode='subscription'")
            if status not in SUBSCRIPTION_STATUSES:
                raise ValueError(f"unknown subscription status {status!r}")
            owner = self._owner.get(session_id)
            now = self.clock()
            customer_id = session["customer"]
            if not customer_id:
                customer = {
                    "id": self._new_id("cus"),
                    "object": "customer",
                    "created": now,
                    "description": None,
                    "email": session["customer_email"],
                    "livemode": False,
                    "metadata": dict(session["metadata"] or {}),
                    "name": None,
                    "phone": None,
                }
                customer_id = self._store(self.customers, customer, owner)["id"]
            metadata = self._session_sub_metadata.get(session_id)
            if metadata is None:
                metadata = session["metadata"] or {}
            sub = self._new_subscription(
                customer_id, self._session_items[session_id], dict(metadata), status, owner
            )
            first = self._new_invoice(
                sub,
                "subscription_create",
                paid=status != "incomplete",
                period=(now, now),
                amount_zero=status == "trialing",
            )
            email = self.customers[customer_id]["email"]
            session.update(
                status="complete",
                customer=customer_id,
                subscription=sub["id"],
                invoice=first["id"],
                url=None,
                payment_status={"incomplete": "unpaid", "trialing": "no_payment_required"}.get(
                    status, "paid"
                ),
                customer_details={
                    "address": None,
                    "email": email,
                    "name": None,
                    "phone": None,
                    "tax_exempt": "none",
                    "tax_ids": [],
                },
            )
            sub_event = self.event("customer.subscription.created", sub, owner)
            session_event = self.event("checkout.session.completed", session, owner)
            return session_event, sub_event

    def set_subscription_status(self, sub_id: str, status: str) -> dict:
        """Change a subscription's status; emits ``customer.subscription.updated`` (or
        ``customer.subscription.deleted`` for ``canceled``, which also sets ``canceled_at`` and
        ``ended_at``) with ``previous_attributes`` ``{"status": old}``; returns the event."""
        with self._lock:
            sub = self._get(self.subscriptions, sub_id, "subscription")
            if status not in SUBSCRIPTION_STATUSES:
                raise ValueError(f"unknown subscription status {status!r}")
            previous = {"status": sub["status"]}
            sub["status"] = status
            if status == "canceled":
                now = self.clock()
                sub.update(canceled_at=sub["canceled_at"] or now, ended_at=now)
                type = "customer.subscription.deleted"
            else:
                type = "customer.subscription.updated"
            return self.event(type, sub, self._owner.get(sub_id), previous)

    def invoice(self, sub_id: str, paid: bool = True) -> dict:
        """A renewal is billed: if the subscription's latest invoice is still open it is
        retried, else every item moves one interval on and a new invoice ``in_<n>``
        (``billing_reason`` ``subscription_cycle``) bills the new period. Emits
        ``invoice.paid`` or ``invoice.payment_failed`` and returns the event. A failure makes
        an active/trialing subscription ``past_due``; a payment makes a
        ``past_due``/``unpaid``/``incomplete`` one ``active`` (no subscription event)."""
        with self._lock:
            sub = self._get(self.subscriptions, sub_id, "subscription")
            if sub["status"] in ENDED:
                raise ValueError(f"subscription {sub_id} is {sub['status']}")
            now = self.clock()
            inv = self.invoices.get(sub["latest_invoice"] or "")
            if inv is None or inv["status"] != "open":
                items = sub["items"]["data"]
                period = (items[0]["current_period_start"], items[0]["current_period_end"])
                for item in items:
                    recurring = item["price"]["recurring"] or {}
                    start = item["current_period_end"]
                    item["current_period_start"] = start
                    item["current_period_end"] = _add_interval(
                        start,
                        recurring.get("interval", "month"),
                        recurring.get("interval_count", 1),
                    )
                inv = self._new_invoice(sub, "subscription_cycle", paid=False, period=period)
            inv["attempted"] = True
            inv["attempt_count"] += 1
            if paid:
                inv.update(
                    status="paid",
                    amount_paid=inv["amount_due"],
                    amount_remaining=0,
                    next_payment_attempt=None,
                )
                inv["status_transitions"]["paid_at"] = now
                if sub["status"] in ("past_due", "unpaid", "incomplete"):
                    sub["status"] = "active"
                type = "invoice.paid"
            else:
                inv["next_payment_attempt"] = now + 3 * 86400
                if sub["status"] in ("active", "trialing"):
                    sub["status"] = "past_due"
                type = "invoice.payment_failed"
            return self.event(type, inv, self._owner.get(inv["id"]))

    def subscription(self, sub_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._get(self.subscriptions, sub_id, "subscription"))

    def checkout_session(self, session_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._get(self.checkout_sessions, session_id, "Checkout Session"))

    def sign(
        self,
        event_or_payload: Mapping[str, Any] | str | bytes,
        secret: str,
        timestamp: int | None = None,
    ) -> tuple[bytes, str]:
        """``(body, Stripe-Signature header)`` for a webhook delivery of an event (dict,
        JSON-encoded compactly) or of a payload given as is."""
        import stripe

        if isinstance(event_or_payload, bytes):
            payload = event_or_payload.decode("utf-8")
        elif isinstance(event_or_payload, str):
            payload = event_or_payload
        else:
            payload = json.dumps(dict(event_or_payload), separators=(",", ":"))
        header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
        return payload.encode("utf-8"), header

    def account_of(self, obj_id: str) -> str | None:
        """The ``Stripe-Account`` an object was created with (``None``: the platform)."""
        with self._lock:
            return self._owner[obj_id]

    def payment_intent(self, pi_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._pi(pi_id))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Call]:
        """Recorded requests, optionally only those with this method and/or path."""
        with self._lock:
            return [
                c
                for c in self.requests
                if (method is None or c.method == method) and (path is None or c.path == path)
            ]

    # ---------------------------------------------------------------- internals

    def _new_id(self, prefix: str) -> str:
        counter = self._counters.setdefault(prefix, itertools.count(1))
        return f"{prefix}_{next(counter)}"

    def _pi(self, pi_id: str) -> dict:
        try:
            return self.payment_intents[pi_id]
        except KeyError:
            raise KeyError(f"no PaymentIntent {pi_id!r}") from None

    def _refund(self, refund: str | Mapping[str, Any]) -> dict:
        refund_id = refund if isinstance(refund, str) else refund["id"]
        try:
            return self.refunds[refund_id]
        except KeyError:
            raise KeyError(f"no refund {refund_id!r}") from None

    def _account(self, account_id: str) -> dict:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise KeyError(f"no account {account_id!r}") from None

    def _pi_event(self, pi: dict, type: str) -> dict:
        return self.event(type, pi, self._owner.get(pi["id"]))

    def _charge_refunded(self, refund: dict) -> dict:
        pi = self.payment_intents[refund["payment_intent"]]
        refunded = self._refunded.get(pi["id"], 0)
        charge = {
            "id": pi["latest_charge"],
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"],
            "amount_refunded": refunded,
            "application_fee_amount": pi["application_fee_amount"],
            "created": pi["created"],
            "currency": pi["currency"],
            "livemode": False,
            "metadata": copy.deepcopy(pi["metadata"]),
            "paid": True,
            "payment_intent": pi["id"],
            "refunded": refunded >= pi["amount"],
            "status": "succeeded",
        }
        return self.event("charge.refunded", charge, self._owner.get(pi["id"]))

    def _visible(
        self,
        obj_id: str,
        store: dict,
        kind: str,
        account: str | None,
        param: str = "id",
        status: int = 404,
    ) -> dict:
        obj = store.get(obj_id)
        if obj is None or self._owner.get(obj_id) != account:
            raise _missing(kind, obj_id, param, status)
        return obj

    def _store(self, store: dict, obj: dict, account: str | None) -> dict:
        store[obj["id"]] = obj
        self._owner[obj["id"]] = account
        return copy.deepcopy(obj)

    @staticmethod
    def _get(store: dict, obj_id: str, kind: str) -> dict:
        try:
            return store[obj_id]
        except KeyError:
            raise KeyError(f"no {kind} {obj_id!r}") from None

    def _new_subscription(
        self,
        customer: str,
        items: list[tuple[str, int]],
        metadata: dict,
        status: str,
        owner: str | None,
    ) -> dict:
        now = self.clock()
        sub_id = self._new_id("sub")
        data = []
        for price_id, quantity in items:
            price = self.prices[price_id]
            recurring = price["recurring"] or {}
            data.append(
                {
                    "id": self._new_id("si"),
                    "object": "subscription_item",
                    "billing_thresholds": None,
                    "created": now,
                    "current_period_end": _add_interval(
                        now, recurring.get("interval", "month"), recurring.get("interval_count", 1)
                    ),
                    "current_period_start": now,
                    "discounts": [],
                    "metadata": {},
                    "price": copy.deepcopy(price),
                    "quantity": quantity,
                    "subscription": sub_id,
                    "tax_rates": [],
                }
            )
        trialing = status == "trialing"
        sub = {
            "id": sub_id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "billing_cycle_anchor": now,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": now if status == "canceled" else None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": self.prices[items[0][0]]["currency"],
            "customer": customer,
            "days_until_due": None,
            "default_payment_method": None,
            "description": None,
            "discounts": [],
            "ended_at": now if status in ENDED else None,
            "items": {
                "object": "list",
                "data": data,
                "has_more": False,
                "total_count": len(data),
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": metadata,
            "on_behalf_of": None,
            "pause_collection": None,
            "pending_update": None,
            "schedule": None,
            "start_date": now,
            "status": status,
            "trial_end": data[0]["current_period_end"] if trialing else None,
            "trial_start": now if trialing else None,
        }
        self._store(self.subscriptions, sub, owner)
        return sub

    def _new_invoice(
        self,
        sub: dict,
        reason: str,
        *,
        paid: bool,
        period: tuple[int, int],
        amount_zero: bool = False,
    ) -> dict:
        """An invoice billing every item of ``sub`` for its current period; it becomes the
        subscription's ``latest_invoice``. Paid at once when ``paid``, else open."""
        now = self.clock()
        inv_id = self._new_id("in")
        lines = []
        for item in sub["items"]["data"]:
            price = item["price"]
            amount = 0 if amount_zero else (price["unit_amount"] or 0) * (item["quantity"] or 1)
            lines.append(
                {
                    "id": self._new_id("il"),
                    "object": "line_item",
                    "amount": amount,
                    "currency": price["currency"],
                    "description": f"{item['quantity']} x {price['lookup_key'] or price['id']}",
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": inv_id,
                    "livemode": False,
                    "metadata": copy.deepcopy(sub["metadata"]),
                    "parent": {
                        "type": "subscription_item_details",
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": sub["id"],
                            "subscription_item": item["id"],
                        },
                    },
                    "period": {
                        "start": item["current_period_start"],
                        "end": item["current_period_end"],
                    },
                    "pretax_credit_amounts": [],
                    "pricing": {
                        "type": "price_details",
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "unit_amount_decimal": price["unit_amount_decimal"],
                    },
                    "quantity": item["quantity"],
                    "subscription": sub["id"],
                    "subtotal": amount,
                    "taxes": [],
                }
            )
        total = sum(line["amount"] for line in lines)
        customer = self.customers.get(sub["customer"]) or {}
        inv = {
            "id": inv_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": None,
            "amount_due": total,
            "amount_overpaid": 0,
            "amount_paid": total if paid else 0,
            "amount_remaining": 0 if paid else total,
            "amount_shipping": 0,
            "attempt_count": 1 if paid else 0,
            "attempted": paid,
            "auto_advance": not paid,
            "billing_reason": reason,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": sub["currency"],
            "customer": sub["customer"],
            "customer_email": customer.get("email"),
            "customer_name": customer.get("name"),
            "default_payment_method": None,
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": now,
            "ending_balance": 0,
            "hosted_invoice_url": f"https://invoice.stripe.test/i/{inv_id}",
            "invoice_pdf": f"https://pay.stripe.test/invoice/{inv_id}/pdf",
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{inv_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": f"FAKE-{inv_id.split('_')[1].zfill(4)}",
            "on_behalf_of": None,
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": copy.deepcopy(sub["metadata"]),
                    "subscription": sub["id"],
                    "subscription_proration_date": None,
                },
            },
            "period_end": period[1],
            "period_start": period[0],
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": "paid" if paid else "open",
            "status_transitions": {
                "finalized_at": now,
                "marked_uncollectible_at": None,
                "paid_at": now if paid else None,
                "voided_at": None,
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_taxes": [],
            "webhooks_delivered_at": None,
        }
        self._store(self.invoices, inv, self._owner.get(sub["id"]))
        sub["latest_invoice"] = inv_id
        return inv

    def _page(self, items: list[dict], p: dict, kind: str, url: str) -> dict:
        """One page of ``items`` (newest first) for ``limit``, ``starting_after``,
        ``ending_before``."""
        limit = _int(p, "limit", default=10)
        if not 1 <= limit <= 100:
            raise StripeFault(400, "This value must be between 1 and 100.", param="limit")
        ids = [x["id"] for x in items]
        if p.get("starting_after"):
            if p["starting_after"] not in ids:
                raise _missing(kind, p["starting_after"], "starting_after", 400)
            page = items[ids.index(p["starting_after"]) + 1 :]
            data, has_more = page[:limit], len(page) > limit
        elif p.get("ending_before"):
            if p["ending_before"] not in ids:
                raise _missing(kind, p["ending_before"], "ending_before", 400)
            page = items[: ids.index(p["ending_before"])]
            data, has_more = page[-limit:], len(page) > limit
        else:
            data, has_more = items[:limit], len(items) > limit
        return {"object": "list", "url": url, "has_more": has_more, "data": copy.deepcopy(data)}

    def _expand(self, node: Any, parts: list[str], account: str | None) -> Any:
        """Replace the id at the dotted path ``parts`` (lists are walked) by the stored
        object it names, when the fake has it and ``account`` may see it."""
        if isinstance(node, list):
            return [self._expand(x, parts, account) for x in node]
        if not parts or not isinstance(node, dict) or parts[0] not in node:
            return node
        value = node[parts[0]]
        if isinstance(value, str):
            for store in (
                self.customers,
                self.subscriptions,
                self.invoices,
                self.prices,
                self.payment_intents,
                self.refunds,
                self.checkout_sessions,
            ):
                if value in store and self._owner.get(value) == account:
                    value = copy.deepcopy(store[value])
                    break
        node[parts[0]] = self._expand(value, parts[1:], account)
        return node

    # ---------------------------------------------------------------- HTTP

    async def _asgi(self, request: Request) -> Response:
        method, path = request.method, request.url.path
        raw = await request.body() if method == "POST" else request.url.query.encode()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            params = parse_form(raw)
        except Exception:
            params = {}
        with self._lock:
            self.requests.append(Call(method, path, headers, params))
            status, content, extra = self._dispatch(method, path, headers, params)
        extra["Request-Id"] = f"req_{secrets.token_hex(7)}"
        extra["Stripe-Version"] = headers.get("stripe-version", self.api_version)
        return Response(content, status_code=status, media_type="application/json", headers=extra)

    def _route(self, method: str, path: str) -> tuple[Callable, str | None, tuple] | None:
        for route_method, pattern, handler, params_name in self._routes:
            match = pattern.match(path)
            if match and route_method == method:
                return handler, params_name, match.groups()
        return None

    def _dispatch(self, method: str, path: str, headers: dict, params: dict):
        if self._failures:
            status, body, extra = self._failures.pop(0)
            return status, json.dumps(body).encode(), dict(extra)
        try:
            auth = headers.get("authorization", "")
            key = auth[7:] if auth.startswith("Bearer ") else ""
            if not key or (self.api_key is not None and key != self.api_key):
                raise StripeFault(
                    401,
                    "Invalid API Key provided: " + (key[:12] or "(none)"),
                    type="authentication_error",
                )
            found = self._route(method, path)
            if found is None:
                raise StripeFault(
                    404,
                    f"Unrecognized request URL ({method}: {path}). Please "
                    "see https://stripe.com/docs or we can help at "
                    "https://support.stripe.com/.",
                )
            handler, params_name, args = found
            known = _known_params(params_name) if params_name else frozenset({"expand"})
            if self.strict_params and known is not None:
                for name in params:
                    if name not in known:
                        raise StripeFault(
                            400,
                            f"Received unknown parameter: {name}",
                            code="parameter_unknown",
                            param=name,
                        )
            account = headers.get("stripe-account") or None
            idem = headers.get("idempotency-key") if method == "POST" else None
            fingerprint = (method, path, json.dumps(params, sort_keys=True))
            if idem:
                stored = self._idempotency.get((account, idem))
                if stored is not None:
                    if stored[0] != fingerprint:
                        raise StripeFault(
                            400,
                            "Keys for idempotent requests can only be used "
                            "with the same parameters they were first used with. "
                            f"Try using a key other than '{idem}' if you meant to "
                            "execute a different request.",
                            type="idempotency_error",
                        )
                    return stored[1], stored[2], {"Idempotent-Replayed": "true"}
            body = handler(params, account, *args)
            expand = params.get("expand")
            for path in [expand] if isinstance(expand, str) else expand or []:
                if isinstance(path, str) and path:
                    body = self._expand(body, path.split("."), account)
            content = json.dumps(body).encode()
            if idem:
                self._idempotency[(account, idem)] = (fingerprint, 200, content)
            return 200, content, {}
        except StripeFault as fault:
            return fault.status, json.dumps({"error": fault.error}).encode(), {}

    # ---------------------------------------------------------------- handlers

    def _pi_create(self, p: dict, account: str | None) -> dict:
        amount = _int(p, "amount", required=True)
        currency = _required(p, "currency").lower()
        if amount < 1:
            raise StripeFault(
                400,
                "This value must be greater than or equal to 1.",
                code="amount_too_small",
                param="amount",
            )
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise StripeFault(400, f"Invalid currency: {currency}.", param="currency")
        fee = _int(p, "application_fee_amount")
        transfer = p.get("transfer_data") if isinstance(p.get("transfer_data"), dict) else None
        if fee is not None:
            if account is None and not (transfer and transfer.get("destination")):
                raise StripeFault(
                    400,
                    "Can only apply an application_fee_amount when the "
                    "PaymentIntent is attempting a direct payment (using an OAuth "
                    "key or Stripe-Account header) or destination payment (using "
                    "`transfer_data[destination]`).",
                    param="application_fee_amount",
                )
            if fee < 0 or fee > amount:
                raise StripeFault(
                    400,
                    "The application fee must be between 0 and the amount.",
                    param="application_fee_amount",
                )
        customer = p.get("customer") or None
        if customer:
            self._visible(customer, self.customers, "customer", account, "customer", 400)
        types = p.get("payment_method_types") or p.get("allowed_payment_method_types")
        if isinstance(types, str):
            types = [types] if types else None
        pi_id = self._new_id("pi")
        automatic = p.get("automatic_payment_methods")
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "application_fee_amount": fee,
            "automatic_payment_methods": (
                {"enabled": _bool(automatic.get("enabled"))}
                if isinstance(automatic, dict)
                else None
            ),
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": p.get("capture_method") or "automatic",
            "client_secret": f"{pi_id}_secret_{secrets.token_urlsafe(18)}",
            "confirmation_method": p.get("confirmation_method") or "automatic",
            "created": self.clock(),
            "currency": currency,
            "customer": customer,
            "description": p.get("description") or None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": _metadata(p.get("metadata")),
            "next_action": None,
            "on_behalf_of": p.get("on_behalf_of") or None,
            "payment_method": p.get("payment_method") or None,
            "payment_method_options": p.get("payment_method_options") or {},
            "payment_method_types": types or ["card"],
            "receipt_email": p.get("receipt_email") or None,
            "setup_future_usage": p.get("setup_future_usage") or None,
            "statement_descriptor": p.get("statement_descriptor") or None,
            "statement_descriptor_suffix": p.get("statement_descriptor_suffix") or None,
            "status": "requires_payment_method",
            "transfer_data": transfer,
            "transfer_group": p.get("transfer_group") or None,
        }
        return self._store(self.payment_intents, pi, account)

    def _pi_get(self, p: dict, account: str | None, pi_id: str) -> dict:
        return copy.deepcopy(self._visible(pi_id, self.payment_intents, "payment_intent", account))

    def _pi_update(self, p: dict, account: str | None, pi_id: str) -> dict:
        pi = self._visible(pi_id, self.payment_intents, "payment_intent", account)
        if pi["status"] in ("succeeded", "canceled"):
            raise StripeFault(
                400,
                "This PaymentIntent's amount could not be updated because it "
                f"has a status of {pi['status']}.",
                code="payment_intent_unexpected_state",
            )
        for name in ("amount", "application_fee_amount"):
            if name in p:
                pi[name] = _int(p, name)
        for name, value in p.items():
            if name == "metadata":
                pi["metadata"] = _metadata(value, pi["metadata"])
            elif name == "allowed_payment_method_types":
                pi["payment_method_types"] = value
            elif name not in ("amount", "application_fee_amount", "expand"):
                pi[name] = value if value != "" else None
        return copy.deepcopy(pi)

    def _pi_cancel(self, p: dict, account: str | None, pi_id: str) -> dict:
        pi = self._visible(pi_id, self.payment_intents, "payment_intent", account)
        if pi["status"] not in CANCELABLE:
            raise StripeFault(
                400,
                "You cannot cancel this PaymentIntent because it has a status "
                f"of {pi['status']}. Only a PaymentIntent with one of the following "
                f"statuses may be canceled: {', '.join(CANCELABLE)}.",
                code="payment_intent_unexpected_state",
            )
        pi.update(
            status="canceled",
            canceled_at=self.clock(),
            cancellation_reason=p.get("cancellation_reason") or "requested_by_customer",
        )
        if self.api_events:
            self._pi_event(pi, "payment_intent.canceled")
        return copy.deepcopy(pi)

    def _refund_create(self, p: dict, account: str | None) -> dict:
        pi_id, charge = p.get("payment_intent"), p.get("charge")
        if not pi_id and not charge:
            raise StripeFault(
                400,
                "One of the following params should be provided for this "
                "request: payment_intent or charge.",
                code="parameter_missing",
            )
        if not pi_id:
            pi_id = self._charges.get(charge)
            if pi_id is None or self._owner.get(pi_id) != account:
                raise _missing("charge", charge, "charge", 400)
        pi = self._visible(
            pi_id, self.payment_intents, "payment_intent", account, "payment_intent", 400
        )
        if pi["status"] != "succeeded":
            raise StripeFault(
                400,
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                code="payment_intent_unexpected_state",
                param="payment_intent",
            )
        left = pi["amount"] - self._refunded.get(pi_id, 0)
        if left <= 0:
            raise StripeFault(
                400,
                f"Charge {pi['latest_charge']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = _int(p, "amount", default=left)
        if amount < 1:
            raise StripeFault(
                400,
                "This value must be greater than or equal to 1.",
                code="amount_too_small",
                param="amount",
            )
        if amount > left:
            raise StripeFault(
                400,
                f"Refund amount ({_amount_text(amount, pi['currency'])}) is "
                "greater than unrefunded amount on charge "
                f"({_amount_text(left, pi['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        self._refunded[pi_id] = self._refunded.get(pi_id, 0) + amount
        refund = {
            "id": self._new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": pi["latest_charge"],
            "created": self.clock(),
            "currency": pi["currency"],
            "metadata": _metadata(p.get("metadata")),
            "payment_intent": pi_id,
            "reason": p.get("reason") or None,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": self.refund_status,
            "transfer_reversal": None,
        }
        out = self._store(self.refunds, refund, account)
        if self.api_events:
            self.event("refund.created", refund, account)
            self._charge_refunded(refund)
        return out

    def _refund_get(self, p: dict, account: str | None, refund_id: str) -> dict:
        return copy.deepcopy(self._visible(refund_id, self.refunds, "refund", account))

    def _account_create(self, p: dict, account: str | None) -> dict:
        controller = p.get("controller") if isinstance(p.get("controller"), dict) else None
        kind = p.get("type")
        if not kind and controller:
            dashboard = (controller.get("stripe_dashboard") or {}).get("type")
            kind = {"express": "express", "full": "standard", "none": "custom"}.get(dashboard)
        capabilities = p.get("capabilities") if isinstance(p.get("capabilities"), dict) else {}
        acct = {
            "id": self._new_id("acct"),
            "object": "account",
            "type": kind or "standard",
            "business_type": p.get("business_type") or None,
            "capabilities": {
                k: "inactive"
                for k, v in capabilities.items()
                if isinstance(v, dict) and _bool(v.get("requested"))
            },
            "charges_enabled": False,
            "controller": controller,
            "country": p.get("country") or "US",
            "created": self.clock(),
            "default_currency": p.get("default_currency") or "usd",
            "details_submitted": False,
            "email": p.get("email") or None,
            "metadata": _metadata(p.get("metadata")),
            "payouts_enabled": False,
            "requirements": {"currently_due": [], "disabled_reason": None},
        }
        return self._store(self.accounts, acct, None)

    def _account_get(self, p: dict, account: str | None, account_id: str) -> dict:
        acct = self.accounts.get(account_id)
        if acct is None or account not in (None, account_id):
            raise _missing("account", account_id)
        return copy.deepcopy(acct)

    def _account_current(self, p: dict, account: str | None) -> dict:
        if account is None:
            return {
                "id": "acct_platform",
                "object": "account",
                "type": "standard",
                "charges_enabled": True,
                "details_submitted": True,
            }
        return self._account_get(p, account, account)

    def _account_link_create(self, p: dict, account: str | None) -> dict:
        account_id = _required(p, "account")
        _required(p, "type")
        if account_id not in self.accounts:
            raise _missing("account", account_id, "account", 400)
        now = self.clock()
        return {
            "object": "account_link",
            "created": now,
            "expires_at": now + 300,
            "url": f"https://connect.stripe.test/setup/{account_id}",
        }

    def _customer_create(self, p: dict, account: str | None) -> dict:
        cus = {
            "id": self._new_id("cus"),
            "object": "customer",
            "created": self.clock(),
            "description": p.get("description") or None,
            "email": p.get("email") or None,
            "livemode": False,
            "metadata": _metadata(p.get("metadata")),
            "name": p.get("name") or None,
            "phone": p.get("phone") or None,
        }
        return self._store(self.customers, cus, account)

    def _customer_get(self, p: dict, account: str | None, customer_id: str) -> dict:
        return copy.deepcopy(self._visible(customer_id, self.customers, "customer", account))

    def _ephemeral_key_create(self, p: dict, account: str | None) -> dict:
        customer = _required(p, "customer")
        self._visible(customer, self.customers, "customer", account, "customer", 400)
        now = self.clock()
        key = {
            "id": self._new_id("ephkey"),
            "object": "ephemeral_key",
            "associated_objects": [{"id": customer, "type": "customer"}],
            "created": now,
            "expires": now + 3600,
            "livemode": False,
            "secret": f"ek_test_{secrets.token_urlsafe(24)}",
        }
        return self._store(self.ephemeral_keys, key, account)

    def _event_list(self, p: dict, account: str | None) -> dict:
        created = p.get("created")
        bounds = (
            created
            if isinstance(created, dict)
            else ({"gte": created, "lte": created} if created else {})
        )
        ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
        checks = []
        for op in bounds:
            if op not in ops:
                raise StripeFault(
                    400,
                    f"Received unknown parameter: created[{op}]",
                    code="parameter_unknown",
                    param=f"created[{op}]",
                )
            checks.append((ops[op], _int(bounds, op)))
        types = p.get("types") if isinstance(p.get("types"), list) else []
        if p.get("type"):
            types = [*types, p["type"]]
        patterns = [re.compile("^" + re.escape(t).replace(r"\*", ".*") + "$") for t in types]
        events = [
            e
            for e in reversed(self.events)
            if e.get("account") == account
            and all(f(e["created"], v) for f, v in checks)
            and (not patterns or any(r.match(e["type"]) for r in patterns))
        ]
        return self._page(events, p, "event", "/v1/events")

    def _session_create(self, p: dict, account: str | None) -> dict:
        mode = _required(p, "mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeFault(400, f"Invalid mode: {mode}", param="mode")
        customer = p.get("customer") or None
        email = p.get("customer_email") or None
        if customer and email:
            raise StripeFault(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
            )
        if customer:
            self._visible(customer, self.customers, "customer", account, "customer", 400)
        line_items = p.get("line_items") or []
        if not isinstance(line_items, list):
            raise StripeFault(400, "Invalid array", param="line_items")
        if mode != "setup" and not line_items:
            raise StripeFault(
                400,
                f"`line_items` is required in `{mode}` mode.",
                code="parameter_missing",
                param="line_items",
            )
        items: list[tuple[str, int]] = []
        for n, line in enumerate(line_items):
            line = line if isinstance(line, dict) else {}
            param = f"line_items[{n}][price]"
            price_id = line.get("price")
            if not price_id:
                raise StripeFault(
                    400,
                    f"Missing required param: {param}. (The fake supports only stored prices.)",
                    code="parameter_missing",
                    param=param,
                )
            price = self._visible(price_id, self.prices, "price", account, param, 400)
            if mode == "subscription" and price["type"] != "recurring":
                raise StripeFault(
                    400,
                    "You must specify at least one recurring price in `subscription` mode "
                    "when using prices.",
                    param=param,
                )
            quantity = _int(line, "quantity", default=1)
            if quantity < 1:
                raise StripeFault(
                    400,
                    "This value must be greater than or equal to 1.",
                    param=f"line_items[{n}][quantity]",
                )
            items.append((price_id, quantity))
        currencies = {self.prices[price_id]["currency"] for price_id, _ in items}
        if len(currencies) > 1:
            raise StripeFault(400, "All prices must use the same currency.", param="line_items")
        sub_data = (
            p.get("subscription_data") if isinstance(p.get("subscription_data"), dict) else {}
        )
        amount = sum(self.prices[price_id]["unit_amount"] * q for price_id, q in items)
        now = self.clock()
        session_id = self._new_id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "after_expiration": None,
            "allow_promotion_codes": _bool(p["allow_promotion_codes"])
            if "allow_promotion_codes" in p
            else None,
            "amount_subtotal": amount if items else None,
            "amount_total": amount if items else None,
            "billing_address_collection": p.get("billing_address_collection") or None,
            "cancel_url": p.get("cancel_url") or None,
            "client_reference_id": p.get("client_reference_id") or None,
            "client_secret": None,
            "created": now,
            "currency": next(iter(currencies), None),
            "customer": customer,
            "customer_details": {"email": email} if email else None,
            "customer_email": email,
            "expires_at": _int(p, "expires_at", default=now + 86400),
            "invoice": None,
            "livemode": False,
            "locale": p.get("locale") or None,
            "metadata": _metadata(p.get("metadata")),
            "mode": mode,
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "recovered_from": None,
            "setup_intent": None,
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": p.get("success_url") or None,
            "ui_mode": p.get("ui_mode") or "hosted_page",
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
        }
        self._session_items[session_id] = items
        self._session_sub_metadata[session_id] = (
            _metadata(sub_data["metadata"]) if "metadata" in sub_data else None
        )
        return self._store(self.checkout_sessions, session, account)

    def _session_get(self, p: dict, account: str | None, session_id: str) -> dict:
        return copy.deepcopy(
            self._visible(session_id, self.checkout_sessions, "checkout.session", account)
        )

    def _price_get(self, p: dict, account: str | None, price_id: str) -> dict:
        return copy.deepcopy(self._visible(price_id, self.prices, "price", account))

    def _price_list(self, p: dict, account: str | None) -> dict:
        keys = p.get("lookup_keys")
        keys = [keys] if isinstance(keys, str) else keys
        prices = [
            x
            for x in reversed(self.prices.values())
            if self._owner.get(x["id"]) == account
            and (keys is None or x["lookup_key"] in keys)
            and ("active" not in p or x["active"] == _bool(p["active"]))
            and (not p.get("currency") or x["currency"] == p["currency"].lower())
            and (not p.get("type") or x["type"] == p["type"])
            and (not p.get("product") or x["product"] == p["product"])
        ]
        return self._page(prices, p, "price", "/v1/prices")

    def _sub_get(self, p: dict, account: str | None, sub_id: str) -> dict:
        return copy.deepcopy(self._visible(sub_id, self.subscriptions, "subscription", account))

    def _sub_list(self, p: dict, account: str | None) -> dict:
        status = p.get("status") or None
        choices = (*SUBSCRIPTION_STATUSES, "all", "ended")
        if status is not None and status not in choices:
            raise StripeFault(
                400,
                f"Invalid status: must be one of {', '.join(choices)}",
                param="status",
            )

        def wanted(sub: dict) -> bool:
            if status is None:
                return sub["status"] not in ENDED
            if status == "ended":
                return sub["status"] in ENDED
            return status == "all" or sub["status"] == status

        subs = [
            x
            for x in reversed(self.subscriptions.values())
            if self._owner.get(x["id"]) == account
            and wanted(x)
            and (not p.get("customer") or x["customer"] == p["customer"])
            and (
                not p.get("price")
                or any(i["price"]["id"] == p["price"] for i in x["items"]["data"])
            )
        ]
        return self._page(subs, p, "subscription", "/v1/subscriptions")

    def _sub_update(self, p: dict, account: str | None, sub_id: str) -> dict:
        sub = self._visible(sub_id, self.subscriptions, "subscription", account)
        if sub["status"] in ENDED and any(
            k not in ("metadata", "cancellation_details", "expand") for k in p
        ):
            raise StripeFault(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        supported = {"metadata", "cancel_at_period_end", "cancellation_details", "expand"}
        for name in p:
            if name not in supported:
                raise StripeFault(
                    400, f"The fake cannot update {name} on a subscription.", param=name
                )
        previous: dict[str, Any] = {}
        if "metadata" in p:
            previous["metadata"] = copy.deepcopy(sub["metadata"])
            sub["metadata"] = _metadata(p["metadata"], sub["metadata"])
        if "cancel_at_period_end" in p:
            flag = _bool(p["cancel_at_period_end"])
            if flag != sub["cancel_at_period_end"]:
                previous.update(
                    cancel_at_period_end=sub["cancel_at_period_end"],
                    cancel_at=sub["cancel_at"],
                    canceled_at=sub["canceled_at"],
                )
                ends = max(i["current_period_end"] for i in sub["items"]["data"])
                sub.update(
                    cancel_at_period_end=flag,
                    cancel_at=ends if flag else None,
                    canceled_at=self.clock() if flag else None,
                )
        if isinstance(p.get("cancellation_details"), dict):
            details = p["cancellation_details"]
            previous["cancellation_details"] = copy.deepcopy(sub["cancellation_details"])
            for key in ("comment", "feedback"):
                if key in details:
                    sub["cancellation_details"][key] = details[key] or None
        if self.api_events and previous:
            self.event("customer.subscription.updated", sub, account, previous)
        return copy.deepcopy(sub)

    def _sub_cancel(self, p: dict, account: str | None, sub_id: str) -> dict:
        sub = self._visible(sub_id, self.subscriptions, "subscription", account)
        if sub["status"] in ENDED:
            raise StripeFault(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        now = self.clock()
        details = (
            p.get("cancellation_details") if isinstance(p.get("cancellation_details"), dict) else {}
        )
        sub.update(status="canceled", canceled_at=now, ended_at=now)
        sub["cancellation_details"] = {
            "comment": details.get("comment") or None,
            "feedback": details.get("feedback") or None,
            "reason": "cancellation_requested",
        }
        if self.api_events:
            self.event("customer.subscription.deleted", sub, account)
        return copy.deepcopy(sub)

    def _invoice_get(self, p: dict, account: str | None, invoice_id: str) -> dict:
        return copy.deepcopy(self._visible(invoice_id, self.invoices, "invoice", account))
