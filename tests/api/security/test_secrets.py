"""Where secrets come from: ANJU_* settings; in production a missing one stops start-up; in
development it is generated once into <data_dir>/secrets.json (mode 600) and reused."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization

from api.security import secrets as secrets_mod
from api.security.crypto import FieldCipher
from api.security.kit import build_kit
from api.security.secrets import MissingSecret, load_secrets
from api.security.secrets import new_ed25519_pem as ed25519_pem
from api.security.tokens import TokenService
from api.settings import Settings

ENV_NAMES = ("ANJU_JWT_PRIVATE_KEY", "ANJU_FIELD_KEYS", "ANJU_BLIND_INDEX_KEY")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture(autouse=True)
def _no_secret_env(monkeypatch):
    """Settings read the environment: make sure no real secret leaks into these tests."""
    for name in (*ENV_NAMES, "ANJU_JWT_PREVIOUS_PUBLIC_KEYS", "ANJU_ENV", "ANJU_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def make_settings(tmp_path, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "data", **kw)


def test_production_refuses_missing_secrets_and_names_them(tmp_path):
    with pytest.raises(MissingSecret) as exc:
        load_secrets(make_settings(tmp_path, env="production"))
    for name in ENV_NAMES:
        assert name in str(exc.value)
    # Nothing was generated on disk.
    assert not (tmp_path / "data" / "secrets.json").exists()


def test_production_names_only_the_missing_one(tmp_path):
    settings = make_settings(
        tmp_path, env="production", jwt_private_key=ed25519_pem(), field_keys="1:" + b64(b"k" * 32)
    )
    with pytest.raises(MissingSecret) as exc:
        load_secrets(settings)
    assert "ANJU_BLIND_INDEX_KEY" in str(exc.value)
    assert "ANJU_FIELD_KEYS" not in str(exc.value)
    assert "ANJU_JWT_PRIVATE_KEY" not in str(exc.value)
    assert not (tmp_path / "data" / "secrets.json").exists()


def test_production_with_every_secret_starts(tmp_path):
    pem, fk, bk = ed25519_pem(), b"f" * 32, b"b" * 32
    settings = make_settings(
        tmp_path,
        env="production",
        jwt_private_key=pem,
        field_keys=f"1:{b64(os.urandom(32))}, 2:{b64(fk)}",
        blind_index_key=b64(bk),
    )
    s = load_secrets(settings)
    assert s.jwt_private_key == pem
    assert set(s.field_keys) == {1, 2} and s.field_keys[2] == fk
    assert s.blind_index_key == bk
    assert not (tmp_path / "data").exists()
    kit = build_kit(settings)
    assert kit.cipher.current == 2


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_generates_once_with_mode_600_and_reuses(tmp_path, env):
    settings = make_settings(tmp_path, env=env)
    path = tmp_path / "data" / "secrets.json"
    first = load_secrets(settings)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert {"jwt_private_key", "field_keys", "blind_index_key"} <= set(stored)
    before = (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)

    second = load_secrets(settings)
    assert second == first
    assert (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns) == before
    assert len(first.blind_index_key) == 32
    assert [len(k) for k in first.field_keys.values()] == [32]

    # A restart (a new kit from the same data_dir) keeps tokens and ciphertexts valid.
    kit1, kit2 = build_kit(settings), build_kit(settings)
    account, sid = uuid.uuid4(), uuid.uuid4()
    token, _ = kit1.tokens.issue(account, "acme", sid)
    assert kit2.tokens.verify(token, "acme").account_id == account
    place = {"scope": "shared", "table": "account", "column": "phone", "row_id": account}
    assert kit2.cipher.decrypt(kit1.cipher.encrypt("+8613812345678", **place), **place)
    assert kit1.blind_index.digest("x", scope="s", column="c") == kit2.blind_index.digest(
        "x", scope="s", column="c"
    )


def test_development_keeps_given_secrets_and_generates_only_missing(tmp_path):
    fk = b"g" * 32
    settings = make_settings(tmp_path, env="development", field_keys="7:" + b64(fk))
    s = load_secrets(settings)
    assert s.field_keys == {7: fk}
    stored = json.loads((tmp_path / "data" / "secrets.json").read_text())
    assert "field_keys" not in stored  # a given secret is not written to disk
    assert {"jwt_private_key", "blind_index_key"} <= set(stored)


def test_development_secrets_differ_per_data_dir(tmp_path):
    a = load_secrets(Settings(env="development", data_dir=tmp_path / "a"))
    b = load_secrets(Settings(env="development", data_dir=tmp_path / "b"))
    assert a.jwt_private_key != b.jwt_private_key
    assert a.field_keys != b.field_keys and a.blind_index_key != b.blind_index_key


@pytest.mark.parametrize(
    "raw",
    [
        "1",  # no key
        "1:",  # empty key
        "v1:" + b64(b"k" * 32),  # version not a number
        "1:" + b64(b"k" * 16),  # 16 bytes: AES-128, not AES-256
        "1:" + b64(b"k" * 32) + ",2:" + b64(b"k" * 31),  # one good, one bad
    ],
)
def test_bad_field_keys_refused(tmp_path, raw):
    settings = make_settings(
        tmp_path,
        env="production",
        jwt_private_key=ed25519_pem(),
        field_keys=raw,
        blind_index_key=b64(b"b" * 32),
    )
    with pytest.raises(MissingSecret, match="ANJU_FIELD_KEYS"):
        load_secrets(settings)


@pytest.mark.parametrize("raw", ["1:not-base64!", "1:abc"])
def test_field_keys_not_base64_refused_naming_the_variable(tmp_path, raw):
    settings = make_settings(
        tmp_path,
        env="production",
        jwt_private_key=ed25519_pem(),
        field_keys=raw,
        blind_index_key=b64(b"b" * 32),
    )
    with pytest.raises(MissingSecret, match="ANJU_FIELD_KEYS"):
        load_secrets(settings)


def test_field_keys_without_any_key_refused_at_start(tmp_path):
    settings = make_settings(
        tmp_path,
        env="production",
        jwt_private_key=ed25519_pem(),
        field_keys=" , ",
        blind_index_key=b64(b"b" * 32),
    )
    with pytest.raises((MissingSecret, ValueError)):
        build_kit(settings)


def test_short_blind_index_key_refused(tmp_path):
    settings = make_settings(
        tmp_path,
        env="production",
        jwt_private_key=ed25519_pem(),
        field_keys="1:" + b64(b"k" * 32),
        blind_index_key=b64(b"abcd"),
    )
    with pytest.raises(MissingSecret, match="ANJU_BLIND_INDEX_KEY"):
        load_secrets(settings)


def test_jwt_key_must_be_ed25519(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="Ed25519"):
        TokenService(pem)


def test_concurrent_first_start_agrees_on_one_set_of_secrets(tmp_path, monkeypatch):
    real = secrets_mod._GENERATORS["field_keys"]

    def slow():  # widen the read-generate-write window, as a busy machine would
        time.sleep(0.2)
        return real()

    monkeypatch.setitem(secrets_mod._GENERATORS, "field_keys", slow)
    settings = make_settings(tmp_path, env="development")
    results: list = []

    def start() -> None:
        try:
            results.append(load_secrets(settings))
        except Exception as exc:  # e.g. both writers renaming the same secrets.tmp
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [r for r in results if isinstance(r, Exception)], results
    assert results[0].field_keys == results[1].field_keys
    on_disk = load_secrets(settings).field_keys
    assert on_disk == results[0].field_keys
    # And what was generated still decrypts after a restart.
    place = {"scope": "shared", "table": "t", "column": "c", "row_id": 1}
    blob = FieldCipher(results[0].field_keys).encrypt("x", **place)
    assert FieldCipher(on_disk).decrypt(blob, **place) == "x"
