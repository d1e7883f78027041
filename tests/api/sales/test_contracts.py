"""Contracts (签约): drawn from an active subscription, signed by the buyer with an SMS code and
the document's hash, sealed (PAdES, timestamped by a loopback TSA) so that pyHanko validates
the signed file and a changed byte fails it; the completion certificate and its hash chain;
registration (网签备案), amendment and cancellation; the refusals that change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import timedelta

import pypdf
from sqlalchemy import select, update

from api.sales.models import Contract, Subscription
from api.signing import pades, pki
from api.signing import service as signing
from api.signing.models import SigningCode, SigningEvent
from tenants.sessions import TenantDatabase
from tests.api.sales.contract_helpers import (
    AMEND,
    CANCEL,
    REGISTER,
    SAVE_TEMPLATE,
    buyer_with_subscription,
    code_sent,
    create_contract,
    created,
    fetch,
    one,
    request_code,
    sign,
)
from tests.api.sales.helpers import data
from tests.api.sales.subscription_helpers import one_sub, timeline
from tests.api.unit.helpers import CHANGE_STATUS
from tests.conftest import gql
from tests.conftest import test_settings as settings_for

PRICE = 123_456_789  # 壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分


def _text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "".join(page.extract_text() for page in reader.pages)


async def _rows(engine, tenant, model, **where):
    async with TenantDatabase(engine).session(tenant) as session:
        stmt = select(model).filter_by(**where)
        return list((await session.scalars(stmt)).all())


async def _drawn_and_code(http, sms, tenant, agent, **extra):
    """A buyer's contract drawn and a signing code sent: (contract, code, unit, phone)."""
    sub, unit, phone, _ = await buyer_with_subscription(http, tenant, agent, price=PRICE)
    contract = await created(http, tenant.slug, sub["id"], agent, **extra)
    sent = await request_code(http, tenant.slug, contract["id"], agent)
    assert sent["__typename"] == "ContractSigningCodeSent", sent
    return contract, code_sent(sms, phone), unit, phone


