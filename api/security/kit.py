"""Everything security-related a process builds once from settings."""

from __future__ import annotations

from dataclasses import dataclass

from api.security.crypto import BlindIndex, FieldCipher
from api.security.secrets import load_secrets
from api.security.tokens import TokenService
from api.settings import Settings


@dataclass(frozen=True)
class SecurityKit:
    settings: Settings
    cipher: FieldCipher
    blind_index: BlindIndex
    tokens: TokenService


def build_kit(settings: Settings) -> SecurityKit:
    secrets = load_secrets(settings)
    return SecurityKit(
        settings=settings,
        cipher=FieldCipher(secrets.field_keys),
        blind_index=BlindIndex(secrets.blind_index_key),
        tokens=TokenService(
            secrets.jwt_private_key,
            secrets.jwt_previous_public_keys,
            issuer=settings.jwt_issuer,
            ttl=settings.access_token_ttl,
        ),
    )
