"""The ASGI entry point for servers (``luffy serve`` runs Granian on it)."""

from luffy.app import create_app

app = create_app()
