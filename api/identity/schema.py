"""GraphQL of identity: sign-up, sign-in, tokens, sessions, the viewer."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from api.errors import NotFound
from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
    attempt,
)
from api.graphql.permissions import Authenticated, Public, TenantRequired, requires
from api.graphql.types import require_id
from api.identity import invitations, passwords, repository, service, sms, totp
from api.identity import roles as roles_service
from api.identity import teams as teams_service
from api.identity.models import Account as AccountRow
from api.security.catalogue import PERMISSIONS
from api.security.crypto import mask_email, mask_phone
from tenants.registry import TenantInfo, set_require_admin_totp

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from api.graphql.context import Context
    from api.identity.auth import Principal
    from api.identity.models import Membership
    from api.identity.models import Team as TeamRow
    from api.security.kit import SecurityKit


@strawberry.type
class Tokens:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    session_id: strawberry.ID

    @classmethod
    def of(cls, t: service.Tokens) -> Tokens:
        return cls(
            access_token=t.access_token,
            access_token_expires_at=t.access_expires_at,
            refresh_token=t.refresh_token,
            refresh_token_expires_at=t.refresh_expires_at,
            session_id=strawberry.ID(str(t.session_id)),
        )


@strawberry.type(
    description="A person's identity. Phone and email are masked unless the "
    "viewer is that person or has pii.read."
)
class Account:
    id: strawberry.ID
    name: str
    phone: str | None
    email: str | None

    @classmethod
    def of(cls, kit: SecurityKit, row: AccountRow, *, unmasked: bool) -> Account:
        phone, email = service.account_phone(kit, row), service.account_email(kit, row)
        if not unmasked:
            phone = mask_phone(phone) if phone else None
            email = mask_email(email) if email else None
        return cls(id=strawberry.ID(str(row.id)), name=row.name, phone=phone, email=email)


@strawberry.type
class Tenant:
    id: strawberry.ID
    slug: str
    name: str
    plan: str
    status: str

    @classmethod
    def of(cls, t: TenantInfo) -> Tenant:
        return cls(id=strawberry.ID(t.id), slug=t.slug, name=t.name, plan=t.plan, status=t.status)


@strawberry.type
class Viewer:
    account: Account
    tenant: Tenant
    roles: list[str]
    permissions: list[str]
    data_scope: str
    totp_enabled: bool
    totp_enrollment_required: bool = strawberry.field(
        description="The tenant requires TOTP for admins and this admin has none yet: every "
        "permission is withheld until enrolment."
    )


@strawberry.type
class SessionInfo:
    id: strawberry.ID
    started_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str
    ip: str
    current: bool


@strawberry.input
class SignUpInput:
    tenant_slug: str
    tenant_name: str
    name: str
    password: str
    phone: str | None = None
    email: str | None = None
    time_zone: str | None = strawberry.field(
        default=None, description="The tenant's IANA time zone (default Asia/Shanghai)."
    )
    locale: str | None = strawberry.field(default=None, description="zh-CN (default) or en.")
    currency: str | None = strawberry.field(default=None, description="ISO 4217 (default CNY).")


@strawberry.type
class SignUpPayload:
    tenant: Tenant
    account: Account
    tokens: Tokens


@strawberry.type
class SignInPayload:
    tokens: Tokens


@strawberry.type(description="Password accepted; finish with completeTotpSignIn and a code.")
class TotpChallenge:
    challenge_token: str
    expires_at: datetime


@strawberry.type
class TotpEnrollment:
    secret: str
    otpauth_uri: str


@strawberry.type
class TotpStatus:
    enabled: bool


TotpResult = Annotated[TotpStatus | AuthError, strawberry.union("TotpResult")]
TotpEnrollResult = Annotated[TotpEnrollment | AuthError, strawberry.union("TotpEnrollResult")]


@strawberry.type
class SmsCodeSent:
    expires_at: datetime
    resend_after_seconds: int


SmsCodeResult = Annotated[
    SmsCodeSent | ValidationError | RateLimitedError, strawberry.union("SmsCodeResult")
]


@strawberry.type(
    description="The answer to a password-reset request: the same whether or not "
    "the phone or email belongs to a member."
)
class PasswordResetRequested:
    expires_at: datetime
    resend_after_seconds: int


@strawberry.type
class PasswordChanged:
    revoked_sessions: int = strawberry.field(
        description="Sessions signed out (changePassword keeps the caller's own)."
    )


RequestPasswordResetResult = Annotated[
    PasswordResetRequested | ValidationError | RateLimitedError,
    strawberry.union("RequestPasswordResetResult"),
]
PasswordChangeResult = Annotated[
    PasswordChanged | AuthError | ValidationError | RateLimitedError,
    strawberry.union("PasswordChangeResult"),
]


@strawberry.type
class SignOutPayload:
    revoked_session_id: strawberry.ID


@strawberry.type(description="A role: built-in (defined in code) or custom (defined here).")
class RoleInfo:
    key: str
    name: str
    permissions: list[str]
    data_scope: str
    builtin: bool

    @classmethod
    def of(cls, r: roles_service.RoleView) -> RoleInfo:
        return cls(
            key=r.key,
            name=r.name,
            permissions=list(r.permissions),
            data_scope=r.scope,
            builtin=r.builtin,
        )


@strawberry.type
class PermissionInfo:
    key: str
    description: str


@strawberry.type
class Member:
    account: Account
    roles: list[str]
    status: str


@strawberry.input
class CreateRoleInput:
    key: str
    name: str
    permissions: list[str]
    data_scope: str = "own"


@strawberry.input
class UpdateRoleInput:
    key: str
    name: str | None = None
    permissions: list[str] | None = None
    data_scope: str | None = None


@strawberry.type
class RolePayload:
    role: RoleInfo


@strawberry.type
class DeleteRolePayload:
    deleted_key: str


@strawberry.type
class MemberPayload:
    member: Member


@strawberry.type(description="A company, office or team of the tenant.")
class TeamInfo:
    id: strawberry.ID
    name: str
    kind: str
    parent_id: strawberry.ID | None
    member_ids: list[strawberry.ID]


@strawberry.input
class CreateTeamInput:
    name: str
    kind: str
    parent_id: strawberry.ID | None = None


@strawberry.type
class TeamPayload:
    team: TeamInfo


@strawberry.type
class TeamMembershipPayload:
    team_id: strawberry.ID
    account_id: strawberry.ID


TeamResult = Annotated[
    TeamPayload | ValidationError | NotFoundError | PermissionDeniedError | AuthError,
    strawberry.union("TeamResult"),
]
TeamMembershipResult = Annotated[
    TeamMembershipPayload | NotFoundError | ConflictError | PermissionDeniedError | AuthError,
    strawberry.union("TeamMembershipResult"),
]


def _team(t: TeamRow, members: Iterable[uuid.UUID] = ()) -> TeamInfo:
    return TeamInfo(
        id=strawberry.ID(str(t.id)),
        name=t.name,
        kind=t.kind,
        parent_id=strawberry.ID(str(t.parent_id)) if t.parent_id else None,
        member_ids=[strawberry.ID(str(m)) for m in members],
    )


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@strawberry.input
class InviteMemberInput:
    name: str
    roles: list[str]
    phone: str | None = None
    email: str | None = None


@strawberry.type(
    description="A pending invitation: only what the inviter typed. The person "
    "appears among the members once they accept."
)
class Invitation:
    id: strawberry.ID
    name: str
    phone: str | None
    email: str | None
    roles: list[str]
    expires_at: datetime

    @classmethod
    def of(cls, v: invitations.InvitationView, *, unmasked: bool = True) -> Invitation:
        phone, email = v.phone, v.email
        if not unmasked:
            phone = mask_phone(phone) if phone else None
            email = mask_email(email) if email else None
        return cls(
            id=strawberry.ID(str(v.id)),
            name=v.name,
            phone=phone,
            email=email,
            roles=v.roles,
            expires_at=v.expires_at,
        )


@strawberry.type
class InvitationPayload:
    invitation: Invitation


@strawberry.type
class WithdrawInvitationPayload:
    withdrawn_id: strawberry.ID


WithdrawInvitationResult = Annotated[
    WithdrawInvitationPayload | NotFoundError | PermissionDeniedError | AuthError,
    strawberry.union("WithdrawInvitationResult"),
]
InviteResult = Annotated[
    InvitationPayload | ValidationError | ConflictError | PermissionDeniedError | AuthError,
    strawberry.union("InviteResult"),
]
AcceptInvitationResult = Annotated[
    SignInPayload | AuthError | RateLimitedError | ValidationError,
    strawberry.union("AcceptInvitationResult"),
]
DisableMemberResult = Annotated[
    MemberPayload | NotFoundError | ConflictError | PermissionDeniedError | AuthError,
    strawberry.union("DisableMemberResult"),
]
RoleResult = Annotated[
    RolePayload
    | ValidationError
    | NotFoundError
    | ConflictError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("RoleResult"),
]
DeleteRoleResult = Annotated[
    DeleteRolePayload | NotFoundError | ConflictError | PermissionDeniedError | AuthError,
    strawberry.union("DeleteRoleResult"),
]
AssignRolesResult = Annotated[
    MemberPayload
    | ValidationError
    | NotFoundError
    | ConflictError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("AssignRolesResult"),
]
SignUpResult = Annotated[
    SignUpPayload | ValidationError | ConflictError, strawberry.union("SignUpResult")
]
SignInResult = Annotated[
    SignInPayload | TotpChallenge | AuthError | RateLimitedError | ValidationError,
    strawberry.union("SignInResult"),
]
RefreshResult = Annotated[SignInPayload | AuthError, strawberry.union("RefreshResult")]


PII_FIELDS = ["phone", "email"]


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[Authenticated], description="The signed-in caller.")
    async def me(self, info: strawberry.Info) -> Viewer:
        ctx = info.context
        p = await ctx.principal()
        row = await repository.account(ctx.session, p.account_id)
        assert row is not None  # a principal's account exists: accounts are never deleted
        return Viewer(
            account=Account.of(ctx.kit, row, unmasked=True),
            tenant=Tenant.of(ctx.tenant),
            roles=list(p.roles),
            permissions=sorted(p.permissions),
            data_scope=p.scope,
            totp_enabled=row.totp_enabled_at is not None,
            totp_enrollment_required=p.needs_totp,
        )

    @strawberry.field(permission_classes=[Authenticated], description="Live sign-in sessions.")
    async def my_sessions(self, info: strawberry.Info) -> list[SessionInfo]:
        ctx = info.context
        p = await ctx.principal()
        rows = await repository.sessions_of(ctx.session, p.account_id, p.tenant_id, service.now())
        return [
            SessionInfo(
                id=strawberry.ID(str(r.family_id)),
                started_at=r.started_at,
                last_used_at=r.last_used_at,
                expires_at=r.expires_at,
                user_agent=r.user_agent,
                ip=r.ip,
                current=r.family_id == p.session_id,
            )
            for r in rows
        ]

    @strawberry.field(
        permission_classes=[requires("member.read")], description="Built-in and custom roles."
    )
    async def roles(self, info: strawberry.Info) -> list[RoleInfo]:
        return [RoleInfo.of(r) for r in await roles_service.list_roles(info.context.session)]

    @strawberry.field(
        permission_classes=[requires("member.read")], description="Companies, offices, teams."
    )
    async def teams(self, info: strawberry.Info) -> list[TeamInfo]:
        teams, members = await teams_service.list_teams(info.context.session)
        return [_team(t, members.get(t.id, [])) for t in teams]

    @strawberry.field(
        permission_classes=[requires("role.manage")], description="Every permission there is."
    )
    def permission_catalogue(self) -> list[PermissionInfo]:
        return [PermissionInfo(key=k, description=v) for k, v in PERMISSIONS.items()]

    @strawberry.field(
        permission_classes=[requires("member.read")],
        description="The tenant's members. Phone and email are masked without pii.read.",
    )
    async def members(self, info: strawberry.Info) -> list[Member]:
        """Accepted members only; pending invitations are listed by ``invitations``."""
        ctx = info.context
        p = await ctx.principal()
        rows = await roles_service.list_members(ctx.session, p.tenant_id)
        return [_member(ctx, p, a, m) for m, a in rows]

    @strawberry.field(
        permission_classes=[requires("member.read")],
        description="Pending invitations, as typed by the inviter (phone and email masked "
        "without pii.read).",
    )
    async def invitations(self, info: strawberry.Info) -> list[Invitation]:
        ctx = info.context
        p = await ctx.principal()
        views = await invitations.pending(ctx.session, ctx.kit, p.tenant_id)
        unmasked = p.can("pii.read")
        for v in views if unmasked else ():
            ctx.audit("pii.read", target_type="invitation", target_id=v.id, fields=PII_FIELDS)
        return [Invitation.of(v, unmasked=unmasked) for v in views]


# What a refused sign-in step keeps (``attempt(keeps=...)``): it is recorded on purpose.
FAILED_SIGN_IN = "the failed sign-in, counted towards the lockout"
WRONG_CODE = "the wrong code's attempt, counted towards the code's limit"


async def _signed_in(
    session: AsyncSession,
    fn: Callable[[], Awaitable[service.Tokens | service.TotpChallenge]],
    *,
    keeps: str,
) -> Any:
    """Run a sign-in step (no savepoint: a refusal keeps ``keeps``) and shape its outcome: a
    member of the calling field's result union (Any: each field's union names the outcomes
    its step may have)."""
    outcome, error = await attempt(session, fn, keeps=keeps)
    if error:
        return error
    if isinstance(outcome, service.TotpChallenge):
        return TotpChallenge(challenge_token=outcome.challenge_token, expires_at=outcome.expires_at)
    return SignInPayload(tokens=Tokens.of(outcome))


async def _sign_in_step(
    ctx: Context,
    step: Callable[..., Awaitable[service.Tokens | service.TotpChallenge]],
    *args: str,
    keeps: str,
) -> SignInResult:
    """A sign-in step in the request's tenant (password, TOTP code, SMS code): the new session
    notes the caller's user agent and address; success names the audit actor."""
    return await _signed_in(
        ctx.session,
        lambda: step(
            ctx.session,
            ctx.kit,
            ctx.tenant,
            *args,
            user_agent=ctx.user_agent,
            ip=ctx.client_ip,
            on_success=ctx.set_actor,
        ),
        keeps=keeps,
    )


