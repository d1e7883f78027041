"""Hostile input at the edge, over real HTTP (and WebSocket): a body that is not one JSON object,
nested past the interpreter's recursion, holding a 5,000-digit number or bytes that are not
UTF-8, is a 400 BAD_USER_INPUT naming the fault, never a 500; a body over its limit is a 413
before it is read past the limit (from its Content-Length, or while it streams in), for
GraphQL, uploads and the Stripe webhook, and a WebSocket message over 1 MiB closes its socket;
a document over its length limit (comments count), a 5,000-digit integer literal, or several
operations without an operationName are BAD_USER_INPUT; the server keeps serving."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from api.settings import Settings
from tests.api.helpers import DEEP_ARRAYS, DEEP_OBJECTS, body_with, refusal
from tests.api.live.helpers import live
from tests.conftest import STRIPE, gql


async def still_serving(client: httpx.AsyncClient) -> None:
    assert (await gql(client, "{ apiVersion }"))["data"] == {"apiVersion": "0.1.0"}


UNDECODABLE = [
    pytest.param(b"null", "one JSON object", id="null"),
    pytest.param(b"123", "one JSON object", id="number"),
    pytest.param(b'"x"', "one JSON object", id="string"),
    pytest.param(b'[{"query": "{ apiVersion }"}]', "batches are not accepted", id="batch"),
    pytest.param(DEEP_ARRAYS, "nested too deeply", id="100k-nested-arrays-body"),
    pytest.param(body_with(DEEP_ARRAYS), "nested too deeply", id="100k-nested-arrays-variables"),
    pytest.param(body_with(DEEP_OBJECTS), "nested too deeply", id="5k-nested-objects"),
    pytest.param(body_with(b'{"n": ' + b"7" * 5_000 + b"}"), "digits", id="5000-digit-int"),
    pytest.param(b'{"query": "{ apiVersion }"\xff}', "not valid UTF-8", id="bad-utf8-body"),
    pytest.param(body_with(b'{"s": "caf\xc3\x28"}'), "not valid UTF-8", id="bad-utf8-in-string"),
    pytest.param(b'{"query": "{ apiVersion }",}', "not valid JSON", id="not-json"),
]


@pytest.mark.parametrize(("body", "fault"), UNDECODABLE)
async def test_undecodable_bodies_are_bad_user_input(client, body: bytes, fault: str):
    resp = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert fault in refusal(resp)
    await still_serving(client)


MULTIPART = [
    pytest.param({"operations": "null", "map": "{}"}, {}, "one JSON object", id="operations-null"),
    pytest.param({"operations": "[1]", "map": "{}"}, {}, "one JSON object", id="operations-list"),
    pytest.param({"operations": '{"query": 1', "map": "{}"}, {}, "not valid JSON", id="bad-json"),
    pytest.param({"operations": "{}", "map": '"x"'}, {}, "lists of paths", id="map-string"),
    pytest.param(
        {"operations": "{}", "map": '{"0": ["variables.file"]}'},
        {},
        "not sent",
        id="map-names-a-missing-file",
    ),
    pytest.param(
        {"operations": '{"variables": 5}', "map": '{"0": ["variables.file"]}'},
        {"0": ("a.txt", b"x")},
        "not sent",
        id="map-path-into-a-number",
    ),
]


@pytest.mark.parametrize(("fields", "files", "fault"), MULTIPART)
async def test_malformed_multipart_requests_are_bad_user_input(
    client, make_tenant, fields: dict, files: dict, fault: str
):
    tenant = await make_tenant()
    parts = {k: (None, v) for k, v in fields.items()} | files
    resp = await client.post("/graphql", files=parts, headers={"X-Tenant": tenant.slug})
    assert fault in refusal(resp)
    await still_serving(client)


async def test_undecodable_websocket_messages_close_the_socket_cleanly(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug) as c:
        await c.ws.send(b'{"type": "ping", "x": ' + DEEP_ARRAYS + b"}")
        await asyncio.wait_for(c.ws.wait_closed(), 15)
        assert c.ws.close_code == 4400
    async with live(live_server, tenant.slug) as c:  # the endpoint still serves (acked)
        await c.ws.send(b'{"type": "subscribe", "id": "2", "payload": ' + DEEP_OBJECTS + b"}")
        await asyncio.wait_for(c.ws.wait_closed(), 15)
        assert c.ws.close_code == 4400


# ---------------------------------------------------------------- size limits


async def test_a_websocket_message_over_1_mib_closes_the_socket(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug) as c:
        await c.subscribe("# " + "a" * 2 * 1024 * 1024 + "\nsubscription { inboxChanges { id } }")
        await asyncio.wait_for(c.ws.wait_closed(), 15)
        assert c.ws.close_code == 1009  # message too big


async def raw_exchange(port: int, head: str, parts: list[bytes]) -> tuple[int, dict]:
    """Send a request head and some body bytes, without ever completing the body, over a raw
    socket; return the status and the JSON answer. A server that waits for the rest of the
    body before answering never answers (the read times out)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in parts:
            writer.write(part)
            await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 15)
        headers = {}
        while (line := await asyncio.wait_for(reader.readline(), 15)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 15)
        return int(status_line.split()[1]), json.loads(body)
    finally:
        writer.close()