async def test_a_contract_is_drawn_signed_sealed_and_verifiable(
    http, sms, make_tenant, member, engine
):
    tenant = await make_tenant(name="安居地产")
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"], name="李经理")
    sub, unit, phone, id_number = await buyer_with_subscription(http, tenant, agent, price=PRICE)

    contract = await created(http, slug, sub["id"], agent)
    assert contract["status"] == "DRAFT" and contract["revision"] == 1
    assert contract["price"]["minorUnits"] == PRICE
    assert contract["priceInCapitals"] == "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"
    [line] = contract["paymentPlan"]
    assert line["amount"]["minorUnits"] == PRICE and contract["signedDocumentUrl"] is None
    # The document: its hash is the stored file's, and it says what the contract is.
    doc = await fetch(http, contract["documentUrl"])
    assert doc.status_code == 200, doc.text
    assert hashlib.sha256(doc.content).hexdigest() == contract["documentSha256"]
    words = _text(doc.content)
    for expected in (
        "商品房买卖合同",
        "安居地产",
        "张三",
        id_number,
        "海港一号",
        "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分",
        "¥1,234,567.89",
        contract["number"],
    ):
        assert expected in words, (expected, words)
    assert phone not in words  # the phone only masked

    # The code goes to the buyer's phone on record (masked in the answer).
    sent = await request_code(http, slug, contract["id"], agent)
    assert sent["__typename"] == "ContractSigningCodeSent", sent
    assert sent["phone"] == phone[:6] + "****" + phone[-4:]
    assert sent["documentSha256"] == contract["documentSha256"]
    code = code_sent(sms, phone)
    assert contract["number"] in sms.last_to(phone).text

    # A hash that is not the current document's, and a wrong code: refused, nothing signed.
    other = hashlib.sha256(b"another document").hexdigest()
    got = await sign(http, slug, contract["id"], code, other, agent)
    assert (got["__typename"], got["field"]) == ("ValidationError", "documentSha256"), got
    wrong = "000000" if code != "000000" else "111111"
    got = await sign(http, slug, contract["id"], wrong, contract["documentSha256"], agent)
    assert (got["__typename"], got["field"]) == ("AuthError", "code"), got
    [row] = await _rows(engine, tenant, SigningCode, subject_id=_uuid(contract["id"]))
    assert row.attempts == 1 and row.used_at is None  # the wrong code's attempt is kept
    assert (await one(http, slug, contract["id"], agent))["status"] == "DRAFT"
    assert (await timeline(http, slug, unit))["status"] == "SUBSCRIBED"

    signed = await sign(http, slug, contract["id"], code, contract["documentSha256"], agent)
    assert signed["__typename"] == "SalesContractPayload", signed
    c = signed["contract"]
    assert c["status"] == "SIGNED" and c["signedAt"] and c["signedSha256"]
    assert c["documentSha256"] == contract["documentSha256"]

    # The unit is contracted (a status event naming the contract); the subscription too.
    tl = await timeline(http, slug, unit)
    assert tl["status"] == "CONTRACTED"
    step = [e for e in tl["timeline"] if e["kind"] == "status" and e["refId"] == c["id"]]
    assert [(e["fromStatus"], e["toStatus"]) for e in step] == [("SUBSCRIBED", "CONTRACTED")]
    drawn = [e for e in tl["timeline"] if (e["data"] or {}).get("step") == "contract_drawn"]
    assert len(drawn) == 1
    assert (await one_sub(http, slug, sub["id"], agent))["status"] == "CONTRACTED"

    # The signed file validates with pyHanko: intact, chained to the platform CA, timestamped.
    signed_pdf = (await fetch(http, c["signedDocumentUrl"])).content
    assert hashlib.sha256(signed_pdf).hexdigest() == c["signedSha256"]
    assert signed_pdf.startswith(doc.content)  # an incremental update of what was consented to
    roots = [pki.platform_ca(settings_for()).cert]
    report = await pades.validate(signed_pdf, roots)
    assert report.ok, report
    assert report.timestamp is not None and report.timestamp_trusted, report
    assert "安居地产" in report.signer
    # One byte changed inside the signed range: validation fails.
    flipped = bytearray(signed_pdf)
    at = len(doc.content) // 2
    flipped[at] ^= 0x01
    assert not (await pades.validate(bytes(flipped), roots)).ok
    # A CA that did not issue the seal: not trusted.
    stranger = pki.new_authority("Someone else")
    assert not (await pades.validate(signed_pdf, [stranger.cert])).trusted

    # The completion certificate: signers, how identified, where from, hashes, the events.
    cert = c["certificate"]
    buyer, seller = cert["signers"]
    assert buyer["identified_by"] == "sms_otp_in_person" and buyer["name"] == "张三"
    assert buyer["ip"] and buyer["user_agent"] and buyer["consented_at"]
    assert seller["role"] == "seller" and seller["name"] == "安居地产"
    assert cert["document"]["sha256"] == c["documentSha256"]
    assert cert["document"]["title"] == "商品房买卖合同"
    assert cert["signed_sha256"] == c["signedSha256"]
    assert cert["seal"]["timestamp"] and cert["seal"]["tsa"].endswith("/tsa")
    kinds = [e["kind"] for e in cert["events"]]
    assert kinds == ["drawn", "code_sent", "consented", "sealed"], kinds
    prev = ""
    for e in cert["events"]:  # each event names the hash of the one before
        assert e["prev_hash"] == prev
        prev = e["hash"]
    assert cert["chain_head"] == prev
    pdf_cert = await fetch(http, c["certificateUrl"])
    assert pdf_cert.status_code == 200 and c["signedSha256"] in _text(pdf_cert.content)
    # The stored chain holds; an event changed afterwards is found.
    events = await _rows(engine, tenant, SigningEvent, subject_id=_uuid(c["id"]))
    events.sort(key=lambda e: e.seq)
    assert signing.verify_chain(events) is None
    events[1].data = {**events[1].data, "to": "+86138****9999"}
    assert signing.verify_chain(events) == 2

    # The code is spent: signing again is refused; the registration is recorded.
    again = await sign(http, slug, c["id"], code, c["documentSha256"], agent)
    assert again["__typename"] == "ConflictError", again
    res = await gql(http, REGISTER, {"c": c["id"], "number": "YS2026-000123"}, tenant=slug)
    reg = data(res, "recordContractRegistration")["contract"]
    assert reg["status"] == "REGISTERED" and reg["registrationNumber"] == "YS2026-000123"

    # Only the cancellation puts the unit back on sale.
    res = await gql(
        http,
        CHANGE_STATUS,
        {"input": {"unitId": unit, "status": "AVAILABLE", "reason": "x"}},
        tenant=slug,
    )
    assert res["data"]["changeUnitStatus"]["__typename"] == "ConflictError", res
    res = await gql(http, CANCEL, {"c": c["id"], "reason": "买方解约"}, tenant=slug)
    canceled = data(res, "cancelContract")["contract"]
    assert canceled["status"] == "CANCELED" and canceled["cancelReason"] == "买方解约"
    tl = await timeline(http, slug, unit)
    assert tl["status"] == "AVAILABLE"
    last = [e for e in tl["timeline"] if e["kind"] == "status"][-1]
    assert (last["fromStatus"], last["toStatus"], last["reason"]) == (
        "CONTRACTED",
        "AVAILABLE",
        "买方解约",
    )


