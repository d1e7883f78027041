"""The calls we make to Stripe, through the official library's async client.

One client per event loop (the library's httpx client belongs to the loop that made it). Every
POST carries an idempotency key derived from our own record, so a retry (ours, the library's,
or a job's) never creates a second object."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import stripe

from api.errors import Conflict
from api.settings import Settings

if TYPE_CHECKING:
    from stripe import RequestOptions
    from stripe.params import (
        AccountCreateParams,
        AccountLinkCreateParams,
        PaymentIntentCreateParams,
        PaymentIntentCreateParamsPaymentMethodOptionsWechatPay,
        RefundCreateParams,
    )

_clients: dict[int, tuple[asyncio.AbstractEventLoop, stripe.StripeClient, stripe.HTTPXClient]] = {}


class PaymentsOff(Conflict):
    """Payments are not configured (no secret key) or the tenant has no connected account."""


class ProviderFailed(Conflict):
    """Stripe refused or could not be reached; nothing was charged."""


def client(settings: Settings) -> stripe.StripeClient:
    if not settings.stripe_secret_key:
        raise PaymentsOff("payments are not configured", None)
    loop = asyncio.get_running_loop()
    key = id(loop)
    held = _clients.get(key)
    if held is None or held[0] is not loop or held[0].is_closed():
        for k, (old, _, _) in list(_clients.items()):
            if old.is_closed():
                del _clients[k]
        http = stripe.HTTPXClient()
        options: dict[str, Any] = {
            "http_client": http,
            "max_network_retries": settings.stripe_retries,
        }
        if settings.stripe_api_url:
            options["base_addresses"] = {"api": settings.stripe_api_url.rstrip("/")}
        held = (loop, stripe.StripeClient(settings.stripe_secret_key, **options), http)
        _clients[key] = held
    return held[1]


async def close_all() -> None:
    loop = asyncio.get_running_loop()
    held = _clients.pop(id(loop), None)
    if held is not None:
        await held[2].close_async()


def failed(exc: stripe.StripeError) -> ProviderFailed:
    message = getattr(exc, "user_message", None) or "the payment provider refused"
    return ProviderFailed(f"payment provider: {message}", None)


METHODS = ("card", "alipay", "wechat_pay")


def methods_for(settings: Settings, platform: str) -> list[str]:
    """Cards and Alipay everywhere; WeChat Pay on the web, and in the apps once the app id
    registered with WeChat is configured."""
    return [
        m
        for m in METHODS
        if m != "wechat_pay" or platform == "web" or settings.stripe_wechat_app_id
    ]


async def create_intent(
    settings: Settings,
    *,
    account: str,
    amount: int,
    currency: str,
    platform: str,
    fee: int,
    metadata: dict[str, str],
    key: str,
    description: str = "",
) -> stripe.PaymentIntent:
    methods = methods_for(settings, platform)
    params: PaymentIntentCreateParams = {
        "amount": amount,
        "currency": currency,
        "allowed_payment_method_types": methods,
        "metadata": metadata,
        "description": description,
    }
    if fee:
        params["application_fee_amount"] = fee
    if "wechat_pay" in methods:  # WeChat Pay needs the app's platform (and app id in apps)
        wechat: PaymentIntentCreateParamsPaymentMethodOptionsWechatPay = {"client": platform}
        if platform != "web":
            wechat["app_id"] = settings.stripe_wechat_app_id
        params["payment_method_options"] = {"wechat_pay": wechat}
    try:
        return await client(settings).v1.payment_intents.create_async(
            params, {"stripe_account": account, "idempotency_key": key}
        )
    except stripe.StripeError as exc:
        raise failed(exc) from exc


def client_secret(intent: stripe.PaymentIntent) -> str:
    """What the payer's app confirms ``intent`` with. Stripe returns it with every intent our
    secret key creates or fetches (only a publishable key is refused it)."""
    assert intent.client_secret is not None, f"intent {intent.id} came without its secret"
    return intent.client_secret


async def retrieve_intent(
    settings: Settings, account: str | None, intent_id: str
) -> stripe.PaymentIntent:
    options: RequestOptions = {"stripe_account": account} if account else {}
    return await client(settings).v1.payment_intents.retrieve_async(intent_id, options=options)


async def cancel_intent(settings: Settings, account: str, intent_id: str) -> stripe.PaymentIntent:
    """Cancel a PaymentIntent nobody paid; one that can't be (paid meanwhile, canceled
    already) is fetched instead, so the caller acts on its real state."""
    try:
        return await client(settings).v1.payment_intents.cancel_async(
            intent_id, {"cancellation_reason": "abandoned"}, {"stripe_account": account}
        )
    except stripe.InvalidRequestError:
        return await retrieve_intent(settings, account, intent_id)


async def refund(
    settings: Settings, *, account: str, intent_id: str, amount: int, key: str, reason: str
) -> stripe.Refund:
    params: RefundCreateParams = {
        "payment_intent": intent_id,
        "amount": amount,
        "metadata": {"reason": reason},
        "refund_application_fee": True,
    }
    return await client(settings).v1.refunds.create_async(
        params, {"stripe_account": account, "idempotency_key": key}
    )


async def create_account(
    settings: Settings, *, tenant_id: str, name: str, key: str
) -> stripe.Account:
    params: AccountCreateParams = {
        "controller": {
            "stripe_dashboard": {"type": "express"},
            "fees": {"payer": "application"},
            "losses": {"payments": "application"},
        },
        "business_profile": {"name": name},
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "metadata": {"tenant_id": tenant_id},
    }
    try:
        return await client(settings).v1.accounts.create_async(params, {"idempotency_key": key})
    except stripe.StripeError as exc:
        raise failed(exc) from exc


async def onboarding_link(
    settings: Settings, *, account: str, refresh_url: str, return_url: str
) -> stripe.AccountLink:
    params: AccountLinkCreateParams = {
        "account": account,
        "type": "account_onboarding",
        "refresh_url": refresh_url,
        "return_url": return_url,
    }
    try:
        return await client(settings).v1.account_links.create_async(params)
    except stripe.StripeError as exc:
        raise failed(exc) from exc


async def events_since(
    settings: Settings, since: int, account: str | None = None
) -> AsyncIterator[stripe.Event]:
    """Every event created at or after ``since`` (unix seconds), newest first."""
    options: RequestOptions = {"stripe_account": account} if account else {}
    page = await client(settings).v1.events.list_async(
        {"created": {"gte": since}, "limit": 100}, options
    )
    async for event in page.auto_paging_iter():
        yield event
