"""The web console's built files (``console/dist``), served at ``/console/``, and GraphiQL.

- ``/console/assets/*``: Vite's hashed files, cached for a year (their name changes with them).
- Any other path under ``/console/`` that is not a built file answers ``index.html`` (the
  single-page app routes in the browser), never cached, with the tenant the subdomain named
  (if any) in ``<meta name="anju-tenant">`` so the console needs no tenant picker there.
- ``/invite?tenant=…&token=…`` (the link invitations carry) redirects to the console's
  ``/console/invite`` with the same query.
- Without a build (no Node.js where the gateway runs, or ``make console`` not run yet) the
  gateway still starts: ``/console/`` and GraphiQL answer a page that says how to build them.

The directory is looked up on each request, so a build made while the gateway runs is served.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

DIST = Path(__file__).resolve().parent.parent / "console" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
# What the console's pages may load: only this origin (the API over HTTP and WebSocket);
# styles inline because Ant Design injects its CSS at run time.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
PAGE_HEADERS = {"cache-control": "no-cache", "content-security-policy": CSP}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Anju: {what} not built</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}}
code,pre{{background:#f4f4f4;padding:.1em .3em}}</style></head>
<body><h1>{what} is not built</h1>
<p>The gateway serves the web console and GraphiQL from <code>{dist}</code>, which has no
build yet. Build it once with Node.js 20.19 or newer (npm comes with it):</p>
<pre>make console</pre>
<p><code>make run</code> builds it too when Node.js is installed, and rebuilds it when its
sources change. See <code>docs/console.md</code>.</p>
<p lang="zh-CN">控制台尚未构建。请安装 Node.js 20.19+ 后运行 <code>make console</code>。</p>
</body></html>
"""


def not_built(what: str, dist: Path) -> HTMLResponse:
    page = NOT_BUILT.format(what=html.escape(what), dist=html.escape(str(dist)))
    return HTMLResponse(page, status_code=503, headers={"cache-control": "no-store"})


def _file(dist: Path, relative: str) -> Path | None:
    """The built file at ``relative`` inside ``dist``, or None (never outside ``dist``)."""
    if "\x00" in relative:
        return None
    try:
        target = (dist / relative.lstrip("/")).resolve()
    except (OSError, ValueError):
        return None
    if not target.is_relative_to(dist.resolve()) or not target.is_file():
        return None
    return target


def index_page(dist: Path, tenant: str | None) -> Response:
    text = (dist / "index.html").read_text(encoding="utf-8")
    if tenant:
        meta = f'<meta name="anju-tenant" content="{html.escape(tenant)}">'
        text = text.replace("<head>", f"<head>\n    {meta}", 1)
    return HTMLResponse(text, headers=PAGE_HEADERS)


class ConsoleFiles:
    """The ASGI app mounted at ``/console``."""

    def __init__(self, dist: Path | None = None) -> None:
        self._dist = dist

    @property
    def dist(self) -> Path:
        return self._dist if self._dist is not None else DIST

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(scope)
        await response(scope, receive, send)

    def respond(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return Response("method not allowed", 405, headers={"allow": "GET, HEAD"})
        if not (self.dist / "index.html").is_file():
            return not_built("The Anju console", self.dist)
        path = scope.get("path", "/")
        root = scope.get("root_path", "")
        relative = path[len(root) :] if root and path.startswith(root) else path
        if relative.startswith("/assets/"):
            found = _file(self.dist, relative)
            if found is None:  # an old hash after a new build: a 404, not the page
                return Response("not found", 404, media_type="text/plain")
            return FileResponse(found, headers={"cache-control": IMMUTABLE})
        found = _file(self.dist, relative) if relative not in ("", "/") else None
        if found is not None and found.name != "index.html":
            return FileResponse(found, headers={"cache-control": "no-cache"})
        tenant = scope.get("state", {}).get("tenant")
        return index_page(self.dist, tenant.slug if tenant is not None else None)


def graphiql_page(dist: Path | None = None) -> Response:
    """GraphiQL, its scripts and styles served by the gateway (built with the console)."""
    dist = DIST if dist is None else dist
    page = dist / "graphiql.html"
    if not page.is_file():
        return not_built("GraphiQL", dist)
    return HTMLResponse(page.read_text(encoding="utf-8"), headers=PAGE_HEADERS)


async def _to_console(request: Request) -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


async def _invite(request: Request) -> RedirectResponse:
    query = request.url.query
    return RedirectResponse("/console/invite" + (f"?{query}" if query else ""), status_code=302)


def routes(dist: Path | None = None) -> list[BaseRoute]:
    """The console's routes; ``dist`` (default: ``DIST``, read at each request) for tests."""
    return [
        Route("/console", _to_console, methods=["GET", "HEAD"]),
        Mount("/console", app=ConsoleFiles(dist)),
        Route("/invite", _invite, methods=["GET", "HEAD"]),
    ]