def _uuid(value: str):
    import uuid

    return uuid.UUID(value)


async def test_one_contract_per_unit_even_when_drawn_at_once(http, make_tenant, member, engine):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    sub, _, _, _ = await buyer_with_subscription(http, tenant, agent)
    answers = await asyncio.gather(
        *(create_contract(http, tenant.slug, sub["id"], agent) for _ in range(6))
    )
    kinds = sorted(a["__typename"] for a in answers)
    assert kinds == ["ConflictError"] * 5 + ["SalesContractPayload"], answers
    assert len(await _rows(engine, tenant, Contract)) == 1
    # A second one later: the same typed error, nothing added.
    again = await create_contract(http, tenant.slug, sub["id"], agent)
    assert (again["__typename"], again["field"]) == ("ConflictError", "subscriptionId")
    assert len(await _rows(engine, tenant, Contract)) == 1


async def test_a_deadline_passed_refuses_drawing_and_signing(
    http, sms, make_tenant, member, engine
):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    contract, code, unit, _ = await _drawn_and_code(http, sms, tenant, agent)
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.id == _uuid(contract["subscriptionId"]))
            .values(sign_deadline=Subscription.sign_deadline - timedelta(days=30))
        )
        await session.commit()
    got = await sign(http, tenant.slug, contract["id"], code, contract["documentSha256"], agent)
    assert (got["__typename"], got["field"]) == ("ConflictError", "subscriptionId"), got
    assert "deadline" in got["message"]
    assert (await one(http, tenant.slug, contract["id"], agent))["status"] == "DRAFT"
    [row] = await _rows(engine, tenant, SigningCode)
    assert row.used_at is None and row.attempts == 0  # the code is not spent
    assert (await timeline(http, tenant.slug, unit))["status"] == "SUBSCRIBED"
    # A new contract for it is refused too.
    await gql(
        http,
        CANCEL,
        {"c": contract["id"], "reason": "redraw"},
        tenant=tenant.slug,
    )
    again = await create_contract(http, tenant.slug, contract["subscriptionId"], agent)
    assert again["__typename"] == "ConflictError" and "deadline" in again["message"], again