def head(path: str, content_type: str, framing: str) -> str:
    """A POST's head (multipart needs a preflight header: see test_production_mode.py)."""
    return (
        f"POST {path} HTTP/1.1\nHost: 127.0.0.1\nContent-Type: {content_type}\n"
        f"Apollo-Require-Preflight: true\n{framing}\n"
    )


def too_large(status: int, answer: dict, limit: int) -> None:
    assert status == 413, answer
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "maxBytes": limit}, error
    assert f"{limit:,} bytes" in error["message"]


# A file part's head: what follows is its content, so the parser reads on until the limit.
FILE_PART = b'--x\r\nContent-Disposition: form-data; name="0"; filename="a.jpg"\r\n\r\n'
LIMITED = [  # path, content type, the setting of its limit, the first bytes of the body
    pytest.param(
        "/graphql", "application/json", "http_max_body_bytes", b'{"query": "', id="graphql"
    ),
    pytest.param(
        "/graphql",
        "multipart/form-data; boundary=x",
        "http_max_upload_bytes",
        FILE_PART,
        id="upload",
    ),
    pytest.param(
        "/webhooks/stripe",
        "application/json",
        "stripe_webhook_max_bytes",
        b'{"id": "',
        id="stripe-webhook",
    ),
]


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize(("path", "content_type", "setting", "start"), LIMITED)
async def test_bodies_over_the_limit_are_refused_before_they_are_read(
    live_server_factory, path: str, content_type: str, setting: str, start: bytes
):
    limit = 64 * 1024
    with live_server_factory(**{setting: limit}, **STRIPE) as server:
        # Content-Length over the limit: answered at once, the body never sent.
        status, answer = await raw_exchange(
            server.port, head(path, content_type, "Content-Length: 10000000"), [start]
        )
        too_large(status, answer, limit)
        # Chunked, no length: answered as soon as the bytes pass the limit (no final chunk).
        filler = [chunk(b"a" * 16 * 1024)] * 5
        status, answer = await raw_exchange(
            server.port,
            head(path, content_type, "Transfer-Encoding: chunked"),
            [chunk(start), *filler],
        )
        too_large(status, answer, limit)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await still_serving(client)


async def test_a_10_mb_variable_and_a_10_mb_comment_are_refused(client):
    resp = await client.post(
        "/graphql", json={"query": "{ apiVersion }", "variables": {"x": "a" * 10_000_000}}
    )
    refusal(resp, 413)
    resp = await client.post(
        "/graphql", json={"query": "#" + "a" * 10_000_000 + "\n{ apiVersion }"}
    )
    refusal(resp, 413)
    await still_serving(client)


def test_the_default_body_limits():
    settings = Settings()
    assert settings.http_max_body_bytes == 1024 * 1024
    assert settings.max_upload_bytes > settings.media_max_video_bytes  # a whole video uploads
    assert settings.stripe_webhook_max_bytes == 512 * 1024
    assert settings.graphql_max_document_chars == 100_000


async def test_a_document_over_the_length_limit_is_refused_comments_included(
    client, live_server, make_tenant
):
    # 150,000 characters of comment: a few tokens, well under the body limit.
    document = "# " + "padding " * 18_750 + "\n{ apiVersion }"
    res = await gql(client, document)
    assert res["data"] is None and res["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "maxChars": 100_000,
    }, res
    assert "characters long" in res["errors"][0]["message"]
    tenant = await make_tenant()
    async with live(live_server, tenant.slug) as c:
        sid = await c.subscribe(
            "# " + "padding " * 18_750 + "\nsubscription { inboxChanges { id } }"
        )
        msg = await c.recv()
        assert msg["type"] == "error" and msg["id"] == sid, msg
        assert msg["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "characters long" in msg["payload"][0]["message"]
    await still_serving(client)


async def test_two_operations_without_an_operation_name_are_refused(client):
    document = "query A { apiVersion } query B { __typename }"
    res = await gql(client, document)
    assert res["data"] is None and res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "operationName" in res["errors"][0]["message"]
    resp = await client.post("/graphql", json={"query": document, "operationName": "B"})
    assert resp.json() == {"data": {"__typename": "Query"}}
    resp = await client.post("/graphql", json={"query": document, "operationName": "C"})
    assert resp.status_code == 400 and resp.json()["errors"][0]["extensions"]["code"] == (
        "BAD_USER_INPUT"
    )


async def test_a_5000_digit_integer_in_the_document_is_bad_user_input(client, make_tenant):
    tenant = await make_tenant()
    for query in (
        "{ units(first: %s) { totalCount } }" % ("9" * 5_000),  # a page size (the cost rule)
        "{ units(filter: {priceMin: %s}) { totalCount } }" % ("9" * 5_000),  # a Long
    ):
        res = await gql(client, query, tenant=tenant.slug)
        [error] = res["errors"]
        assert res["data"] is None and error["extensions"]["code"] == "BAD_USER_INPUT", res
        assert "set_int_max_str_digits" not in error["message"]  # no interpreter internals
