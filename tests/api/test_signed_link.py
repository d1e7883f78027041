"""Signed, expiring links (api/signed_link.py), the one implementation behind receipts and
subscription agreements: a link opens only its own kind, object, tenant and locale, until its
expiry; anything else (a tampered or expired link, a NUL byte, a huge expiry) is refused, never
an error."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest

from api.payment import receipts
from api.sales import agreement
from api.security.kit import build_kit


@pytest.fixture(scope="module")
def kit(settings):
    return build_kit(settings)


def parts(url: str) -> dict[str, str]:
    path, query = url.split("?")
    kind, slug, name = path.rsplit("/", 3)[1:]
    fields = dict(p.split("=", 1) for p in query.split("&"))
    return {"kind": kind, "slug": slug, "id": name.removesuffix(".pdf"), **fields}


def test_a_link_opens_its_own_object_only(kit):
    tenant = SimpleNamespace(id="tenant-1", slug="acme")
    oid = uuid.uuid4()
    url = receipts.LINK.url("http://h", kit, tenant, oid, "en")
    p = parts(url)
    assert (p["kind"], p["slug"], p["id"], p["locale"]) == ("receipts", "acme", str(oid), "en")
    assert int(p["exp"]) - time.time() == pytest.approx(receipts.TTL, abs=5)

    def ok(link, tenant_id=tenant.id, oid=str(oid), locale="en", exp=p["exp"], sig=p["sig"]):
        return link.valid(kit, tenant_id, oid, locale, exp, sig)

    assert ok(receipts.LINK)
    # The same query string on another kind, object, tenant or locale opens nothing.
    assert not ok(agreement.LINK)
    assert not ok(receipts.LINK, oid=str(uuid.uuid4()))
    assert not ok(receipts.LINK, tenant_id="tenant-2")
    assert not ok(receipts.LINK, locale="zh-CN")
    # Tampered, expired, malformed or absurd values are refused, not errors.
    assert not ok(receipts.LINK, sig=p["sig"][:-1] + ("A" if p["sig"][-1] != "A" else "B"))
    assert not ok(receipts.LINK, exp=str(int(p["exp"]) + 1))
    for exp in ("", "x", "1\x00", "-1", "9" * 400, str(int(time.time()) - 1)):
        assert not ok(receipts.LINK, exp=exp)
    assert not ok(receipts.LINK, locale="en\x00")
    assert not ok(receipts.LINK, sig="")


def test_an_unknown_locale_falls_back_to_the_default(kit):
    tenant = SimpleNamespace(id="tenant-1", slug="acme")
    p = parts(agreement.LINK.url("http://h", kit, tenant, uuid.uuid4(), "xx-YY"))
    assert p["locale"] in agreement.LABELS
    assert agreement.LINK.valid(kit, "tenant-1", p["id"], p["locale"], p["exp"], p["sig"])


def test_a_link_without_a_locale_refuses_one(kit):
    # The visit-code QR image is drawn in no locale: its links carry none and accept none.
    from api.sales import attribution

    tenant = SimpleNamespace(id="tenant-1", slug="acme")
    url = attribution.QR_LINK.url("http://h", kit, tenant, uuid.uuid4())
    assert "locale=" not in url and url.split("?")[0].endswith(".svg")
    path, query = url.split("?")
    oid = path.rsplit("/", 1)[1].removesuffix(".svg")
    q = dict(p.split("=", 1) for p in query.split("&"))
    assert attribution.QR_LINK.valid(kit, "tenant-1", oid, "", q["exp"], q["sig"])
    assert not attribution.QR_LINK.valid(kit, "tenant-1", oid, "en", q["exp"], q["sig"])
    assert not receipts.LINK.valid(kit, "tenant-1", oid, "", q["exp"], q["sig"])