async def test_expired_and_burnt_codes_do_not_sign(http, sms, make_tenant, member, engine):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    contract, code, _, phone = await _drawn_and_code(http, sms, tenant, agent)
    sha = contract["documentSha256"]
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(SigningCode).values(expires_at=SigningCode.created_at - timedelta(seconds=1))
        )
        await session.commit()
    got = await sign(http, tenant.slug, contract["id"], code, sha, agent)
    assert (got["__typename"], got["field"]) == ("AuthError", "code"), got
    # A new code (the last one was sent long ago, as far as the limits go).
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(SigningCode).values(created_at=SigningCode.created_at - timedelta(hours=2))
        )
        await session.commit()
    sent = await request_code(http, tenant.slug, contract["id"], agent)
    assert sent["__typename"] == "ContractSigningCodeSent", sent
    fresh = code_sent(sms, phone)
    assert fresh != code or len(sms.outbox) > 1
    wrong = "000000" if fresh != "000000" else "111111"
    for _ in range(settings_for().sms_code_max_attempts):
        got = await sign(http, tenant.slug, contract["id"], wrong, sha, agent)
        assert got["__typename"] == "AuthError", got
    got = await sign(http, tenant.slug, contract["id"], fresh, sha, agent)  # burnt
    assert (got["__typename"], got["field"]) == ("AuthError", "code"), got
    assert "too many" in got["message"]
    assert (await one(http, tenant.slug, contract["id"], agent))["status"] == "DRAFT"


async def test_unsigned_contracts_are_not_registered_and_others_ids_are_not_found(
    http, sms, make_tenant, member
):
    tenant = await make_tenant()
    other = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    _, other_agent = await member(other, ["agent"])
    sub, _, _, _ = await buyer_with_subscription(http, tenant, agent)
    contract = await created(http, tenant.slug, sub["id"], agent)
    res = await gql(http, REGISTER, {"c": contract["id"], "number": "YS-1"}, tenant=tenant.slug)
    got = data(res, "recordContractRegistration")
    assert got["__typename"] == "ConflictError" and "not signed" in got["message"], got
    # Another tenant's ids are not found there (and nothing is sent or changed).
    before = len(sms.outbox)
    got = await request_code(http, other.slug, contract["id"], other_agent)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "contractId"), got
    got = await create_contract(http, other.slug, sub["id"], other_agent)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "subscriptionId"), got
    got = await sign(http, other.slug, contract["id"], "123456", contract["documentSha256"])
    assert got["__typename"] == "NotFoundError", got
    assert await one(http, other.slug, contract["id"]) is None
    assert len(sms.outbox) == before
    # Another agent of the same tenant does not see this agent's buyer's contract.
    _, colleague = await member(tenant, ["agent"])
    assert await one(http, tenant.slug, contract["id"], colleague) is None
    # NUL characters and unknown placeholders are refused.
    res = await gql(http, CANCEL, {"c": contract["id"], "reason": "a\x00b"}, tenant=tenant.slug)
    assert "errors" in res or data(res, "cancelContract")["__typename"] == "ValidationError", res
    res = await gql(
        http,
        SAVE_TEMPLATE,
        {
            "input": {
                "locale": "zh-CN",
                "name": "标准",
                "title": "合同",
                "clauses": ["{buyer} {__import__}"],
            }
        },
        tenant=tenant.slug,
    )
    got = data(res, "saveContractTemplate")
    assert (got["__typename"], got["field"]) == ("ValidationError", "clauses"), got
    # A bad hash is a typed error before anything is read.
    got = await sign(http, tenant.slug, contract["id"], "123456", "not-a-hash", agent)
    assert (got["__typename"], got["field"]) == ("ValidationError", "documentSha256"), got


async def test_templates_fill_placeholders_as_text(http, make_tenant, member):
    tenant = await make_tenant(name="Acme Homes", locale="en")
    _, agent = await member(tenant, ["agent"])
    res = await gql(
        http,
        SAVE_TEMPLATE,
        {
            "input": {
                "locale": "en",
                "name": "standard",
                "title": "Sale Contract {number}",
                "clauses": [
                    "The buyer {buyer} pays {price} ({price_capitals}) for unit {unit}.",
                    "Braces that are no placeholder stay: {x-y} and <b>markup</b>.",
                ],
                "isDefault": True,
            }
        },
        tenant=tenant.slug,
    )
    template = data(res, "saveContractTemplate")["template"]
    assert template["isDefault"]
    sub, _, _, _ = await buyer_with_subscription(
        http, tenant, agent, price=100_000_000, name="{seller} Smith"
    )
    contract = await created(http, tenant.slug, sub["id"], agent)
    assert contract["templateId"] == template["id"] and contract["locale"] == "en"
    words = _text((await fetch(http, contract["documentUrl"])).content)
    assert f"Sale Contract {contract['number']}" in words
    # The buyer's name is inserted as text: its braces are not filled again.
    assert "The buyer {seller} Smith pays" in words, words
    assert "壹佰万元整" in words
    assert "{x-y} and <b>markup</b>" in words, words


