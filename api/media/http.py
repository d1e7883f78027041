"""``GET /media/<key>``: the local storage backend's files.

Public keys are served with a long cache lifetime. Private keys (``private/...``) need the
signed, expiring query string that ``Media.url`` hands out; a missing, bad or expired
signature is answered exactly like a file that does not exist (404, no hint). A missing file
or folder (a fresh install has no media folder yet) is a 404 too, never a 500. With the S3
backend, public files come from the bucket and only signed private links exist (presigned by
S3), so this route answers 404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from api.media.storage import PRIVATE_PREFIX, LocalStorage


def media_endpoint(storage):
    def not_found() -> Response:
        return PlainTextResponse("not found", status_code=404)

    async def serve(request: Request) -> Response:
        key = request.path_params["key"]
        if not isinstance(storage, LocalStorage) or key.endswith(".part"):
            return not_found()
        try:
            path = storage.path(key)
        except ValueError:
            return not_found()
        private = key.startswith(PRIVATE_PREFIX)
        if private:
            q = request.query_params
            if storage.signer is None or not storage.signer.valid(
                key, q.get("exp", ""), q.get("sig", "")
            ):
                return not_found()
        if not path.is_file():
            return not_found()
        cache = "private, no-store" if private else "public, max-age=31536000, immutable"
        return FileResponse(path, headers={"Cache-Control": cache})

    return serve


def routes(storage) -> list[Route]:
    return [Route("/media/{key:path}", media_endpoint(storage), methods=["GET", "HEAD"])]
