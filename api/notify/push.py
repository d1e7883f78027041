"""Push senders: FCM HTTP v1 through firebase-admin's async API, or a log sender (development,
no credentials). A sender takes messages and returns one result per message, in order; what
to do with a result (drop the token, back off, retry, alert) is decided by api/notify/delivery.py.

Pointing firebase-admin elsewhere (a loopback FCM in tests, a regional endpoint) sets its
messaging service's endpoint URL and HTTP client: the SDK has no public option for either."""

from __future__ import annotations

import email.utils
import itertools
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog

if TYPE_CHECKING:
    from firebase_admin import messaging  # untyped: its names are Any to mypy

    from api.settings import Settings

log = structlog.get_logger("anju.push")

BATCH = 500  # FCM's limit per send_each call
# Messages handed to the SDK at once (``ANJU_FCM_CONCURRENCY``): it sends one HTTP request per
# message, all concurrently. httpx's pool does work per queued request for every request, so
# fewer at once cost less CPU per message (loopback: 10 at a time 1.1 ms, 100 at a time
# 1.9 ms), while a distant FCM needs more in flight to cover its round trips.
GROUP = 50


@dataclass(frozen=True)
class PushMessage:
    token: str
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)
    urgent: bool = False
    collapse_key: str | None = None
    fid: bool = False  # ``token`` is a Firebase installation ID


@dataclass(frozen=True)
class PushResult:
    ok: bool
    code: str = ""  # UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT, QUOTA_EXCEEDED,
    #                 UNAVAILABLE, INTERNAL, THIRD_PARTY_AUTH_ERROR, UNKNOWN
    retry_after: float | None = None
    message_id: str = ""
    detail: str = ""


class PushSender(Protocol):
    async def send(self, messages: list[PushMessage]) -> list[PushResult]: ...

    async def close(self) -> None: ...


class LogPushSender:
    """No Firebase credentials (development): log each message; the inbox still works."""

    def __init__(self) -> None:
        self.sent: list[PushMessage] = []

    async def send(self, messages: list[PushMessage]) -> list[PushResult]:
        for m in messages:
            log.info("push (log sender)", token=m.token[:12], title=m.title, body=m.body)
        self.sent.extend(messages)
        return [PushResult(True, message_id=f"log-{i}") for i, _ in enumerate(messages)]

    async def close(self) -> None:
        pass


class FcmPushSender:
    _names = itertools.count(1)

    def __init__(
        self,
        project_id: str,
        *,
        credentials_file: str = "",
        access_token: str = "",
        url: str = "",
        retries: int = 4,
        timeout: int = 30,
        concurrency: int = GROUP,
    ) -> None:
        import firebase_admin
        from firebase_admin import credentials

        if credentials_file:
            cred = credentials.Certificate(credentials_file)
        elif access_token:
            cred = _StaticToken(access_token)
        else:
            cred = credentials.ApplicationDefault()
        self.app = firebase_admin.initialize_app(
            cred,
            {"projectId": project_id, "httpTimeout": timeout},
            name=f"anju-push-{next(self._names)}",
        )
        self.project_id = project_id
        self.url = url.rstrip("/")
        self.retries = retries
        self.concurrency = max(1, min(concurrency, BATCH))

    def _service(self) -> Any:  # firebase-admin's (private) messaging service
        from firebase_admin import _http_client, _retry, messaging

        service = messaging._get_messaging_service(self.app)
        if not getattr(service, "_anju_configured", False):
            if self.url:
                service._fcm_url = f"{self.url}/v1/projects/{self.project_id}/messages:send"
            retry = _retry.HttpxRetry(
                max_retries=self.retries, status_forcelist=[500, 503], backoff_factor=0.5
            )
            client = _http_client.HttpxAsyncClient(
                credential=service._credential,
                retry_config=retry,
                timeout=self.app.options.get("httpTimeout", 30),
                http2=not self.url.startswith("http://"),
            )
            service._async_client = client
            service._anju_configured = True
            self._configured = service
        return service

    async def send(self, messages: list[PushMessage]) -> list[PushResult]:

        service = self._service()
        results: list[PushResult] = []
        for start in range(0, len(messages), self.concurrency):
            chunk = messages[start : start + self.concurrency]
            try:
                batch = await service.send_each_async([_fcm(m) for m in chunk], dry_run=False)
            except Exception as exc:  # the whole call failed (auth, network): retry them all
                log.warning("push batch failed", error=repr(exc)[:300], size=len(chunk))
                results.extend(PushResult(False, "UNKNOWN", detail=repr(exc)[:300]) for _ in chunk)
                continue
            results.extend(_result(r) for r in batch.responses)
        return results

    async def close(self) -> None:
        import asyncio

        import firebase_admin

        # The SDK closes its async client with asyncio.run(): close it here, in this loop,
        # then let the SDK clean up from a thread (its second close does nothing).
        if getattr(self, "_configured", None) is not None:
            await self._configured._async_client.aclose()
        await asyncio.to_thread(firebase_admin.delete_app, self.app)


