"""GraphQL of contracts (签约): templates, drawing a contract from a subscription, the buyer's
SMS code and signature (sealed, PAdES), the housing authority's registration (网签备案),
amendments and cancellation; the documents at private, expiring links."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
    attempt,
)
from api.graphql.permissions import requires
from api.graphql.types import (
    Long,
    Money,
    Node,
    PageInfo,
    after_values,
    edges_of,
    parse_id,
    require_id,
)
from api.rmb import capitals
from api.sales import contract_service as service
from api.sales.models import Contract as ContractRow
from api.sales.models import ContractStatus
from api.sales.models import ContractTemplate as TemplateRow
from api.signing.provider import provider_for

strawberry.enum(
    ContractStatus,
    name="SalesContractStatus",
    description="DRAFT: drawn, waits for the buyer's signature; SIGNED: signed by the buyer "
    "and sealed; REGISTERED: 网签备案 recorded; SUPERSEDED: an amendment was signed in its "
    "place; CANCELED: canceled with a reason (a signed one put the unit back on sale).",
)

SORT = "NEWEST"
MAX_LIST = 50  # installments or clauses in one input (the service allows fewer)


def _sid(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type
class ContractInstallment:
    label: str
    amount: Money
    amount_in_capitals: str = strawberry.field(description="人民币大写")
    due: date


@strawberry.type(description="A company's contract template in one locale.")
class ContractTemplate(Node):
    id: strawberry.ID
    locale: str
    name: str
    title: str
    clauses: list[str] = strawberry.field(
        description="Text blocks with {placeholders}: " + ", ".join(service.document.PLACEHOLDERS)
    )
    is_default: bool
    version: int

    @classmethod
    def of(cls, t: TemplateRow) -> ContractTemplate:
        return cls(
            id=strawberry.ID(str(t.id)),
            locale=t.locale,
            name=t.name,
            title=t.title,
            clauses=list(t.clauses),
            is_default=t.is_default,
            version=t.version,
        )


@strawberry.type(
    description="A sale contract (商品房买卖合同) drawn from a subscription; an amendment is "
    "a new revision with the same number."
)
class SalesContract(Node):
    id: strawberry.ID
    number: str
    revision: int
    amends_id: strawberry.ID | None = strawberry.field(description="The contract it amends.")
    status: ContractStatus
    subscription_id: strawberry.ID
    project_id: strawberry.ID
    unit_id: strawberry.ID
    client_id: strawberry.ID
    agent_id: strawberry.ID = strawberry.field(description="Who drew it.")
    template_id: strawberry.ID | None = strawberry.field(description="null: the built-in one.")
    locale: str
    price: Money
    price_in_capitals: str = strawberry.field(description="人民币大写, e.g. 壹佰万元整")
    payment_plan: list[ContractInstallment]
    extra_clauses: list[str]
    note: str
    document_sha256: str = strawberry.field(
        description="SHA-256 of the document to sign: the buyer consents to this hash."
    )
    signed_sha256: str | None
    signed_at: datetime | None
    registration_number: str | None = strawberry.field(description="网签备案 number.")
    registered_at: datetime | None
    canceled_at: datetime | None
    cancel_reason: str | None
    created_at: datetime
    version: int
    row: strawberry.Private[ContractRow]

    @classmethod
    def of(cls, c: ContractRow) -> SalesContract:
        cur = c.currency
        return cls(
            id=strawberry.ID(str(c.id)),
            number=c.number,
            revision=c.revision,
            amends_id=_sid(c.amends_id),
            status=ContractStatus(c.status),
            subscription_id=strawberry.ID(str(c.subscription_id)),
            project_id=strawberry.ID(str(c.project_id)),
            unit_id=strawberry.ID(str(c.unit_id)),
            client_id=strawberry.ID(str(c.client_id)),
            agent_id=strawberry.ID(str(c.agent_id)),
            template_id=_sid(c.template_id),
            locale=c.locale,
            price=Money(minor_units=Long(c.price), currency=cur),
            price_in_capitals=capitals(c.price),
            payment_plan=[
                ContractInstallment(
                    label=str(x["label"]),
                    amount=Money(minor_units=Long(int(x["amount"])), currency=cur),
                    amount_in_capitals=capitals(int(x["amount"])),
                    due=date.fromisoformat(str(x["due"])),
                )
                for x in c.payment_plan
            ],
            extra_clauses=list(c.extra_clauses),
            note=c.note,
            document_sha256=c.document_sha256,
            signed_sha256=c.signed_sha256,
            signed_at=c.signed_at,
            registration_number=c.registration_number,
            registered_at=c.registered_at,
            canceled_at=c.canceled_at,
            cancel_reason=c.cancel_reason,
            created_at=c.created_at,
            version=c.version,
            row=c,
        )

    @strawberry.field(
        permission_classes=[requires("sales.contract.read")],
        description="The document to sign (PDF), a private link that expires.",
    )
    def document_url(self, info: strawberry.Info) -> str:
        return str(info.context.storage.private_url(self.row.document_key))

    @strawberry.field(
        permission_classes=[requires("sales.contract.read")],
        description="The signed, sealed document (PDF, PAdES), a private link that expires; "
        "null until signed.",
    )
    def signed_document_url(self, info: strawberry.Info) -> str | None:
        key = self.row.signed_key
        return str(info.context.storage.private_url(key)) if key else None

    @strawberry.field(
        permission_classes=[requires("sales.contract.read")],
        description="The signing's completion certificate (PDF), a private link that "
        "expires; null until signed.",
    )
    def certificate_url(self, info: strawberry.Info) -> str | None:
        key = self.row.certificate_key
        return str(info.context.storage.private_url(key)) if key else None

    @strawberry.field(
        permission_classes=[requires("sales.contract.read")],
        description="The completion certificate as JSON: signers, how each was identified, "
        "IP, user agent, times, the document's SHA-256, the seal and the hash-chained events.",
    )
    def certificate(self) -> JSON | None:
        return JSON(self.row.certificate) if self.row.certificate is not None else None


@strawberry.type
class SalesContractEdge:
    cursor: str
    node: SalesContract


@strawberry.type
class SalesContractConnection:
    edges: list[SalesContractEdge]
    page_info: PageInfo


@strawberry.input(description="One installment of the payment plan; amounts sum to the price.")
class ContractInstallmentInput:
    label: str
    amount: Long
    due: date


@strawberry.input(
    description="Draw the contract of an ACTIVE subscription before its deadline. locale: "
    "zh-CN or en (default: the company's); templateId: one of the company's templates "
    "(default: the locale's default, else the built-in one); paymentPlan: installments "
    "summing to the agreed price (default: the whole price within 30 days)."
)
class CreateContractInput:
    subscription_id: strawberry.ID
    locale: str | None = None
    template_id: strawberry.ID | None = None
    payment_plan: list[ContractInstallmentInput] | None = None
    extra_clauses: list[str] | None = None
    note: str = ""


@strawberry.input(
    description="A new revision of a contract in force, signed again by the buyer; what is "
    "not given stays as it was."
)
class AmendContractInput:
    contract_id: strawberry.ID
    reason: str
    payment_plan: list[ContractInstallmentInput] | None = None
    extra_clauses: list[str] | None = None
    template_id: strawberry.ID | None = None


@strawberry.input
class ContractTemplateInput:
    locale: str
    name: str
    title: str
    clauses: list[str]
    is_default: bool = False


@strawberry.type
class SalesContractPayload:
    contract: SalesContract


@strawberry.type
class ContractTemplatePayload:
    template: ContractTemplate


@strawberry.type(description="The code is on its way to the buyer's phone (masked here).")
class ContractSigningCodeSent:
    expires_at: datetime
    resend_after_seconds: int
    phone: str
    document_sha256: str


_Errors = ValidationError | ConflictError | NotFoundError | PermissionDeniedError | AuthError
SalesContractResult = Annotated[
    SalesContractPayload | _Errors, strawberry.union("SalesContractResult")
]
SignContractResult = Annotated[
    SalesContractPayload | _Errors | RateLimitedError, strawberry.union("SignContractResult")
]
ContractSigningCodeResult = Annotated[
    ContractSigningCodeSent | _Errors | RateLimitedError,
    strawberry.union("ContractSigningCodeResult"),
]
ContractTemplateResult = Annotated[
    ContractTemplatePayload | _Errors, strawberry.union("ContractTemplateResult")
]


def _plan(given: list[ContractInstallmentInput] | None) -> tuple[service.InstallmentInput, ...]:
    if given and len(given) > MAX_LIST:
        raise service.ValidationFailed(f"at most {MAX_LIST} installments", "paymentPlan")
    return tuple(service.InstallmentInput(i.label, i.amount, i.due) for i in given or ())


def _texts(given: list[str] | None, name: str) -> tuple[str, ...]:
    if given and len(given) > MAX_LIST:
        raise service.ValidationFailed(f"at most {MAX_LIST} clauses", name)
    return tuple(given or ())


def _signer(info: strawberry.Info) -> service.Signer:
    ctx = info.context
    return service.Signer(ip=ctx.client_ip, user_agent=ctx.user_agent[:300])


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("sales.contract.read")],
        description="A contract whose client the caller may see.",
    )
    async def sales_contract(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> SalesContract | None:
        ctx = info.context
        cid = parse_id(id)
        if cid is None:
            return None
        row = await service.get(ctx.session, ctx.principal_now(), cid)
        return SalesContract.of(row) if row else None

    @strawberry.field(
        permission_classes=[requires("sales.contract.read")],
        description="Contracts whose client the caller may see, newest first.",
    )
    async def sales_contracts(
        self,
        info: strawberry.Info,
        subscription_id: strawberry.ID | None = None,
        unit_id: strawberry.ID | None = None,
        status: ContractStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> SalesContractConnection:
        ctx = info.context
        cursor = after_values(after, SORT, None)
        sub = parse_id(subscription_id) if subscription_id else None
        unit = parse_id(unit_id) if unit_id else None
        if (subscription_id and sub is None) or (unit_id and unit is None):
            return SalesContractConnection(
                edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None)
            )
        first = max(0, min(first, service.MAX_PAGE))
        rows = await service.contracts(
            ctx.session,
            ctx.principal_now(),
            subscription_id=sub,
            unit_id=unit,
            status=status.value if status else None,
            after=cursor[0] if cursor else None,
            first=first,
        )
        edges, page_info = edges_of(
            [(r, None) for r in rows],
            first,
            SORT,
            lambda c, r: SalesContractEdge(cursor=c, node=SalesContract.of(r)),
        )
        return SalesContractConnection(edges=edges, page_info=page_info)

    @strawberry.field(
        permission_classes=[requires("sales.contract.read")],
        description="The company's contract templates (without one in a locale, contracts "
        "use the built-in template).",
    )
    async def contract_templates(self, info: strawberry.Info) -> list[ContractTemplate]:
        return [ContractTemplate.of(t) for t in await service.templates(info.context.session)]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("sales.contract.template")],
        description="Create or replace (by locale and name) a contract template; clauses use "
        "named {placeholders} only (an unknown one is refused).",
    )
    async def save_contract_template(
        self, info: strawberry.Info, input: ContractTemplateInput
    ) -> ContractTemplateResult:
        ctx = info.context

        async def work() -> ContractTemplatePayload:
            row = await service.save_template(
                ctx.session,
                ctx.principal_now(),
                service.TemplateInput(
                    locale=input.locale,
                    name=input.name,
                    title=input.title,
                    clauses=_texts(input.clauses, "clauses"),
                    is_default=input.is_default,
                ),
            )
            ctx.audit(
                "sales.contract.template_saved",
                target_type="contract_template",
                target_id=row.id,
                locale=row.locale,
                name=row.name,
            )
            return ContractTemplatePayload(template=ContractTemplate.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.contract.write")],
        description="Draw the contract of an ACTIVE subscription before its deadline: the PDF "
        "is stored and its SHA-256 kept. One contract per unit (CONFLICT).",
    )
    async def create_contract(
        self, info: strawberry.Info, input: CreateContractInput
    ) -> SalesContractResult:
        ctx = info.context

        async def work() -> SalesContractPayload:
            row = await service.create(
                ctx.session,
                ctx.kit,
                ctx.storage,
                ctx.principal_now(),
                service.CreateInput(
                    subscription_id=require_id(
                        input.subscription_id, "subscription", "subscriptionId"
                    ),
                    locale=input.locale,
                    template_id=(
                        require_id(input.template_id, "template", "templateId")
                        if input.template_id
                        else None
                    ),
                    plan=_plan(input.payment_plan),
                    extra_clauses=_texts(input.extra_clauses, "extraClauses"),
                    note=input.note,
                ),
                _signer(info),
            )
            ctx.audit(
                "sales.contract.created",
                target_type="contract",
                target_id=row.id,
                subscription_id=str(row.subscription_id),
                unit_id=str(row.unit_id),
                number=row.number,
                document_sha256=row.document_sha256,
            )
            return SalesContractPayload(contract=SalesContract.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.contract.write")],
        description="Send the buyer (the client's phone on record) a one-time code to sign "
        "the contract's current document. SMS limits apply (RATE_LIMITED).",
    )
    async def request_contract_signing_code(
        self, info: strawberry.Info, contract_id: strawberry.ID
    ) -> ContractSigningCodeResult:
        ctx = info.context

        async def work() -> ContractSigningCodeSent:
            cid = require_id(contract_id, "contract", "contractId")
            done = await service.request_code(
                ctx.session,
                ctx.kit,
                ctx.senders.sms,
                ctx.principal_now(),
                cid,
                _signer(info),
                later=ctx.after_commit,
            )
            ctx.audit("sales.contract.code_sent", target_type="contract", target_id=cid)
            return ContractSigningCodeSent(
                expires_at=done.sent.expires_at,
                resend_after_seconds=done.sent.resend_after,
                phone=done.phone_mask,
                document_sha256=done.document_sha256,
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.contract.write")],
        description="The buyer signs, on the agent's device: the code their phone received "
        "and the SHA-256 of the document they were shown. The company's seal is applied "
        "(PAdES, timestamped), the unit becomes contracted, the completion certificate is "
        "issued. A wrong code counts an attempt.",
    )
    async def sign_contract(
        self,
        info: strawberry.Info,
        contract_id: strawberry.ID,
        code: str,
        document_sha256: str,
    ) -> SignContractResult:
        ctx = info.context

        async def work() -> SalesContractPayload:
            row = await service.sign(
                ctx.session,
                ctx.kit,
                ctx.storage,
                provider_for(ctx.kit),
                ctx.principal_now(),
                require_id(contract_id, "contract", "contractId"),
                code=code,
                document_sha256=document_sha256,
                signer=_signer(info),
            )
            ctx.audit(
                "sales.contract.signed",
                target_type="contract",
                target_id=row.id,
                number=row.number,
                revision=row.revision,
                document_sha256=row.document_sha256,
                signed_sha256=row.signed_sha256,
            )
            return SalesContractPayload(contract=SalesContract.of(row))

        result, error = await attempt(ctx.session, work, keeps="a wrong code's attempt")
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.contract.register")],
        description="网签备案: record the housing authority's registration number of a "
        "signed contract.",
    )
    async def record_contract_registration(
        self, info: strawberry.Info, contract_id: strawberry.ID, number: str
    ) -> SalesContractResult:
        ctx = info.context

        async def work() -> SalesContractPayload:
            row = await service.record_registration(
                ctx.session,
                ctx.principal_now(),
                require_id(contract_id, "contract", "contractId"),
                number=number,
            )
            ctx.audit(
                "sales.contract.registered",
                target_type="contract",
                target_id=row.id,
                registration_number=row.registration_number,
            )
            return SalesContractPayload(contract=SalesContract.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.contract.write")],
        description="Draw an amendment (a new revision) of a contract in force, for the "
        "buyer to sign again; the contract stays in force until then.",
    )
    async def amend_contract(
        self, info: strawberry.Info, input: AmendContractInput
    ) -> SalesContractResult:
        ctx = info.context

        async def work() -> SalesContractPayload:
            row = await service.amend(
                ctx.session,
                ctx.kit,
                ctx.storage,
                ctx.principal_now(),
                service.AmendInput(
                    contract_id=require_id(input.contract_id, "contract", "contractId"),
                    reason=input.reason,
                    plan=_plan(input.payment_plan) if input.payment_plan is not None else None,
                    extra_clauses=(
                        _texts(input.extra_clauses, "extraClauses")
                        if input.extra_clauses is not None
                        else None
                    ),
                    template_id=(
                        require_id(input.template_id, "template", "templateId")
                        if input.template_id
                        else None
                    ),
                ),
            )
            ctx.audit(
                "sales.contract.amended",
                target_type="contract",
                target_id=row.id,
                amends=str(row.amends_id),
                revision=row.revision,
            )
            return SalesContractPayload(contract=SalesContract.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.contract.cancel")],
        description="Cancel a contract with a reason: a draft is dropped; a signed one is "
        "canceled and its unit goes back on sale (the only way it does).",
    )
    async def cancel_contract(
        self, info: strawberry.Info, contract_id: strawberry.ID, reason: str
    ) -> SalesContractResult:
        ctx = info.context

        async def work() -> SalesContractPayload:
            row = await service.cancel(
                ctx.session,
                ctx.principal_now(),
                require_id(contract_id, "contract", "contractId"),
                reason=reason,
            )
            ctx.audit(
                "sales.contract.canceled",
                target_type="contract",
                target_id=row.id,
                reason=reason,
            )
            return SalesContractPayload(contract=SalesContract.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result
