"""ASGI entry point for uvicorn: ``api.main:app``."""

from api.app import create_app
from api.logging import configure_logging
from api.settings import get_settings

configure_logging(get_settings())
app = create_app(get_settings())
