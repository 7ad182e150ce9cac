"""Django settings of a stand-in for the original project: only what its migrations and hashers need.

``ORIGINAL_DATABASE`` is ``sqlite:///PATH`` or ``postgresql://USER:PASSWORD@HOST:PORT/NAME``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit


def _database(url: str) -> dict[str, object]:
    if url.startswith("sqlite:///"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url.removeprefix("sqlite:///")}
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username,
        "PASSWORD": parts.password,
        "HOST": parts.hostname,
        "PORT": parts.port,
    }


SECRET_KEY = "original-luffy-test-only"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "tests.support.original_django.luffy_original",
]
DATABASES = {"default": _database(os.environ["ORIGINAL_DATABASE"])}
AUTH_USER_MODEL = "luffy_original.UserInfo"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
