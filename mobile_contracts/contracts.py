"""The documents each app sends, and the trusted-document manifest made from them.

Every ``<app>/<Operation>.graphql`` file holds one operation. Its id is the SHA-256 of the
file's text (hex). ``manifest.json`` maps id -> {app, name, document}; ``anju contracts
manifest`` writes it, a test fails when it is stale, and in production the gateway runs app
requests only from it (``documentId`` instead of ``query``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent
APPS = ("agent", "owner", "staff")
MANIFEST = ROOT / "manifest.json"


@dataclass(frozen=True)
class Document:
    app: str
    name: str
    text: str

    @property
    def id(self) -> str:
        return document_id(self.text)


def document_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def documents() -> list[Document]:
    return [
        Document(app, path.stem, path.read_text())
        for app in APPS
        for path in sorted((ROOT / app).glob("*.graphql"))
    ]


def manifest_text() -> str:
    entries = {d.id: {"app": d.app, "name": d.name, "document": d.text} for d in documents()}
    return json.dumps(dict(sorted(entries.items())), indent=1, ensure_ascii=False) + "\n"


def load_manifest(path: Path = MANIFEST) -> dict[str, str]:
    """id -> document text, from the committed manifest (empty when there is none)."""
    if not path.exists():
        return {}
    return {k: v["document"] for k, v in json.loads(path.read_text()).items()}
