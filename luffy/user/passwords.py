"""Passwords in Django's hasher format, so an original Luffy database and Django itself keep working.

New hashes are what Django's ``Argon2PasswordHasher`` writes (``argon2$argon2id$v=19$m=..,t=..,p=..$salt$hash``,
with Django's parameters and its 22-character salt); Django's default ``pbkdf2_sha256`` hashes verify
with the standard library and are reported for an upgrade. A hash starting with ``!`` is Django's
unusable password: nothing matches it.

Hashing is slow on purpose (about a tenth of a second), so the async functions run it in a thread
and the event loop keeps serving other requests. An unknown user is checked against a dummy hash
made the same way, so a wrong password, an unknown user and a disabled user cost the same time.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import hmac
import secrets
import string

import argon2
import msgspec
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ARGON2 = "argon2"
PBKDF2_SHA256 = "pbkdf2_sha256"
UNUSABLE_PREFIX = "!"
_SALT_CHARS = string.ascii_letters + string.digits
# Django 5's Argon2PasswordHasher: RFC 9106's first recommendation, 32-byte hash, 16-byte salt length.
_PARAMETERS = argon2.Parameters(
    type=argon2.low_level.Type.ID,
    version=argon2.low_level.ARGON2_VERSION,
    salt_len=argon2.DEFAULT_RANDOM_SALT_LENGTH,
    hash_len=argon2.DEFAULT_HASH_LENGTH,
    time_cost=2,
    memory_cost=102_400,
    parallelism=8,
)
_VERIFIER = argon2.PasswordHasher.from_parameters(_PARAMETERS)


class Checked(msgspec.Struct, frozen=True):
    """``ok``: the password matches; ``upgrade``: the stored hash should be replaced by a new one."""

    ok: bool
    upgrade: bool = False


def _random_string(length: int) -> str:
    return "".join(secrets.choice(_SALT_CHARS) for _ in range(length))


def unusable_password() -> str:
    """Django's ``make_password(None)``: ``!`` and 40 random characters."""
    return UNUSABLE_PREFIX + _random_string(40)


def make_password(password: str) -> str:
    """An Argon2id hash exactly as Django's ``Argon2PasswordHasher.encode`` writes it (blocking)."""
    salt = _random_string(22)  # Django's salt: 128 bits of entropy in letters and digits
    encoded = argon2.low_level.hash_secret(
        password.encode(),
        salt.encode(),
        time_cost=_PARAMETERS.time_cost,
        memory_cost=_PARAMETERS.memory_cost,
        parallelism=_PARAMETERS.parallelism,
        hash_len=_PARAMETERS.hash_len,
        type=_PARAMETERS.type,
    )
    return ARGON2 + encoded.decode("ascii")


def _check_argon2(password: str, encoded: str) -> Checked:
    phc = encoded[len(ARGON2) :]
    try:
        _VERIFIER.verify(phc, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return Checked(ok=False)
    # As Django's ``must_update``: other cost parameters mean a new hash (the salt's length does not).
    stored = dataclasses.replace(argon2.extract_parameters(phc), salt_len=_PARAMETERS.salt_len)
    return Checked(ok=True, upgrade=stored != _PARAMETERS)


def _check_pbkdf2(password: str, encoded: str) -> Checked:
    try:
        _algorithm, iterations, salt, expected = encoded.split("$", 3)
        rounds = int(iterations)
    except ValueError:
        return Checked(ok=False)
    if rounds < 1:
        return Checked(ok=False)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds, dklen=32)
    actual = base64.b64encode(digest).decode("ascii")
    return Checked(ok=hmac.compare_digest(actual.encode(), expected.encode()), upgrade=True)


def check_password(password: str, encoded: str) -> Checked:
    """Does ``password`` match the Django-format hash ``encoded``? (blocking)"""
    algorithm = encoded.partition("$")[0]
    if algorithm == ARGON2:
        return _check_argon2(password, encoded)
    if algorithm == PBKDF2_SHA256:
        return _check_pbkdf2(password, encoded)
    return Checked(ok=False)


@functools.cache
def _dummy_hash() -> str:
    return make_password(_random_string(16))


def _check_or_dummy(password: str, encoded: str | None) -> Checked:
    if not encoded or encoded.startswith(UNUSABLE_PREFIX):
        check_password(password, _dummy_hash())
        return Checked(ok=False)
    return check_password(password, encoded)


async def hash_password(password: str) -> str:
    """``make_password`` in a worker thread."""
    return await asyncio.to_thread(make_password, password)


async def verify_password(password: str, encoded: str | None) -> Checked:
    """``check_password`` in a worker thread; with no usable hash (unknown user) a dummy one takes the time."""
    return await asyncio.to_thread(_check_or_dummy, password, encoded)