def _fcm(m: PushMessage) -> messaging.Message:

    address = {"fid": m.token} if m.fid else {"token": m.token}
    with warnings.catch_warnings():  # the SDK now prefers fid; tokens remain what apps send
        warnings.simplefilter("ignore", DeprecationWarning)
        return _message(m, address)


def _message(m: PushMessage, address: dict[str, str]) -> messaging.Message:
    from firebase_admin import messaging

    return messaging.Message(
        **address,
        notification=messaging.Notification(title=m.title, body=m.body),
        data=m.data or None,
        android=messaging.AndroidConfig(
            priority="high" if m.urgent else "normal", collapse_key=m.collapse_key
        ),
        apns=messaging.APNSConfig(
            headers={
                "apns-priority": "10" if m.urgent else "5",
                **({"apns-collapse-id": m.collapse_key} if m.collapse_key else {}),
            }
        ),
    )


def _result(response: messaging.SendResponse) -> PushResult:
    from firebase_admin import exceptions, messaging

    if response.success:
        return PushResult(True, message_id=response.message_id or "")
    exc = response.exception
    code = "UNKNOWN"
    for kind, name in (
        (messaging.UnregisteredError, "UNREGISTERED"),
        (messaging.SenderIdMismatchError, "SENDER_ID_MISMATCH"),
        (messaging.QuotaExceededError, "QUOTA_EXCEEDED"),
        (messaging.ThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"),
        (exceptions.InvalidArgumentError, "INVALID_ARGUMENT"),
        (exceptions.UnavailableError, "UNAVAILABLE"),
        (exceptions.InternalError, "INTERNAL"),
    ):
        if isinstance(exc, kind):
            code = name
            break
    http = getattr(exc, "http_response", None)
    retry_after = _retry_after(http.headers.get("retry-after", "")) if http is not None else None
    return PushResult(False, code, retry_after, detail=str(exc)[:300])


def _retry_after(value: str) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _StaticToken:
    """A credential holding an OAuth access token obtained elsewhere (a token broker, an
    emulator, the tests' loopback FCM): no call to Google's token endpoint."""

    def __new__(cls, token: str) -> Any:  # a firebase_admin credentials.Base (untyped)
        from firebase_admin import credentials
        from google.oauth2.credentials import Credentials

        class Fixed(Credentials):
            def refresh(self, request: object) -> None:
                pass  # nothing to refresh with: a 401 comes back as the platform's answer

        class StaticToken(credentials.Base):
            def __init__(self) -> None:
                self._credential = Fixed(token=token)

            def get_credential(self) -> Credentials:
                return self._credential

        return StaticToken()


def make_push_sender(settings: Settings) -> LogPushSender | FcmPushSender:
    if not settings.fcm_project_id:
        return LogPushSender()
    return FcmPushSender(
        settings.fcm_project_id,
        credentials_file=settings.fcm_credentials_file,
        access_token=settings.fcm_access_token,
        url=settings.fcm_url,
        retries=settings.fcm_retries,
        concurrency=settings.fcm_concurrency,
    )
