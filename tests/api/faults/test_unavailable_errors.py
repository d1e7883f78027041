"""Which errors mean "the database is out of reach" (HTTP 503, api/unavailable.py): the
database's own connection failures only, never another client's refused connection."""

from __future__ import annotations

import asyncio
import glob
import socket
import struct

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from api.db import DatabaseUnavailable, make_engine, unavailable
from api.notify.email import SmtpEmailSender
from tests.api.processes import free_port


async def failure(awaitable) -> BaseException:
    with pytest.raises(Exception) as caught:
        await awaitable
    return caught.value


async def wrapped(awaitable) -> BaseException:
    """The failure as a service reports it: another error raised while handling it."""
    cause = await failure(awaitable)
    try:
        raise RuntimeError("the invitation could not be sent") from cause
    except RuntimeError as exc:
        return exc


async def test_another_clients_refused_connection_is_not_the_database():
    port = free_port()  # nothing listens there: every connection is refused
    smtp = SmtpEmailSender("127.0.0.1", port, "office@example.com", timeout=5)
    async with httpx.AsyncClient(timeout=5) as c:  # as the Stripe, S3 and FCM clients do
        errors = [
            await failure(smtp.send("buyer@example.com", "Hello", "text")),
            await wrapped(smtp.send("buyer@example.com", "Hello", "text")),
            await failure(c.get(f"http://127.0.0.1:{port}/v1/charges")),
            await wrapped(c.get(f"http://127.0.0.1:{port}/v1/charges")),
            await failure(asyncio.open_connection("127.0.0.1", port)),
        ]
    chain = errors[1]
    while chain is not None and not isinstance(chain, ConnectionRefusedError):
        chain = chain.__cause__ or chain.__context__
    assert isinstance(chain, ConnectionRefusedError)  # the built-in error is in the chain
    assert [unavailable(e) for e in errors] == [False] * len(errors), errors


async def test_the_database_out_of_reach_is(settings, db_url):
    # Refused at connect: the pool's connect names it (api/db.py _connect).
    nowhere = db_url.set(host="127.0.0.1", port=free_port()).difference_update_query(["host"])
    engine = make_engine(nowhere, settings, poolclass=NullPool)
    try:
        refused = await failure(engine.connect().__aenter__())
    finally:
        await engine.dispose()
    assert isinstance(refused, DatabaseUnavailable) and unavailable(refused)
    assert unavailable(await wrapped(engine.connect().__aenter__()))


async def test_a_connection_reset_mid_query_is_the_database(settings, db_url):
    """A TCP proxy in front of the test PostgreSQL resets the connection during a query."""
    upstream = db_url.query.get("host")
    clients: list[asyncio.StreamWriter] = []

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            w.close()

    async def relay(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        if upstream and upstream.startswith("/"):
            ur, uw = await asyncio.open_unix_connection(glob.glob(f"{upstream}/.s.PGSQL.*")[0])
        else:
            ur, uw = await asyncio.open_connection(db_url.host or "127.0.0.1", db_url.port or 5432)
        clients.append(cw)
        await asyncio.gather(pipe(cr, uw), pipe(ur, cw))

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    url = db_url.set(host="127.0.0.1", port=port).difference_update_query(["host"])
    engine = make_engine(url, settings, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            query = asyncio.create_task(conn.execute(text("SELECT pg_sleep(30)")))
            await asyncio.sleep(0.2)  # the query is sent (it lasts 30 s)
            for w in clients:  # RST: no FIN, no goodbye from the server
                sock = w.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.transport.abort()
            reset = await failure(query)
    finally:
        await engine.dispose()
        proxy.close()
    assert unavailable(reset), repr(reset)