async def _password_changed(
    session: AsyncSession, fn: Callable[[], Awaitable[int]], *, keeps: str
) -> PasswordChangeResult:
    """Like ``_signed_in``: no savepoint, a refused step keeps ``keeps``."""
    revoked, error = await attempt(session, fn, keeps=keeps)
    return error or PasswordChanged(revoked_sessions=revoked)


def _member(ctx: Context, p: Principal, account: AccountRow, membership: Membership) -> Member:
    unmasked = p.can("pii.read") or account.id == p.account_id
    if unmasked and account.id != p.account_id:
        ctx.audit("pii.read", target_type="account", target_id=account.id, fields=PII_FIELDS)
    return Member(
        account=Account.of(ctx.kit, account, unmasked=unmasked),
        roles=list(membership.roles),
        status=membership.status,
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[Public],
        description="Self-service sign-up: a new agency (tenant), its first admin, and tokens.",
    )
    async def sign_up(self, info: strawberry.Info, input: SignUpInput) -> SignUpResult:
        ctx = info.context
        session = ctx.shared_session

        async def run() -> service.SignedUp:
            form = service.SignUpForm(
                tenant_slug=input.tenant_slug,
                tenant_name=input.tenant_name,
                name=input.name,
                phone=input.phone,
                email=input.email,
                password=input.password,
                time_zone=input.time_zone,
                locale=input.locale,
                currency=input.currency,
            )
            return await service.sign_up(
                session, ctx.kit, form, user_agent=ctx.user_agent, ip=ctx.client_ip
            )

        done, error = await attempt(session, run)
        if error:
            return error
        tenant, account, tokens = done
        return SignUpPayload(
            tenant=Tenant.of(tenant),
            account=Account.of(ctx.kit, account, unmasked=True),
            tokens=Tokens.of(tokens),
        )

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Sign in to the request's tenant with a phone number or email and password.",
    )
    async def sign_in(self, info: strawberry.Info, identifier: str, password: str) -> SignInResult:
        ctx = info.context
        return await _sign_in_step(
            ctx, service.sign_in_password, identifier, password, keeps=FAILED_SIGN_IN
        )

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Finish a password sign-in with the code of the authenticator app.",
    )
    async def complete_totp_sign_in(
        self, info: strawberry.Info, challenge_token: str, code: str
    ) -> SignInResult:
        ctx = info.context
        return await _sign_in_step(
            ctx, totp.complete_sign_in, challenge_token, code, keeps=FAILED_SIGN_IN
        )

    @strawberry.mutation(
        permission_classes=[Authenticated],
        description="Start TOTP enrolment: a new secret for the authenticator app.",
    )
    async def enroll_totp(self, info: strawberry.Info) -> TotpEnrollResult:
        ctx = info.context
        p = await ctx.principal()
        done, error = await attempt(
            ctx.session,
            lambda: totp.enroll(ctx.session, ctx.kit, p.account_id, f"{ctx.tenant.slug}"),
        )
        if error:
            return error
        secret, uri = done
        return TotpEnrollment(secret=secret, otpauth_uri=uri)

    @strawberry.mutation(
        permission_classes=[Authenticated], description="Turn TOTP on with a first valid code."
    )
    async def confirm_totp(self, info: strawberry.Info, code: str) -> TotpResult:
        ctx = info.context
        p = await ctx.principal()
        _, error = await attempt(
            ctx.session, lambda: totp.confirm(ctx.session, ctx.kit, p.account_id, code)
        )
        return error or TotpStatus(enabled=True)

    @strawberry.mutation(
        permission_classes=[Authenticated], description="Turn TOTP off (needs a valid code)."
    )
    async def disable_totp(self, info: strawberry.Info, code: str) -> TotpResult:
        ctx = info.context
        p = await ctx.principal()
        _, error = await attempt(
            ctx.session, lambda: totp.disable(ctx.session, ctx.kit, p.account_id, code)
        )
        return error or TotpStatus(enabled=False)

    @strawberry.mutation(
        permission_classes=[requires("tenant.manage")],
        description="Require (or stop requiring) TOTP sign-in for the tenant's admins.",
    )
    async def set_require_admin_totp(self, info: strawberry.Info, required: bool) -> Tenant:
        ctx = info.context
        await set_require_admin_totp(ctx.session, ctx.tenant.id, required)
        ctx.tenant_changed()
        return Tenant.of(ctx.tenant)

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Send a one-time sign-in code by SMS (the answer is the same whether or not "
        "the phone belongs to a member).",
    )
    async def request_sms_code(self, info: strawberry.Info, phone: str) -> SmsCodeResult:
        ctx = info.context
        done, error = await attempt(
            ctx.session,
            lambda: sms.request_code(
                ctx.session,
                ctx.kit,
                ctx.senders.sms,
                ctx.tenant,
                phone,
                ctx.client_ip,
                later=ctx.after_commit,
            ),
        )
        if error:
            return error
        expires, resend = done
        return SmsCodeSent(expires_at=expires, resend_after_seconds=resend)

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Sign in with the code received by SMS.",
    )
    async def sign_in_with_sms_code(
        self, info: strawberry.Info, phone: str, code: str
    ) -> SignInResult:
        ctx = info.context
        return await _sign_in_step(ctx, sms.sign_in_with_code, phone, code, keeps=WRONG_CODE)

    @strawberry.mutation(
        permission_classes=[Authenticated],
        description="Change your password: the current one (wrong ones count towards the "
        "sign-in lockout) and a new one. Your other sessions are signed out; this one stays.",
    )
    async def change_password(
        self, info: strawberry.Info, password: str, new_password: str
    ) -> PasswordChangeResult:
        ctx = info.context
        p = await ctx.principal()
        return await _password_changed(
            ctx.session,
            lambda: passwords.change_password(
                ctx.session, ctx.kit, p.account_id, p.session_id, password, new_password
            ),
            keeps="a wrong current password, counted towards the sign-in lockout",
        )

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Ask for a password reset: a code by SMS for a phone number, a link by "
        "email for an email address. The answer is the same whether or not it belongs to a "
        "member.",
    )
    async def request_password_reset(
        self, info: strawberry.Info, identifier: str
    ) -> RequestPasswordResetResult:
        ctx = info.context
        done, error = await attempt(
            ctx.session,
            lambda: passwords.request_reset(
                ctx.session,
                ctx.kit,
                ctx.senders,
                ctx.tenant,
                identifier,
                ctx.client_ip,
                later=ctx.after_commit,
            ),
        )
        if error:
            return error
        expires, resend = done
        return PasswordResetRequested(expires_at=expires, resend_after_seconds=resend)

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Reset the password with the code received by SMS; every session of the "
        "account is signed out (sign in again with the new password).",
    )
    async def reset_password_with_sms_code(
        self, info: strawberry.Info, phone: str, code: str, new_password: str
    ) -> PasswordChangeResult:
        ctx = info.context
        return await _password_changed(
            ctx.session,
            lambda: passwords.reset_with_code(
                ctx.session,
                ctx.kit,
                ctx.tenant,
                phone,
                code,
                new_password,
                on_success=ctx.set_actor,
            ),
            keeps=WRONG_CODE,
        )

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Reset the password with the token of the emailed link; every session of "
        "the account is signed out (sign in again with the new password).",
    )
    async def reset_password(
        self, info: strawberry.Info, token: str, new_password: str
    ) -> PasswordChangeResult:
        ctx = info.context
        return await _password_changed(
            ctx.session,
            lambda: passwords.reset_with_token(
                ctx.session, ctx.kit, ctx.tenant, token, new_password, on_success=ctx.set_actor
            ),
            keeps="the link spent when its member is no longer active",
        )

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Spend a refresh token for new tokens. Reusing a spent refresh token "
        "revokes its whole session.",
    )
    async def refresh_tokens(self, info: strawberry.Info, refresh_token: str) -> RefreshResult:
        ctx = info.context
        return await _signed_in(
            ctx.session,
            lambda: service.rotate_refresh_token(
                ctx.session,
                ctx.kit,
                ctx.tenant,
                refresh_token,
                user_agent=ctx.user_agent,
                ip=ctx.client_ip,
            ),
            keeps="the session revoked when a spent refresh token comes back",
        )

    @strawberry.mutation(permission_classes=[Authenticated], description="End this session.")
    async def sign_out(self, info: strawberry.Info) -> SignOutPayload:
        p = await info.context.principal()
        await service.sign_out(info.context.session, p.session_id)
        return SignOutPayload(revoked_session_id=strawberry.ID(str(p.session_id)))

    @strawberry.mutation(permission_classes=[requires("role.manage")])
    async def create_role(self, info: strawberry.Info, input: CreateRoleInput) -> RoleResult:
        session = info.context.session
        role, error = await attempt(
            session,
            lambda: roles_service.create_role(
                session, input.key, input.name, input.permissions, input.data_scope
            ),
        )
        return error or RolePayload(role=RoleInfo.of(role))

    @strawberry.mutation(permission_classes=[requires("role.manage")])
    async def update_role(self, info: strawberry.Info, input: UpdateRoleInput) -> RoleResult:
        session = info.context.session
        role, error = await attempt(
            session,
            lambda: roles_service.update_role(
                session,
                input.key,
                name=input.name,
                permissions=input.permissions,
                scope=input.data_scope,
            ),
        )
        return error or RolePayload(role=RoleInfo.of(role))

    @strawberry.mutation(permission_classes=[requires("role.manage")])
    async def delete_role(self, info: strawberry.Info, key: str) -> DeleteRoleResult:
        ctx = info.context
        p = await ctx.principal()
        _, error = await attempt(
            ctx.session, lambda: roles_service.delete_role(ctx.session, p.tenant_id, key)
        )
        return error or DeleteRolePayload(deleted_key=key)

    @strawberry.mutation(
        permission_classes=[requires("role.manage")],
        description="Replace a member's roles (the tenant always keeps one admin).",
    )
    async def assign_roles(
        self, info: strawberry.Info, account_id: strawberry.ID, roles: list[str]
    ) -> AssignRolesResult:
        ctx = info.context
        p = await ctx.principal()
        membership, error = await attempt(
            ctx.session,
            lambda: roles_service.assign_roles(
                ctx.session, p.tenant_id, require_id(account_id, "member", "accountId"), roles
            ),
        )
        if error:
            return error
        row = await repository.account(ctx.session, membership.account_id)
        assert row is not None  # a member's account exists: accounts are never deleted
        return MemberPayload(member=_member(ctx, p, row, membership))

    @strawberry.mutation(permission_classes=[requires("team.manage")])
    async def create_team(self, info: strawberry.Info, input: CreateTeamInput) -> TeamResult:
        session = info.context.session

        async def work() -> TeamRow:
            parent = None
            if input.parent_id:
                parent = require_id(input.parent_id, "parent", "parentId")
            return await teams_service.create_team(session, input.name, input.kind, parent)

        team, error = await attempt(session, work)
        return error or TeamPayload(team=_team(team))

    @strawberry.mutation(permission_classes=[requires("team.manage")])
    async def add_team_member(
        self, info: strawberry.Info, team_id: strawberry.ID, account_id: strawberry.ID
    ) -> TeamMembershipResult:
        ctx = info.context
        p = await ctx.principal()

        async def work() -> None:
            team = require_id(team_id, "team", "teamId")
            account = require_id(account_id, "member", "accountId")
            if await repository.membership(ctx.session, account, p.tenant_id) is None:
                raise NotFound("member not found", "accountId")
            await teams_service.add_member(ctx.session, team, account)

        _, error = await attempt(ctx.session, work)
        return error or TeamMembershipPayload(team_id=team_id, account_id=account_id)

    @strawberry.mutation(permission_classes=[requires("team.manage")])
    async def remove_team_member(
        self, info: strawberry.Info, team_id: strawberry.ID, account_id: strawberry.ID
    ) -> TeamMembershipResult:
        ctx = info.context

        async def work() -> None:
            team, account = _uuid(team_id), _uuid(account_id)
            if team is None or account is None:
                raise NotFound("not in this team", "accountId")
            await teams_service.remove_member(ctx.session, team, account)

        _, error = await attempt(ctx.session, work)
        return error or TeamMembershipPayload(team_id=team_id, account_id=account_id)

    @strawberry.mutation(
        permission_classes=[requires("member.invite")],
        description="Invite a person by phone (SMS) or email, with roles.",
    )
    async def invite_member(self, info: strawberry.Info, input: InviteMemberInput) -> InviteResult:
        ctx = info.context
        p = await ctx.principal()
        done, error = await attempt(
            ctx.session,
            lambda: invitations.invite(
                ctx.session,
                ctx.kit,
                ctx.senders,
                ctx.tenant,
                p.account_id,
                name=input.name,
                phone=input.phone,
                email=input.email,
                roles=input.roles,
                inviter_permissions=p.permissions,
            ),
        )
        # Only what the caller typed comes back (nothing about an existing account).
        return error or InvitationPayload(invitation=Invitation.of(done))

    @strawberry.mutation(
        permission_classes=[requires("member.invite")],
        description="Withdraw a pending invitation: its link stops working.",
    )
    async def withdraw_invitation(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> WithdrawInvitationResult:
        ctx = info.context
        p = await ctx.principal()

        async def work() -> None:
            target = _uuid(id)
            if target is None:
                raise NotFound("no pending invitation with this id", "id")
            await invitations.withdraw(ctx.session, p.tenant_id, target)

        _, error = await attempt(ctx.session, work)
        return error or WithdrawInvitationPayload(withdrawn_id=id)

    @strawberry.mutation(
        permission_classes=[TenantRequired],
        description="Accept an invitation: set a password (or give the one of your existing "
        "account: wrong ones count towards the sign-in lockout) and sign in.",
    )
    async def accept_invitation(
        self, info: strawberry.Info, token: str, password: str, name: str | None = None
    ) -> AcceptInvitationResult:
        ctx = info.context
        return await _signed_in(
            ctx.session,
            lambda: invitations.accept(
                ctx.session,
                ctx.kit,
                ctx.tenant,
                token,
                password=password,
                name=name,
                user_agent=ctx.user_agent,
                ip=ctx.client_ip,
            ),
            keeps="a wrong password of an existing account, counted towards the lockout",
        )

    @strawberry.mutation(
        permission_classes=[requires("member.invite")],
        description="Disable a member: their sessions end at once.",
    )
    async def disable_member(
        self, info: strawberry.Info, account_id: strawberry.ID
    ) -> DisableMemberResult:
        ctx = info.context
        p = await ctx.principal()
        membership, error = await attempt(
            ctx.session,
            lambda: roles_service.disable_member(
                ctx.session,
                p.tenant_id,
                p.account_id,
                require_id(account_id, "member", "accountId"),
            ),
        )
        if error:
            return error
        row = await repository.account(ctx.session, membership.account_id)
        assert row is not None  # a member's account exists: accounts are never deleted
        return MemberPayload(member=_member(ctx, p, row, membership))

    @strawberry.mutation(
        permission_classes=[Authenticated], description="End one of your own sessions."
    )
    async def revoke_session(self, info: strawberry.Info, id: strawberry.ID) -> bool:
        p = await info.context.principal()
        try:
            family = uuid.UUID(str(id))
        except ValueError:
            return False
        return await service.revoke_own_session(
            info.context.session, p.account_id, p.tenant_id, family
        )
