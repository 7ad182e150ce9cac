"""Password hashes round-trip with Django itself: Django's hashes log in here, ours verify in Django.

Django is configured in this process with only what its hashers need; its ``Argon2PasswordHasher``
and ``PBKDF2PasswordHasher`` are the real ones the original project used.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from luffy.settings import Settings
from luffy.user import passwords
from luffy.user.models import User
from tests.support.database import execute_sql
from tests.test_accounts_api import LOGIN, make_user, stored_password
from tests.test_user_api import running

PASSWORD = "海贼王-One Piece 2026"


@pytest.fixture(scope="module")
def django_hashers() -> object:
    django = pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            PASSWORD_HASHERS=[
                "django.contrib.auth.hashers.PBKDF2PasswordHasher",
                "django.contrib.auth.hashers.Argon2PasswordHasher",
            ],
            USE_TZ=True,
        )
        django.setup()
    from django.contrib.auth import hashers

    return hashers


def test_our_new_hash_is_what_djangos_argon2_hasher_writes_and_verifies(django_hashers: object) -> None:
    hashers = django_hashers
    encoded = passwords.make_password(PASSWORD)
    theirs = hashers.make_password(PASSWORD, hasher="argon2")  # type: ignore[attr-defined]
    assert encoded.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")
    assert encoded.split("$")[:4] == theirs.split("$")[:4]
    assert len(encoded.split("$")[4]) == len(theirs.split("$")[4])  # the same salt length
    assert hashers.check_password(PASSWORD, encoded)  # type: ignore[attr-defined]
    assert not hashers.check_password(PASSWORD + "x", encoded)  # type: ignore[attr-defined]
    assert not hashers.identify_hasher(encoded).must_update(encoded)  # type: ignore[attr-defined]


def test_djangos_argon2_hash_verifies_here_and_needs_no_upgrade(django_hashers: object) -> None:
    encoded = django_hashers.make_password(PASSWORD, hasher="argon2")  # type: ignore[attr-defined]
    assert passwords.check_password(PASSWORD, encoded) == passwords.Checked(ok=True, upgrade=False)
    assert not passwords.check_password("wrong", encoded).ok


@pytest.mark.parametrize("iterations", [260_000, 1_000_000])  # Django 3.2's count, Django 5.2's
def test_djangos_pbkdf2_hashes_verify_here_and_ask_for_an_upgrade(django_hashers: object, iterations: int) -> None:
    hasher = django_hashers.PBKDF2PasswordHasher()  # type: ignore[attr-defined]
    encoded = hasher.encode(PASSWORD, hasher.salt(), iterations=iterations)
    assert encoded.startswith(f"pbkdf2_sha256${iterations}$")
    assert passwords.check_password(PASSWORD, encoded) == passwords.Checked(ok=True, upgrade=True)
    assert not passwords.check_password(PASSWORD[:-1], encoded).ok


@pytest.mark.parametrize(
    "encoded", ["", "!", "!abc", "md5$x$y", "pbkdf2_sha256$x$salt$hash", "pbkdf2_sha256$0$s$h", "argon2$junk"]
)
def test_unusable_and_malformed_hashes_match_nothing(encoded: str) -> None:
    assert not passwords.check_password(PASSWORD, encoded).ok


def test_our_unusable_password_is_djangos(django_hashers: object) -> None:
    encoded = passwords.unusable_password()
    assert not django_hashers.is_password_usable(encoded)  # type: ignore[attr-defined]
    assert len(encoded) == len(django_hashers.make_password(None))  # type: ignore[attr-defined]


async def test_a_django_pbkdf2_user_logs_in_and_the_hash_becomes_argon2_that_django_still_accepts(
    django_hashers: object, clean_database: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(clean_database)
    user_id = await make_user(clean_database, username="zoro", mobile="13800138000")
    hasher = django_hashers.PBKDF2PasswordHasher()  # type: ignore[attr-defined]
    django_hash = hasher.encode(PASSWORD, hasher.salt(), iterations=260_000)
    await execute_sql(clean_database, update(User).where(User.id == user_id).values(password=django_hash))
    async with running(settings) as client:
        wrong = await client.post(LOGIN, json={"username": "zoro", "password": "not-it-at-all"})
        assert wrong.status_code == 400
        assert await stored_password(clean_database, user_id) == django_hash
        login = await client.post(LOGIN, json={"username": "zoro", "password": PASSWORD})
        assert login.status_code == 200, login.text
        upgraded = await stored_password(clean_database, user_id)
        assert upgraded.startswith("argon2$argon2id$")
        assert django_hashers.check_password(PASSWORD, upgraded)  # type: ignore[attr-defined]
        again = await client.post(LOGIN, json={"username": "zoro", "password": PASSWORD})
        assert again.status_code == 200
    assert await stored_password(clean_database, user_id) == upgraded
