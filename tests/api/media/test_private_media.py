"""Private media and the /media/ route, over real HTTP: documents (and media uploaded as
private) only through signed, expiring links, refused without a hint otherwise; listed only to
callers who may read personal data; the route answers 404 on a fresh install (no media folder);
a full disk (a real 1 MiB tmpfs) gives a typed error and leaves neither a file nor a row."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from tests.api.importing.helpers import upload
from tests.api.media.helpers import png
from tests.api.unit.helpers import inventory
from tests.conftest import gql

UPLOAD = """
mutation($input: MediaTarget!, $file: Upload!) {
  uploadMedia(input: $input, file: $file) {
    __typename
    ... on MediaPayload { media { id kind visibility url thumbnailUrl contentType size } }
    ... on UserError { code message field }
  }
}
"""
UNIT_MEDIA = "query($id: ID!) { unit(id: $id) { firstPhoto { id } media { id url } } }"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def send(client, slug, unit_id, kind, data, visibility=None, name="f.bin") -> dict:
    target = {"ownerKind": "UNIT", "ownerId": unit_id, "kind": kind}
    if visibility:
        target["visibility"] = visibility
    res = await upload(client, slug, UPLOAD, {"input": target}, name, data)
    assert "errors" not in res, res
    return res["data"]["uploadMedia"]


def path_and_query(url: str) -> tuple[str, dict]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def fetch(client, url: str) -> httpx.Response:
    """GET a media URL from the test gateway (URLs name the configured public host)."""
    path, query = path_and_query(url)
    return await client.get(path, params=query)


async def test_documents_are_served_only_through_signed_expiring_links(
    client, make_tenant, member, live_server
):
    tenant = await make_tenant()
    unit = (await inventory(client, tenant.slug, floors=1, per_floor=1))["units"][0]["id"]
    doc = await send(client, tenant.slug, unit, "DOCUMENT", PDF, name="contract.pdf")
    assert doc["__typename"] == "MediaPayload", doc
    doc = doc["media"]
    assert (doc["kind"], doc["visibility"], doc["contentType"]) == (
        "DOCUMENT",
        "PRIVATE",
        "application/pdf",
    )
    path, query = path_and_query(doc["url"])
    assert path.startswith(f"/media/private/{tenant.slug}/") and set(query) == {"exp", "sig"}

    res = await fetch(client, doc["url"])
    assert res.status_code == 200 and res.content == PDF
    assert res.headers["cache-control"] == "private, no-store"

    # Without the signature, with a wrong one, another file's, or an expired one: the same
    # 404 as a file that does not exist.
    signer = live_server.server.config.app.state.storage.signer
    key = path.removeprefix("/media/")
    past = int(time.time()) - 1
    photo = (await send(client, tenant.slug, unit, "PHOTO", png(8, 8), visibility="PRIVATE"))[
        "media"
    ]
    other_path, other_query = path_and_query(photo["url"])
    missing = await client.get(f"/media/private/{tenant.slug}/2026/01/nothing-here.pdf")
    assert missing.status_code == 404
    for url, params in [
        (path, {}),
        (path, {"exp": query["exp"]}),
        (path, {"exp": query["exp"], "sig": query["sig"][:-2] + "AA"}),
        (path, {"exp": str(int(query["exp"]) + 60), "sig": query["sig"]}),
        (path, {"exp": str(past), "sig": signer.signature(key, past)}),  # expired
        (path, {"exp": "soon", "sig": query["sig"]}),
        (path, other_query),  # another file's signature
        (other_path, query),
    ]:
        res = await client.get(url, params=params)
        assert (res.status_code, res.content) == (404, missing.content), (url, params)

    # A private photo: its thumbnail is signed too; it is never the first photo.
    assert photo["visibility"] == "PRIVATE"
    assert (await fetch(client, photo["thumbnailUrl"])).status_code == 200
    assert (await client.get(urlsplit(photo["thumbnailUrl"]).path)).status_code == 404

    # Listing: the admin (pii.read) gets fresh signed links; an agent does not see them.
    res = await gql(client, UNIT_MEDIA, {"id": unit}, tenant=tenant.slug)
    listed = {m["id"]: m["url"] for m in res["data"]["unit"]["media"]}
    assert set(listed) == {doc["id"], photo["id"]}
    assert (await fetch(client, listed[doc["id"]])).content == PDF
    assert res["data"]["unit"]["firstPhoto"] is None
    _, agent = await member(tenant, ["agent"])
    res = await gql(client, UNIT_MEDIA, {"id": unit}, tenant=tenant.slug, token=agent)
    assert res["data"]["unit"]["media"] == [], res

    # Public media are as before: a permanent URL without a query.
    public = (await send(client, tenant.slug, unit, "PHOTO", png(8, 8)))["media"]
    assert public["visibility"] == "PUBLIC" and "?" not in public["url"]
    res = await client.get(urlsplit(public["url"]).path)
    assert res.status_code == 200 and "immutable" in res.headers["cache-control"]


async def test_visibility_is_decided_at_upload(client, make_tenant):
    tenant = await make_tenant()
    unit = (await inventory(client, tenant.slug, floors=1, per_floor=1))["units"][0]["id"]
    res = await send(client, tenant.slug, unit, "DOCUMENT", PDF, visibility="PUBLIC")
    assert (res["__typename"], res["field"]) == ("ValidationError", "visibility"), res
    res = await send(client, tenant.slug, unit, "DOCUMENT", b"plain text, not a document")
    assert (res["__typename"], res["field"]) == ("ValidationError", "file"), res
    scan = await send(client, tenant.slug, unit, "DOCUMENT", png(16, 16), name="id-scan.png")
    assert (scan["media"]["visibility"], scan["media"]["contentType"]) == ("PRIVATE", "image/png")


async def test_media_route_on_a_fresh_install_answers_404(live_server_factory, tmp_path):
    root = tmp_path / "never-created"
    with live_server_factory(media_dir=root) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            for path in (
                "/media/t-1/2026/01/a.jpg",
                "/media/private/t-1/2026/01/a.pdf",
                "/media/t-1/..%2F..%2Fsecrets.json",
                "/media/",
            ):
                res = await c.get(path)
                assert res.status_code == 404, (path, res.text)
                assert "Traceback" not in res.text
    assert not root.exists()


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "1m"):
    """A real filesystem of ``size`` (root only: CI runs the suite as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def noise_png(side: int) -> bytes:
    """A PNG that does not compress (random pixels): about 3 x side^2 bytes."""
    import io

    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG")
    return buf.getvalue()


async def test_a_full_disk_is_a_typed_error_and_leaves_nothing(
    live_server_factory, make_tenant, engine, tmp_path
):
    with (
        tiny_tmpfs(tmp_path / "media") as root,
        live_server_factory(media_dir=root) as server,
    ):
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            tenant = await make_tenant()
            unit = (await inventory(c, tenant.slug, floors=1, per_floor=1))["units"][0]["id"]
            big = noise_png(800)  # ~1.9 MB: more than the whole disk
            assert len(big) > 1_500_000
            for kind, visibility in (("PHOTO", None), ("DOCUMENT", None)):
                res = await send(c, tenant.slug, unit, kind, big, visibility)
                assert (res["__typename"], res["code"], res["field"]) == (
                    "StorageUnavailableError",
                    "INTERNAL",
                    "file",
                ), res
                assert "full" in res["message"]
            assert [p for p in root.rglob("*") if p.is_file()] == []  # no .part, no thumbnail
            async with engine.connect() as conn:
                rows = await conn.scalar(
                    text(f'SELECT count(*) FROM "{tenant.schema_name}".media WHERE owner_id = :o'),
                    {"o": uuid.UUID(unit)},
                )
            assert rows == 0
            # The disk, not the file, was the problem: a small one fits.
            res = await send(c, tenant.slug, unit, "PHOTO", png(8, 8))
            assert res["__typename"] == "MediaPayload", res
            assert (await c.get(urlsplit(res["media"]["url"]).path)).status_code == 200


def test_private_link_lifetime_is_at_most_what_sigv4_allows():
    """S3 refuses presigned links that live over 7 days: a longer setting fails at start-up,
    not on the first private link read."""
    from pydantic import ValidationError

    from tests.conftest import test_settings

    assert test_settings(media_private_url_ttl=604800).media_private_url_ttl == 604800
    with pytest.raises(ValidationError, match="media_private_url_ttl"):
        test_settings(media_private_url_ttl=604801)