async def test_an_amendment_is_signed_again_and_supersedes(http, sms, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    contract, code, unit, phone = await _drawn_and_code(http, sms, tenant, agent)
    signed = await sign(http, slug, contract["id"], code, contract["documentSha256"], agent)
    assert signed["__typename"] == "SalesContractPayload", signed
    half = PRICE // 2
    plan = [
        {"label": "首付", "amount": half, "due": "2027-01-15"},
        {"label": "尾款", "amount": PRICE - half, "due": "2027-06-30"},
    ]
    res = await gql(
        http,
        AMEND,
        {"input": {"contractId": contract["id"], "reason": "分期付款", "paymentPlan": plan}},
        tenant=slug,
        token=agent,
    )
    amendment = data(res, "amendContract")["contract"]
    assert (amendment["revision"], amendment["amendsId"], amendment["status"]) == (
        2,
        contract["id"],
        "DRAFT",
    )
    assert amendment["number"] == contract["number"]
    assert [p["amount"]["minorUnits"] for p in amendment["paymentPlan"]] == [half, PRICE - half]
    assert (await one(http, slug, contract["id"], agent))["status"] == "SIGNED"
    # A plan that does not sum to the price is refused.
    bad = [{"label": "x", "amount": 1, "due": "2027-01-15"}]
    res = await gql(
        http,
        AMEND,
        {"input": {"contractId": contract["id"], "reason": "r", "paymentPlan": bad}},
        tenant=slug,
        token=agent,
    )
    assert data(res, "amendContract")["__typename"] in ("ValidationError", "ConflictError")
    sent = await request_code(http, slug, amendment["id"], agent)
    assert sent["__typename"] == "ContractSigningCodeSent", sent
    # The first code does not sign the amendment.
    got = await sign(http, slug, amendment["id"], code, amendment["documentSha256"], agent)
    assert got["__typename"] == "AuthError", got
    fresh = code_sent(sms, phone)
    got = await sign(http, slug, amendment["id"], fresh, amendment["documentSha256"], agent)
    assert got["__typename"] == "SalesContractPayload", got
    assert got["contract"]["status"] == "SIGNED"
    assert (await one(http, slug, contract["id"], agent))["status"] == "SUPERSEDED"
    assert (await timeline(http, slug, unit))["status"] == "CONTRACTED"
    roots = [pki.platform_ca(settings_for()).cert]
    pdf = (await fetch(http, got["contract"]["signedDocumentUrl"])).content
    assert (await pades.validate(pdf, roots)).ok


async def test_no_answer_from_the_timestamp_authority_signs_nothing(
    live_server_factory, make_tenant, member, engine
):
    import socket

    import httpx

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/tsa"
    sock.close()  # nothing listens there
    with live_server_factory(
        signing_tsa_url=dead, signing_tsa_timeout=2, live_relay_in_process=False
    ) as server:
        sms = server.server.config.app.state.sms
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            tenant = await make_tenant()
            _, agent = await member(tenant, ["agent"])
            contract, code, unit, _ = await _drawn_and_code(http, sms, tenant, agent)
            got = await sign(http, tenant.slug, contract["id"], code, contract["documentSha256"])
            assert got["__typename"] == "ConflictError", got
            assert "could not be sealed" in got["message"]
            assert (await one(http, tenant.slug, contract["id"]))["status"] == "DRAFT"
            assert (await timeline(http, tenant.slug, unit))["status"] == "SUBSCRIBED"
    [row] = await _rows(engine, tenant, SigningCode)
    assert row.used_at is None and row.attempts == 0  # the buyer can enter it again
    kinds = [e.kind for e in await _rows(engine, tenant, SigningEvent)]
    assert sorted(kinds) == ["code_sent", "drawn"], kinds
