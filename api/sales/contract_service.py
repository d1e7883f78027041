"""Contracts (签约): the rules. Never commits: the request owns the transaction.

A contract is drawn from an active subscription before its deadline, from the company's
template (zh-CN or en; the built-in one without it): the parties, the unit, the agreed price in
figures and in capitals, the payment plan and the clauses. Its PDF is stored privately and its
SHA-256 kept: that hash is what the buyer consents to. The buyer receives an SMS code on the
client record's phone; the code, entered with the hash of the document shown, signs: the
company's seal is applied (PAdES, timestamped) by the signing provider, the unit goes
``subscribed -> contracted`` under its row lock, the subscription is ``contracted``, and a
completion certificate (JSON and PDF) lists the signers, how each was identified, from where,
when, the document's hashes and the hash-chained events. The housing authority's registration
(网签备案) is recorded with its number; an amendment is a new revision signed again; a
cancellation with a reason is the only way the unit goes back on sale. See docs/sales.md and
docs/signing.md."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.client import service as clients
from api.client.models import Client
from api.db import JsonObject, utcnow
from api.errors import Conflict, DomainError, ErrorCode, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.identity.models import Account
from api.identity.sms import CodeSent, Later
from api.ids import uuid7
from api.media.storage import PRIVATE_PREFIX, Storage
from api.notify.sms import SmsSender
from api.notify.templates import locale_of
from api.project.models import Building, Project
from api.sales import commission
from api.sales import contract_document as document
from api.sales import contract_repository as repo
from api.sales.models import (
    CONTRACT_STATUSES,
    IN_FORCE,
    Contract,
    ContractTemplate,
    Subscription,
)
from api.security.crypto import mask_phone
from api.security.kit import SecurityKit
from api.signing import pades, pki
from api.signing import service as signing
from api.signing.provider import SigningProvider
from api.unit import service as units
from api.unit.models import Unit
from api.validate import text
from tenants.registry import TenantInfo
from tenants.sessions import tenant_of

SUBJECT = "contract"
MAX_PAGE = 100
MAX_INSTALLMENTS = 24
MAX_CLAUSES = 30
MAX_CLAUSE = 2000
MAX_PLAN_YEARS = 10
DEFAULT_DUE_DAYS = 30
METHOD = "sms_otp_in_person"  # the buyer enters the code on the agent's device
LOCALES = ("zh-CN", "en")

SMS_TEXT = {
    "zh-CN": "[安居] {company}: 您正在签署合同 {number},验证码 {code},{minutes}分钟内有效。"
    "输入即表示您同意该合同文本。",
    "en": "[Anju] {company}: you are signing contract {number}. Your code is {code}, valid "
    "{minutes} minutes. Entering it means you agree to this contract.",
}


class SigningUnavailableError(DomainError):
    """The seal could not be applied now (no timestamp authority answered, or signing is not
    configured): nothing was signed; try again later."""

    code = ErrorCode.CONFLICT


@dataclass(frozen=True, slots=True)
class InstallmentInput:
    label: str
    amount: int
    due: date


@dataclass(frozen=True, slots=True)
class CreateInput:
    subscription_id: uuid.UUID
    locale: str | None = None
    template_id: uuid.UUID | None = None
    plan: tuple[InstallmentInput, ...] = ()
    extra_clauses: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class Signer:
    """Where the signing step comes from (recorded in the events and the certificate)."""

    ip: str = ""
    user_agent: str = ""


# ---------------------------------------------------------------- checks


async def _scope(session: AsyncSession, p: Principal) -> ColumnElement[bool]:
    """A contract is seen by whoever sees its client (the client's data scope)."""
    return await clients.visible(session, p)


async def _visible(
    session: AsyncSession, p: Principal, contract_id: uuid.UUID, *, lock: bool = False
) -> Contract:
    row = await repo.visible_contract(session, contract_id, await _scope(session, p), lock=lock)
    if row is None:
        raise NotFound("contract not found", "contractId")
    return row


def _locale(value: str | None, tenant: TenantInfo) -> str:
    if value is None or value == "":
        return locale_of(tenant.locale)
    if value not in LOCALES:
        raise ValidationFailed("locale is zh-CN or en", "locale")
    return value


def _clauses(values: tuple[str, ...] | list[str], name: str) -> list[str]:
    if len(values) > MAX_CLAUSES:
        raise ValidationFailed(f"at most {MAX_CLAUSES} clauses", name)
    out = [text(v, name, required=True, max_len=MAX_CLAUSE) for v in values]
    unknown = document.unknown_placeholders(out)
    if unknown:
        names = ", ".join("{" + u + "}" for u in unknown)
        raise ValidationFailed(
            f"unknown placeholders {names} (known: {', '.join(document.PLACEHOLDERS)})", name
        )
    return out


def _plan(
    given: tuple[InstallmentInput, ...], price: int, today: date, locale: str
) -> list[JsonObject]:
    """The installments, summing to the price; none given: the whole price due in 30 days."""
    if not given:
        label = "一次性付款" if locale == "zh-CN" else "Lump sum"
        due = today + timedelta(days=DEFAULT_DUE_DAYS)
        return [{"label": label, "amount": price, "due": due.isoformat()}]
    if len(given) > MAX_INSTALLMENTS:
        raise ValidationFailed(f"at most {MAX_INSTALLMENTS} installments", "paymentPlan")
    last = today + timedelta(days=366 * MAX_PLAN_YEARS)
    out: list[JsonObject] = []
    total = 0
    for line in given:
        label = text(line.label, "paymentPlan", required=True, max_len=100)
        if not 0 < line.amount <= price:
            raise ValidationFailed(
                "each installment is more than 0 and at most the price", "paymentPlan"
            )
        if not today <= line.due <= last:
            raise ValidationFailed(
                f"installments fall due from today to {MAX_PLAN_YEARS} years ahead", "paymentPlan"
            )
        total += line.amount
        out.append({"label": label, "amount": line.amount, "due": line.due.isoformat()})
    if total != price:
        raise ValidationFailed(
            f"the installments sum to {total}, not the price {price} (minor units)", "paymentPlan"
        )
    return out


def _deadline_open(sub: Subscription) -> None:
    if sub.status != "active":
        raise Conflict(
            f"a subscription that is {sub.status} has no contract to sign", "subscriptionId"
        )
    if sub.sign_deadline is None or sub.sign_deadline < utcnow():
        raise Conflict(
            "the subscription's signing deadline passed: extend it first", "subscriptionId"
        )


# ---------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class TemplateInput:
    locale: str
    name: str
    title: str
    clauses: tuple[str, ...]
    is_default: bool = False


async def save_template(session: AsyncSession, p: Principal, i: TemplateInput) -> ContractTemplate:
    """Create or replace (by locale and name) a template; ``is_default`` makes it the
    locale's default (the previous default stops being one)."""
    if i.locale not in LOCALES:
        raise ValidationFailed("locale is zh-CN or en", "locale")
    name = text(i.name, "name", required=True, max_len=100)
    title = text(i.title, "title", required=True, max_len=200)
    if document.unknown_placeholders([title]):
        raise ValidationFailed("the title has unknown placeholders", "title")
    clauses = _clauses(i.clauses, "clauses")
    if not clauses:
        raise ValidationFailed("a template has at least one clause", "clauses")
    if i.is_default:
        current = await repo.default_template(session, i.locale)
        if current is not None and current.name != name:
            current.is_default, current.version = False, current.version + 1
            await session.flush()
    row = await repo.template_by_name(session, i.locale, name)
    if row is None:
        row = ContractTemplate(
            id=uuid7(),
            locale=i.locale,
            name=name,
            title=title,
            clauses=clauses,
            is_default=i.is_default,
            created_by=p.account_id,
            created_at=utcnow(),
            version=1,
        )
        try:
            async with session.begin_nested():
                await repo.add(session, row)
        except IntegrityError as exc:
            raise Conflict("a template of this name was saved meanwhile", "name") from exc
        return row
    row.title, row.clauses, row.is_default = title, clauses, i.is_default
    row.version += 1
    await session.flush()
    return row


async def templates(session: AsyncSession) -> list[ContractTemplate]:
    return list(await repo.templates(session))


# ---------------------------------------------------------------- drawing the document


@dataclass(frozen=True, slots=True)
class Parties:
    client: Client
    unit: Unit
    project: Project
    building: Building | None


async def _parties(session: AsyncSession, c: Contract | Subscription) -> Parties:
    client = await session.get(Client, c.client_id)
    unit = await session.get(Unit, c.unit_id)
    project = await session.get(Project, c.project_id)
    assert client is not None and unit is not None and project is not None  # foreign keys
    building = await session.get(Building, unit.building_id)
    return Parties(client, unit, project, building)


def _number(contract_id: uuid.UUID, today: date) -> str:
    return f"HT{today:%Y%m%d}-{contract_id.hex[-6:].upper()}"


async def _draw(
    session: AsyncSession,
    kit: SecurityKit,
    storage: Storage,
    row: Contract,
    chosen: ContractTemplate | None,
) -> None:
    """Render the contract's PDF, store it privately, keep its SHA-256."""
    tenant = tenant_of(session)
    parties = await _parties(session, row)
    title, clauses = (
        (chosen.title, tuple(chosen.clauses))
        if chosen is not None
        else document.BUILTIN[row.locale]
    )
    facts = document.ContractFacts(
        number=row.number,
        revision=row.revision,
        seller=tenant.name,
        buyer=parties.client.name,
        buyer_id_number=clients.reveal(kit, tenant.id, parties.client, "id_number") or "",
        buyer_phone_mask=parties.client.phone_mask,
        project=parties.project.name,
        building=parties.building.name if parties.building else "",
        unit=parties.unit.number,
        floor=parties.unit.floor,
        gross_area=parties.unit.gross_area,
        price=row.price,
        currency=row.currency,
        plan=tuple(
            document.Installment(
                str(x["label"]), int(x["amount"]), date.fromisoformat(str(x["due"]))
            )
            for x in row.payment_plan
        ),
        title=title,
        clauses=clauses,
        extra_clauses=tuple(row.extra_clauses),
        day=row.created_at.astimezone(tenant.zone).date(),
    )
    pdf = document.render_contract(facts, row.locale)
    row.document_sha256 = signing.sha256_hex(pdf)
    row.document_key = f"{PRIVATE_PREFIX}{tenant.slug}/contracts/{row.id}.pdf"
    await storage.put(row.document_key, pdf, "application/pdf")


async def _template_for(
    session: AsyncSession, template_id: uuid.UUID | None, locale: str
) -> ContractTemplate | None:
    if template_id is None:
        return await repo.default_template(session, locale)
    chosen = await repo.template(session, template_id)
    if chosen is None:
        raise NotFound("template not found", "templateId")
    if chosen.locale != locale:
        raise ValidationFailed(f"the template is in {chosen.locale}, not {locale}", "templateId")
    return chosen


def _actor(p: Principal, signer: Signer | None = None) -> signing.Actor:
    s = signer or Signer()
    return signing.Actor(p.account_id, s.ip, s.user_agent)


def _subject(session: AsyncSession, c: Contract) -> signing.Subject:
    return signing.Subject(SUBJECT, c.id, str(uuid.UUID(tenant_of(session).id)))


async def _void_stale_drafts(session: AsyncSession, p: Principal, sub: Subscription) -> None:
    """Drafts drawn for what the subscription no longer is (another unit or price, or a
    subscription since ended on this unit) are canceled as stale, on the record."""
    stale: list[Contract] = []
    draft = await repo.draft_of_subscription(session, sub.id)
    if draft is not None and (draft.unit_id != sub.unit_id or draft.price != sub.agreed_price):
        stale.append(draft)
    for c in await repo.open_contracts_of_unit(session, sub.unit_id):
        if c.status == "draft" and c.subscription_id != sub.id:
            stale.append(c)
    for c in stale:
        c.status, c.canceled_at, c.version = "canceled", utcnow(), c.version + 1
        c.cancel_reason = "stale: the subscription changed since it was drawn"
        await signing.record(
            session, _subject(session, c), "canceled", _actor(p), reason=c.cancel_reason
        )
    if stale:
        await session.flush()


async def create(
    session: AsyncSession,
    kit: SecurityKit,
    storage: Storage,
    p: Principal,
    i: CreateInput,
    signer: Signer | None = None,
) -> Contract:
    """Draw the contract of an active subscription (before its deadline). One contract per
    unit: a draft or a contract in force already there is CONFLICT (under the
    subscription's and the unit's row locks; partial unique indexes are the last word)."""
    from api.sales.subscription_service import _visible as visible_subscription

    tenant = tenant_of(session)
    locale = _locale(i.locale, tenant)
    extra = _clauses(i.extra_clauses, "extraClauses")
    note = text(i.note, "note", required=False, max_len=300)
    chosen = await _template_for(session, i.template_id, locale)
    sub = await visible_subscription(session, p, i.subscription_id, lock=True)
    _deadline_open(sub)
    unit = await units.lock_fresh(session, sub.unit_id)
    await _void_stale_drafts(session, p, sub)
    if await repo.draft_of_subscription(session, sub.id) is not None:
        raise Conflict("the subscription's contract is already drawn", "subscriptionId")
    if await repo.open_contracts_of_unit(session, unit.id):
        raise Conflict("the unit already has a contract", "subscriptionId")
    if unit.status != "subscribed":
        raise Conflict(f"a unit that is {unit.status} cannot be contracted", "subscriptionId")
    now = utcnow()
    today = now.astimezone(tenant.zone).date()
    row = Contract(
        id=uuid7(),
        revision=1,
        subscription_id=sub.id,
        project_id=sub.project_id,
        unit_id=sub.unit_id,
        client_id=sub.client_id,
        agent_id=p.account_id,
        template_id=chosen.id if chosen is not None else None,
        locale=locale,
        status="draft",
        price=sub.agreed_price,
        currency=sub.currency,
        payment_plan=_plan(i.plan, sub.agreed_price, today, locale),
        extra_clauses=extra,
        note=note,
        created_at=now,
        version=1,
    )
    row.number = _number(row.id, today)
    await _draw(session, kit, storage, row, chosen)
    try:
        async with session.begin_nested():
            await repo.add(session, row)
    except IntegrityError as exc:  # (the locks make this the last word only)
        raise Conflict("the unit already has a contract", "subscriptionId") from exc
    await signing.record(
        session,
        _subject(session, row),
        "drawn",
        _actor(p, signer),
        number=row.number,
        revision=row.revision,
        sha256=row.document_sha256,
        template=str(row.template_id) if row.template_id else "built-in",
        locale=locale,
    )
    units.deal_event(
        session,
        row.unit_id,
        actor_id=p.account_id,
        reason=note,
        ref_id=row.id,
        data={"step": "contract_drawn", "contract": row.number, "revision": row.revision},
    )
    await session.flush()
    return row


# ---------------------------------------------------------------- signing


async def _signable(session: AsyncSession, c: Contract) -> tuple[Subscription, Unit]:
    """The contract can be signed now: a draft whose subscription is active before its
    deadline and unchanged (an original), or whose contract is in force (an amendment); the
    unit locked and where it must be."""
    if c.status != "draft":
        raise Conflict(f"a contract that is {c.status} cannot be signed", "contractId")
    sub = await session.get(Subscription, c.subscription_id, with_for_update=True)
    assert sub is not None  # a foreign key
    if c.amends_id is None:
        _deadline_open(sub)
        if sub.unit_id != c.unit_id or sub.agreed_price != c.price:
            raise Conflict(
                "the subscription changed since the contract was drawn: draw it again",
                "contractId",
            )
        unit = await units.lock_fresh(session, c.unit_id)
        if unit.status != "subscribed":
            raise Conflict(f"a unit that is {unit.status} cannot be contracted", "contractId")
    else:
        original = await session.get(Contract, c.amends_id, with_for_update=True)
        if original is None or original.status not in IN_FORCE:
            raise Conflict("the contract it amends is no longer in force", "contractId")
        unit = await units.lock_fresh(session, c.unit_id)
    return sub, unit


@dataclass(frozen=True, slots=True)
class CodeRequested:
    sent: CodeSent
    phone_mask: str  # where it went
    document_sha256: str  # the document it signs


async def request_code(
    session: AsyncSession,
    kit: SecurityKit,
    sender: SmsSender,
    p: Principal,
    contract_id: uuid.UUID,
    signer: Signer,
    *,
    later: Later | None = None,
) -> CodeRequested:
    """Send the buyer (the client record's phone) a code to sign the contract's current
    document. The limits of SMS codes apply (RATE_LIMITED)."""
    c = await _visible(session, p, contract_id, lock=True)
    await _signable(session, c)
    tenant = tenant_of(session)
    client = await session.get(Client, c.client_id)
    assert client is not None
    phone = clients.reveal(kit, tenant.id, client, "phone")
    if not phone:
        raise Conflict("the buyer has no phone to receive the code", "contractId")
    message = SMS_TEXT[c.locale].replace("{company}", tenant.name).replace("{number}", c.number)
    sent = await signing.send_code(
        session,
        kit,
        sender,
        _subject(session, c),
        document_sha256=c.document_sha256,
        phone=phone,
        ip=signer.ip,
        message=message,
        later=later,
    )
    await signing.record(
        session,
        _subject(session, c),
        "code_sent",
        _actor(p, signer),
        to=mask_phone(phone),
        sha256=c.document_sha256,
    )
    return CodeRequested(sent, client.phone_mask or mask_phone(phone), c.document_sha256)


async def sign(
    session: AsyncSession,
    kit: SecurityKit,
    storage: Storage,
    provider: SigningProvider,
    p: Principal,
    contract_id: uuid.UUID,
    *,
    code: str,
    document_sha256: str,
    signer: Signer,
) -> Contract:
    """The buyer signs: the code sent to their phone and the hash of the document they were
    shown. Refusals come before any write, except a wrong code's attempt (kept: the caller
    runs this with ``attempt(keeps=...)``). Then the seal is applied and everything is
    written: the unit contracted, the subscription contracted, the certificate issued."""
    c = await _visible(session, p, contract_id, lock=True)
    sha = (document_sha256 or "").strip().lower()
    if len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
        raise ValidationFailed("documentSha256 is 64 hexadecimal digits", "documentSha256")
    sub, unit = await _signable(session, c)
    if sha != c.document_sha256:
        raise ValidationFailed(
            "documentSha256 is not the contract's current document: show it again",
            "documentSha256",
        )
    pdf = await storage.get(c.document_key)
    if signing.sha256_hex(pdf) != c.document_sha256:  # the stored file was altered
        raise Conflict("the stored document does not match its hash: draw it again", "contractId")
    subject = _subject(session, c)
    row = await signing.check_code(session, kit, subject, document_sha256=sha, code=code)
    consented_at = datetime.now(UTC).replace(microsecond=0)
    tenant = tenant_of(session)
    try:
        sealed = await provider.seal(
            session,
            tenant,
            pdf,
            reason=f"{c.number} r{c.revision}: signed by the buyer (SMS code), sealed by "
            f"{tenant.name}",
            location=tenant.time_zone,
        )
    except (pades.SealFailed, pki.SigningUnavailable) as exc:
        raise SigningUnavailableError(f"the contract could not be sealed now: {exc}") from exc
    # -- no refusal below: everything is written
    signing.spend(row)
    client = await session.get(Client, c.client_id)
    assert client is not None
    await signing.record(
        session,
        subject,
        "consented",
        _actor(p, signer),
        signer="buyer",
        method=METHOD,
        sha256=sha,
        code_id=str(row.id),
        consented_at=consented_at.isoformat(),
    )
    signed_sha = signing.sha256_hex(sealed.pdf)
    sealed_event = await signing.record(
        session,
        subject,
        "sealed",
        _actor(p, signer),
        provider=sealed.provider,
        seal_serial=sealed.serial,
        signed_sha256=signed_sha,
        timestamp=sealed.timestamp.isoformat() if sealed.timestamp else None,
        tsa=sealed.tsa,
    )
    now = utcnow()
    c.signed_key = f"{PRIVATE_PREFIX}{tenant.slug}/contracts/{c.id}-signed.pdf"
    await storage.put(c.signed_key, sealed.pdf, "application/pdf")
    c.signed_sha256, c.signed_at = signed_sha, now
    if c.amends_id is None:
        units.deal_step(
            session,
            unit,
            "contracted",
            actor_id=p.account_id,
            reason="contract signed",
            ref_id=c.id,
            data={"contract": "signed", "number": c.number, "signed_sha256": signed_sha},
        )
        sub.status, sub.version = "contracted", sub.version + 1
    else:
        original = await session.get(Contract, c.amends_id)
        assert original is not None
        original.status, original.version = "superseded", original.version + 1
        if original.registration_number is not None:  # the registration carries over
            c.registration_number = original.registration_number
            c.registered_at = original.registered_at
        await session.flush()  # the original leaves force before the amendment enters it
        units.deal_event(
            session,
            c.unit_id,
            actor_id=p.account_id,
            reason="amendment signed",
            ref_id=c.id,
            data={"step": "contract_amended", "number": c.number, "revision": c.revision},
        )
    c.status = "registered" if c.registration_number is not None else "signed"
    c.version += 1
    await commission.on_contract_signed(session, c)  # its commission, when a rule applies
    chain = await signing.events(session, subject)
    agent = await session.get(Account, p.account_id)
    chosen = await repo.template(session, c.template_id) if c.template_id else None
    title = chosen.title if chosen is not None else document.BUILTIN[c.locale][0]
    cert: JsonObject = {
        "kind": "anju.signing.completion/1",
        "document": {
            "title": document.fill(title, {"number": c.number}),
            "number": c.number,
            "revision": c.revision,
            "contract_id": str(c.id),
            "sha256": c.document_sha256,
        },
        "signed_sha256": signed_sha,
        "signers": [
            {
                "role": "buyer",
                "name": client.name,
                "client_id": str(client.id),
                "identified_by": METHOD,
                "identification": "one-time SMS code sent to the buyer's phone on record, "
                "entered by the buyer on the sales agent's device, with the document's "
                "SHA-256 shown",
                "phone": client.phone_mask,
                "consented_at": consented_at.isoformat(),
                "ip": signer.ip,
                "user_agent": signer.user_agent,
                "presented_by": {
                    "account_id": str(p.account_id),
                    "name": agent.name if agent else "",
                },
            },
            {
                "role": "seller",
                "name": tenant.name,
                "identified_by": "electronic seal (PAdES), certificate issued by " + sealed.issuer,
                "consented_at": sealed_event.at.isoformat(),
                "ip": "",
                "user_agent": "",
            },
        ],
        "seal": {
            "provider": sealed.provider,
            "subject": sealed.subject,
            "serial": sealed.serial,
            "cert_sha256": sealed.cert_sha256,
            "issuer": sealed.issuer,
            "algorithm": sealed.algorithm,
            "timestamp": sealed.timestamp.isoformat() if sealed.timestamp else None,
            "tsa": sealed.tsa,
        },
        "events": [signing.event_json(e) for e in chain],
        "chain_head": chain[-1].hash.hex(),
        "issued_at": now.astimezone(UTC).isoformat(),
    }
    c.certificate = cert
    c.certificate_key = f"{PRIVATE_PREFIX}{tenant.slug}/contracts/{c.id}-certificate.pdf"
    await storage.put(
        c.certificate_key,
        document.render_certificate(cert, c.locale, tenant.zone),
        "application/pdf",
    )
    await session.flush()
    return c


# ---------------------------------------------------------------- after signing


async def record_registration(
    session: AsyncSession, p: Principal, contract_id: uuid.UUID, *, number: str
) -> Contract:
    """网签备案: the housing authority's registration number of a signed contract."""
    number = text(number, "number", required=True, max_len=64)
    c = await _visible(session, p, contract_id, lock=True)
    if c.status != "signed":
        what = "not signed" if c.status == "draft" else c.status
        raise Conflict(f"the contract is {what}: only a signed one is registered", "contractId")
    c.status, c.registration_number, c.registered_at = "registered", number, utcnow()
    c.version += 1
    await signing.record(session, _subject(session, c), "registered", _actor(p), number=number)
    units.deal_event(
        session,
        c.unit_id,
        actor_id=p.account_id,
        reason="",
        ref_id=c.id,
        data={"step": "contract_registered", "number": c.number, "registration": number},
    )
    await session.flush()
    return c


@dataclass(frozen=True, slots=True)
class AmendInput:
    contract_id: uuid.UUID
    reason: str
    plan: tuple[InstallmentInput, ...] | None = None
    extra_clauses: tuple[str, ...] | None = None
    template_id: uuid.UUID | None = None
    note: str = ""


async def amend(
    session: AsyncSession,
    kit: SecurityKit,
    storage: Storage,
    p: Principal,
    i: AmendInput,
) -> Contract:
    """A new revision of a contract in force (its payment plan or further clauses changed),
    drawn as a draft for the buyer to sign again; the contract stays in force until the
    amendment is signed. One amendment waits at a time."""
    reason = text(i.reason, "reason", required=True, max_len=300)
    c = await _visible(session, p, i.contract_id, lock=True)
    given = (
        await _template_for(session, i.template_id, c.locale) if i.template_id is not None else None
    )
    if c.status not in IN_FORCE:
        raise Conflict(f"a contract that is {c.status} cannot be amended", "contractId")
    if await repo.draft_amendment(session, c.id) is not None:
        raise Conflict("an amendment already waits to be signed", "contractId")
    tenant = tenant_of(session)
    now = utcnow()
    today = now.astimezone(tenant.zone).date()
    extra = _clauses(i.extra_clauses, "extraClauses") if i.extra_clauses is not None else None
    chosen = given or (await repo.template(session, c.template_id) if c.template_id else None)
    row = Contract(
        id=uuid7(),
        number=c.number,
        revision=c.revision + 1,
        amends_id=c.id,
        subscription_id=c.subscription_id,
        project_id=c.project_id,
        unit_id=c.unit_id,
        client_id=c.client_id,
        agent_id=p.account_id,
        template_id=chosen.id if chosen is not None else None,
        locale=c.locale,
        status="draft",
        price=c.price,
        currency=c.currency,
        payment_plan=(
            _plan(i.plan, c.price, today, c.locale) if i.plan is not None else c.payment_plan
        ),
        extra_clauses=extra if extra is not None else list(c.extra_clauses),
        note=text(i.note, "note", required=False, max_len=300) or reason,
        created_at=now,
        version=1,
    )
    await _draw(session, kit, storage, row, chosen)
    await repo.add(session, row)
    await signing.record(
        session,
        _subject(session, row),
        "drawn",
        _actor(p),
        number=row.number,
        revision=row.revision,
        sha256=row.document_sha256,
        amends=str(c.id),
        reason=reason,
    )
    await signing.record(
        session,
        _subject(session, c),
        "amendment_drawn",
        _actor(p),
        amendment=str(row.id),
        reason=reason,
    )
    units.deal_event(
        session,
        c.unit_id,
        actor_id=p.account_id,
        reason=reason,
        ref_id=row.id,
        data={"step": "amendment_drawn", "number": row.number, "revision": row.revision},
    )
    await session.flush()
    return row


async def cancel(
    session: AsyncSession, p: Principal, contract_id: uuid.UUID, *, reason: str
) -> Contract:
    """Cancel a contract with a reason. A draft is dropped (the subscription can draw
    another); a contract in force is canceled (解约) and its unit goes back on sale, with
    an amendment waiting for it. The only way a contracted unit is available again."""
    reason = text(reason, "reason", required=True, max_len=300)
    c = await _visible(session, p, contract_id, lock=True)
    if c.status not in ("draft", *IN_FORCE):
        raise Conflict(f"a contract that is {c.status} cannot be canceled", "contractId")
    now = utcnow()
    in_force = c.status in IN_FORCE
    if in_force:
        pending = await repo.draft_amendment(session, c.id)
        if pending is not None:
            pending.status, pending.canceled_at = "canceled", now
            pending.cancel_reason, pending.version = reason, pending.version + 1
            await signing.record(
                session, _subject(session, pending), "canceled", _actor(p), reason=reason
            )
        unit = await units.lock_fresh(session, c.unit_id)
        units.deal_step(
            session,
            unit,
            "available",
            actor_id=p.account_id,
            reason=reason,
            ref_id=c.id,
            data={"contract": "canceled", "number": c.number},
        )
    else:
        units.deal_event(
            session,
            c.unit_id,
            actor_id=p.account_id,
            reason=reason,
            ref_id=c.id,
            data={"step": "contract_dropped", "number": c.number, "revision": c.revision},
        )
    c.status, c.canceled_at, c.cancel_reason = "canceled", now, reason
    c.version += 1
    if in_force:  # its commission ends: canceled, or clawed back when accrued
        await commission.on_contract_canceled(session, c, reason=reason)
    await signing.record(session, _subject(session, c), "canceled", _actor(p), reason=reason)
    await session.flush()
    return c


# ---------------------------------------------------------------- reads


async def get(session: AsyncSession, p: Principal, contract_id: uuid.UUID) -> Contract | None:
    return await repo.visible_contract(session, contract_id, await _scope(session, p))


async def contracts(
    session: AsyncSession,
    p: Principal,
    *,
    subscription_id: uuid.UUID | None = None,
    unit_id: uuid.UUID | None = None,
    status: str | None = None,
    after: uuid.UUID | None = None,
    first: int = 50,
) -> list[Contract]:
    if status is not None and status not in CONTRACT_STATUSES:
        raise ValueError(status)
    return list(
        await repo.page(
            session,
            await _scope(session, p),
            subscription_id=subscription_id,
            unit_id=unit_id,
            status=status,
            after=after,
            limit=max(0, min(first, MAX_PAGE)) + 1,
        )
    )


async def chain_intact(session: AsyncSession, c: Contract) -> bool:
    return signing.verify_chain(await signing.events(session, _subject(session, c))) is None
