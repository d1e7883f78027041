"""Identity tables.

Shared schema: ``account`` (one global identity per person), ``membership`` (account x tenant x
roles), ``refresh_token`` (rotated opaque tokens; a family is one signed-in session).
Tenant schema: ``role`` (custom roles the tenant's admins define; built-in roles live in code).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from api.db import SharedBase, TenantBase, Timestamped, ciphertext_column, utcnow
from api.ids import uuid7


class Account(Timestamped, SharedBase):
    __tablename__ = "account"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(100), nullable=False, default="", server_default="")
    # Personal data: AES-GCM ciphertext (scope "shared") + blind index for exact lookup.
    phone_enc: Mapped[bytes | None] = ciphertext_column("phone")
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    email_enc: Mapped[bytes | None] = ciphertext_column("email")
    email_bidx: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # TOTP second factor: encrypted secret, when it was confirmed, last accepted time step.
    totp_secret_enc: Mapped[bytes | None] = ciphertext_column("totp")
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class Membership(Timestamped, SharedBase):
    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("account_id", "tenant_id"),
        CheckConstraint("status IN ('invited', 'active', 'disabled')", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shared.account.id", ondelete="CASCADE"), nullable=False
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shared.tenant.id", ondelete="CASCADE"), nullable=False, index=True
    )
    roles: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, default=list, server_default="{}"
    )
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="active", server_default="active"
    )


class RefreshToken(SharedBase):
    __tablename__ = "refresh_token"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    # The session: every token rotated from one sign-in shares the family id.
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shared.account.id", ondelete="CASCADE"), nullable=False, index=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shared.tenant.id", ondelete="CASCADE"), nullable=False
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    issued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str] = mapped_column(
        String(300), nullable=False, default="", server_default=""
    )
    ip: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")


class SmsCode(Timestamped, SharedBase):
    """A one-time sign-in code sent by SMS (only its HMAC is kept)."""

    __tablename__ = "sms_code"
    __table_args__ = (CheckConstraint("purpose IN ('sign_in', 'reset')", name="purpose"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    phone_bidx: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, index=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shared.tenant.id", ondelete="CASCADE"), nullable=False
    )
    code_hmac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str] = mapped_column(
        String(64), nullable=False, default="", server_default="", index=True
    )
    # sign_in | reset: a code is only good for what it was sent for.
    purpose: Mapped[str] = mapped_column(
        String(16), nullable=False, default="sign_in", server_default="sign_in"
    )


class PasswordReset(Timestamped, SharedBase):
    """A one-time password-reset link sent by email (only the token's hash is kept). A request
    for an email without an account is recorded too (no account, nothing sent): same limits,
    same answer."""

    __tablename__ = "password_reset"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    email_bidx: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, index=True)
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("shared.account.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shared.tenant.id", ondelete="CASCADE"), nullable=False
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str] = mapped_column(
        String(64), nullable=False, default="", server_default="", index=True
    )


class Invitation(Timestamped, SharedBase):
    """An invitation to join a tenant (only the token's hash is kept). It holds what the
    inviter typed (name, roles, phone or email: encrypted, with a blind index) and points at
    no account until it is accepted, so inviting reveals nothing about an existing account."""

    __tablename__ = "invitation"
    __table_args__ = (Index("ix_shared_invitation_tenant_ident", "tenant_id", "ident_bidx"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shared.tenant.id", ondelete="CASCADE"), nullable=False
    )
    # Set on acceptance (and on invitations made before they kept what was typed).
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("shared.account.id", ondelete="CASCADE")
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, default="", server_default="")
    roles: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, default=list, server_default="{}"
    )
    ident_kind: Mapped[str | None] = mapped_column(String(8))  # phone | email
    ident_enc: Mapped[bytes | None] = ciphertext_column("ident")
    ident_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    invited_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Role(Timestamped, TenantBase):
    __tablename__ = "role"
    __table_args__ = (CheckConstraint("scope IN ('own', 'team', 'all')", name="scope"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    permissions: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, default=list, server_default="{}"
    )
    scope: Mapped[str] = mapped_column(
        String(8), nullable=False, default="own", server_default="own"
    )


class Team(Timestamped, TenantBase):
    """The tenant's organisation: company > office > team."""

    __tablename__ = "team"
    __table_args__ = (CheckConstraint("kind IN ('company', 'office', 'team')", name="kind"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("team.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)


class TeamMember(TenantBase):
    __tablename__ = "team_member"

    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
