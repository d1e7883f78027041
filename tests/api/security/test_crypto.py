"""Field encryption (AES-256-GCM bound to its place by associated data), key rotation, blind
indexes and the masking of personal data."""

from __future__ import annotations

import os
import uuid

import pytest

from api.security.crypto import BlindIndex, DecryptionFailed, FieldCipher, mask_email, mask_phone

K1, K2, K_OTHER = os.urandom(32), os.urandom(32), os.urandom(32)
TENANT_A, TENANT_B = str(uuid.uuid4()), str(uuid.uuid4())
ROW = uuid.uuid4()
PLACE = {"scope": TENANT_A, "table": "client", "column": "phone", "row_id": ROW}
PHONE = "+8613812345678"


def test_round_trip_and_layout():
    cipher = FieldCipher({1: K1})
    blob = cipher.encrypt(PHONE, **PLACE)
    assert cipher.decrypt(blob, **PLACE) == PHONE
    # 2-byte version, 12-byte nonce, ciphertext, 16-byte tag; no plaintext inside.
    assert FieldCipher.version_of(blob) == 1
    assert len(blob) == 2 + 12 + len(PHONE.encode()) + 16
    assert PHONE.encode() not in blob and b"13812345678" not in blob
    # A fresh nonce each time: equal values do not give equal ciphertexts.
    again = cipher.encrypt(PHONE, **PLACE)
    assert again != blob and again[2:14] != blob[2:14]
    assert cipher.decrypt(again, **PLACE) == PHONE
    # Non-ASCII and empty values survive.
    for value in ("张三 ✓", ""):
        assert cipher.decrypt(cipher.encrypt(value, **PLACE), **PLACE) == value
    # The row id may be given as a UUID or its string: the same place.
    assert cipher.decrypt(blob, **{**PLACE, "row_id": str(ROW)}) == PHONE


@pytest.mark.parametrize(
    "moved",
    [
        {"row_id": uuid.uuid4()},
        {"column": "email"},
        {"table": "account"},
        {"scope": TENANT_B},
        {"scope": "shared"},
    ],
    ids=["other-row", "other-column", "other-table", "other-tenant", "shared-scope"],
)
def test_ciphertext_moved_elsewhere_fails(moved):
    cipher = FieldCipher({1: K1})
    blob = cipher.encrypt(PHONE, **PLACE)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(blob, **{**PLACE, **moved})
    assert cipher.decrypt(blob, **PLACE) == PHONE  # still fine where it belongs


def test_every_tampered_byte_fails():
    cipher = FieldCipher({1: K1})
    blob = cipher.encrypt(PHONE, **PLACE)
    for i in range(len(blob)):  # version, nonce, ciphertext and tag alike
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(bytes(tampered), **PLACE)


@pytest.mark.parametrize("blob", [None, b"", b"\x00\x01", b"\x00\x01" + b"\x00" * 27])
def test_not_a_ciphertext_fails(blob):
    with pytest.raises(DecryptionFailed):
        FieldCipher({1: K1}).decrypt(blob, **PLACE)


def test_truncated_or_extended_ciphertext_fails():
    cipher = FieldCipher({1: K1})
    blob = cipher.encrypt(PHONE, **PLACE)
    for bad in (blob[:-1], blob + b"\x00", blob[:30]):
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(bad, **PLACE)


def test_key_rotation():
    old = FieldCipher({1: K1})
    v1 = old.encrypt(PHONE, **PLACE)

    rotated = FieldCipher({2: K2, 1: K1})  # the newest version encrypts, whatever the order
    assert rotated.current == 2
    v2 = rotated.encrypt(PHONE, **PLACE)
    assert FieldCipher.version_of(v2) == 2
    assert rotated.decrypt(v1, **PLACE) == PHONE
    assert rotated.decrypt(v2, **PLACE) == PHONE

    # Without key 1, version-1 ciphertexts cannot be read; the old cipher cannot read v2.
    only2 = FieldCipher({2: K2})
    assert only2.decrypt(v2, **PLACE) == PHONE
    with pytest.raises(DecryptionFailed):
        only2.decrypt(v1, **PLACE)
    with pytest.raises(DecryptionFailed):
        old.decrypt(v2, **PLACE)
    # The version number alone is not enough: a different key under version 1 fails.
    with pytest.raises(DecryptionFailed):
        FieldCipher({1: K_OTHER}).decrypt(v1, **PLACE)


def test_cipher_needs_a_key():
    with pytest.raises(ValueError):
        FieldCipher({})


def test_blind_index():
    bidx = BlindIndex(K1)
    a = bidx.digest(PHONE, scope=TENANT_A, column="phone")
    assert len(a) == 32 and PHONE.encode() not in a
    # Deterministic within a scope, also across instances (another process, a restart).
    assert bidx.digest(PHONE, scope=TENANT_A, column="phone") == a
    assert BlindIndex(K1).digest(PHONE, scope=TENANT_A, column="phone") == a
    # Different across scopes (tenants), columns, values and keys.
    others = {
        bidx.digest(PHONE, scope=TENANT_B, column="phone"),
        bidx.digest(PHONE, scope="shared", column="phone"),
        bidx.digest(PHONE, scope=TENANT_A, column="email"),
        bidx.digest("+8613812345679", scope=TENANT_A, column="phone"),
        BlindIndex(K2).digest(PHONE, scope=TENANT_A, column="phone"),
    }
    assert a not in others and len(others) == 5
    # The column and the value are separated: ("ab", "c") is not ("a", "bc").
    assert bidx.digest("c", scope=TENANT_A, column="ab") != bidx.digest(
        "bc", scope=TENANT_A, column="a"
    )


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+8613812345678", "+86138****5678"),
        ("+14155552671", "+141****2671"),
        ("+442071838750", "+4420****8750"),
        ("+12345", "+1****"),
        ("", ""),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked
    assert len(mask_phone(phone)) == len(phone)


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("alice@example.com", "a***@example.com"),
        ("a@example.com", "a***@example.com"),
        ("zhang.san+crm@sub.example.cn", "z***@sub.example.cn"),
        ("no-at-sign", "***"),
        ("", "***"),
    ],
)
def test_mask_email(email, masked):
    assert mask_email(email) == masked
