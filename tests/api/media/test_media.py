"""Media: uploads through GraphQL multipart requests, type checks on the bytes, metadata
stripped, thumbnails, permissions, removal after commit; local disk and S3 (moto's server on
loopback, with boto3 doing the real calls)."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import boto3
import httpx
import pytest
from PIL import Image

from tests.api.importing.helpers import upload
from tests.api.media.helpers import png
from tests.api.unit.helpers import inventory
from tests.conftest import gql

UPLOAD = """
mutation($input: MediaTarget!, $file: Upload!) {
  uploadMedia(input: $input, file: $file) {
    __typename
    ... on MediaPayload { media { id kind url thumbnailUrl contentType size width height
                                  position } }
    ... on UserError { code message field }
  }
}
"""
DELETE = """
mutation($id: ID!) { deleteMedia(id: $id) { __typename ... on UserError { code message } } }
"""
GPS = 0x8825


def jpeg_with_gps(width: int = 1200, height: int = 800) -> bytes:
    img = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[GPS] = {1: "N", 2: (22.0, 32.0, 10.0)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


async def send(client, slug, owner_kind, owner_id, kind, data, name="f.bin", token=None):
    variables = {"input": {"ownerKind": owner_kind, "ownerId": owner_id, "kind": kind}}
    res = await upload(client, slug, UPLOAD, variables, name, data, token=token)
    assert "errors" not in res, res
    return res["data"]["uploadMedia"]


async def test_photo_is_cleaned_thumbnailed_and_served(client, make_tenant, live_server):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    unit = inv["units"][0]
    media = (
        await send(
            client, tenant.slug, "UNIT", unit["id"], "PHOTO", jpeg_with_gps(), name="evil.png"
        )
    )["media"]
    assert (media["kind"], media["contentType"]) == ("PHOTO", "image/jpeg")  # from the bytes
    assert (media["width"], media["height"], media["position"]) == (1200, 800, 0)
    stored = (await client.get(urlparse(media["url"]).path)).content
    assert len(stored) == media["size"]
    assert GPS not in Image.open(io.BytesIO(stored)).getexif()  # no location leaks out
    thumb = Image.open(io.BytesIO((await client.get(urlparse(media["thumbnailUrl"]).path)).content))
    assert max(thumb.size) == 480 and thumb.format == "JPEG"
    second = (await send(client, tenant.slug, "UNIT", unit["id"], "PHOTO", png(10, 10)))["media"]
    assert second["position"] == 1 and second["contentType"] == "image/png"

    res = await gql(
        client,
        "query($id: ID!) { unit(id: $id) { firstPhoto { id } media { id } } }",
        {"id": unit["id"]},
        tenant=tenant.slug,
    )
    assert res["data"]["unit"]["firstPhoto"]["id"] == media["id"]
    assert [m["id"] for m in res["data"]["unit"]["media"]] == [media["id"], second["id"]]

    res = await gql(client, DELETE, {"id": media["id"]}, tenant=tenant.slug)
    assert res["data"]["deleteMedia"]["__typename"] == "DeleteMediaPayload"
    assert (await client.get(urlparse(media["url"]).path)).status_code == 404  # file gone too


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("PHOTO", b"just text, not an image", "the file is not a readable image"),
        ("PHOTO", MP4, "a photo must be an image"),
        ("VIDEO", png(4, 4), "videos must be MP4, QuickTime or WebM"),
        ("FLOOR_PLAN", b"", "the file is empty"),
        ("PHOTO", b"GIF89a" + b"\x00" * 40, "the file is not a readable image"),
    ],
)
async def test_bad_files_are_refused(client, make_tenant, kind, data, message):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    res = await send(client, tenant.slug, "UNIT", inv["units"][0]["id"], kind, data)
    assert (res["__typename"], res["field"], res["message"]) == ("ValidationError", "file", message)


async def test_bomb_video_and_permissions(client, make_tenant, member):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    uid = inv["units"][0]["id"]
    res = await send(client, tenant.slug, "UNIT", uid, "PHOTO", png(8000, 8000, "1"))
    assert res["__typename"] == "ValidationError" and "pixels" in res["message"]
    video = (await send(client, tenant.slug, "UNIT", uid, "VIDEO", MP4))["media"]
    assert (video["contentType"], video["thumbnailUrl"]) == ("video/mp4", None)
    _, agent = await member(tenant, ["agent"])
    res = await send(client, tenant.slug, "UNIT", uid, "PHOTO", png(4, 4), token=agent)
    assert (res["__typename"], res["code"]) == ("PermissionDeniedError", "FORBIDDEN")
    res = await send(client, tenant.slug, "UNIT", "not-an-id", "PHOTO", png(4, 4))
    assert res["__typename"] == "NotFoundError"
    other = await make_tenant()
    res = await send(client, other.slug, "UNIT", uid, "PHOTO", png(4, 4))
    assert res["__typename"] == "NotFoundError"  # another tenant's unit does not exist here


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 on a loopback port, one request at a time; yields its endpoint.

    moto's ``ThreadedMotoServer`` serves each request on a thread of its own, but moto's
    in-memory backends are not thread-safe: the gateway stores a photo and its thumbnail at
    once, and one run in a few dozen failed with ``dictionary changed size during iteration``
    inside moto. A server that handles one connection after the other (HTTP/1.0, so no
    kept-alive connection holds it) cannot race."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(10)


async def test_s3_backend_end_to_end(make_tenant, live_server_factory):
    with moto_s3() as endpoint:
        creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
        admin.create_bucket(Bucket="anju-media")
        # Public media (unguessable keys): the operator's bucket policy allows reads of all
        # but private/ (documents, reached only through presigned links).
        public_read = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "NotResource": "arn:aws:s3:::anju-media/private/*",
                }
            ],
        }
        admin.put_bucket_policy(Bucket="anju-media", Policy=json.dumps(public_read))
        overrides = dict(
            media_backend="s3",
            s3_bucket="anju-media",
            s3_endpoint_url=endpoint,
            s3_access_key_id="test",
            s3_secret_access_key="test",
        )
        with live_server_factory(**overrides) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                tenant = await make_tenant()
                inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
                res = await send(
                    client,
                    tenant.slug,
                    "UNIT",
                    inv["units"][0]["id"],
                    "PHOTO",
                    jpeg_with_gps(640, 480),
                )
                media = res["media"]
                assert media["url"].startswith(f"{endpoint}/anju-media/{tenant.slug}/")
                async with httpx.AsyncClient() as plain:
                    body = (await plain.get(media["url"])).content
                    assert Image.open(io.BytesIO(body)).size == (640, 480)
                    assert (await plain.get(media["thumbnailUrl"])).status_code == 200
                # A document: private, a presigned link that expires.
                doc = (
                    await send(
                        client,
                        tenant.slug,
                        "UNIT",
                        inv["units"][0]["id"],
                        "DOCUMENT",
                        b"%PDF-1.4\n%%EOF\n",
                    )
                )["media"]
                assert doc["url"].startswith(f"{endpoint}/anju-media/private/{tenant.slug}/")
                assert "X-Amz-Signature=" in doc["url"] and "X-Amz-Expires=" in doc["url"]
                async with httpx.AsyncClient() as plain:
                    assert (await plain.get(doc["url"])).content == b"%PDF-1.4\n%%EOF\n"
                res = await gql(client, DELETE, {"id": doc["id"]}, tenant=tenant.slug)
                assert res["data"]["deleteMedia"]["__typename"] == "DeleteMediaPayload"
                res = await gql(client, DELETE, {"id": media["id"]}, tenant=tenant.slug)
                assert res["data"]["deleteMedia"]["__typename"] == "DeleteMediaPayload"
                listed = admin.list_objects_v2(Bucket="anju-media")
                assert listed.get("KeyCount", 0) == 0  # photo and thumbnail deleted
