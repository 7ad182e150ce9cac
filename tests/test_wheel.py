"""The wheel is the product: built from this checkout, installed into a throwaway environment, run
from an empty directory, with no checkout in sight.

The environment gets the wheel's own dependencies at the locked versions, nothing else (no dev
tools, no checkout on ``sys.path``), so a dependency the wheel uses but does not declare shows here. Their
wheels are fetched (or, for an sdist-only release such as python-alipay-sdk, built) by pip, so from
whatever index pip is set up with, into pytest's cache directory, again only when
``requirements.lock`` or ``pyproject.toml`` change; uv then installs them offline in a second or two.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from uv import find_uv_bin

from tests.conftest import TEST_SECRET
from tests.support.processes import LuffyProcess, run_luffy, wait_until
from tests.support.services import free_port, throwaway_database

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parent.parent
LOCK = CHECKOUT / "requirements.lock"


@dataclass(frozen=True)
class Installed:
    luffy: tuple[str, ...]
    python: Path


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _wheelhouse(config: pytest.Config, wheel: Path) -> Path:
    """The wheel's dependencies at the locked versions, as wheels, fetched once per lock."""
    cache: pytest.Cache | None = getattr(config, "cache", None)  # None with -p no:cacheprovider
    wheelhouse = cache.mkdir("luffy-wheelhouse") if cache is not None else wheel.parent / "wheelhouse"
    stamp = wheelhouse / "stamp"
    digest = hashlib.sha256(LOCK.read_bytes() + (CHECKOUT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text() != digest:
        _run(
            sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
            "-c", LOCK, "-w", wheelhouse, wheel,
        )  # fmt: skip
        (wheelhouse / wheel.name).unlink()
        stamp.write_text(digest)
    return wheelhouse


@pytest.fixture(scope="module")
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """``luffy`` from a freshly built wheel, in a new virtual environment."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, CHECKOUT)
    (wheel,) = dist.glob("luffy-*.whl")
    wheelhouse = _wheelhouse(request.config, wheel)
    venv = root / "venv"
    uv = find_uv_bin()
    _run(uv, "venv", "-q", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(
        uv, "pip", "install", "-q", "--python", python, "--offline", "--no-index", "--find-links", wheelhouse,
        "-c", LOCK, wheel,
    )  # fmt: skip
    return Installed(luffy=(str(venv / "bin" / "luffy"),), python=python)


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ops"
    directory.mkdir()
    return directory


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Started:
    """Long-running ``luffy`` commands of one test, stopped (or killed) at the end."""

    def __init__(self, installed: Installed, cwd: Path) -> None:
        self.installed, self.cwd = installed, cwd
        self.processes: list[LuffyProcess] = []

    def start(self, env: dict[str, str], *args: str) -> LuffyProcess:
        log = self.cwd.parent / f"{len(self.processes)}-{args[0]}.log"
        process = LuffyProcess(env, args, log, luffy=self.installed.luffy, cwd=self.cwd)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.popen.poll() is None:
                process.send(signal.SIGTERM)
        for process in self.processes:
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill_all()


@pytest.fixture
def started(installed: Installed, empty_dir: Path) -> Iterator[Started]:
    processes = Started(installed, empty_dir)
    yield processes
    processes.stop()


def _migrate_seed_and_serve(started: Started, env: dict[str, str]) -> None:
    """``luffy db upgrade && luffy seed && luffy serve``, then the seeded banners, their images and the catalogue."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = env | {"LUFFY_BACKEND_URL": base}
    for command in (("db", "upgrade"), ("seed",)):
        done = run_luffy(env, *command, luffy=started.installed.luffy, cwd=started.cwd)
        assert done.returncode == 0, done.stdout + done.stderr
        if command == ("seed",):
            assert "9 media files copied" in done.stdout
    started.start(env, "serve", "--port", str(port))
    wait_until(lambda: _healthy(base), timeout=30, what="luffy serve from the wheel")
    banners = httpx.get(f"{base}/api/v1/home/banner/").json()["result"]
    assert [banner["title"] for banner in banners] == ["Python开发入门", "Linux运维精讲", "项目实战"]
    image = httpx.get(banners[0]["image"])
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
    assert httpx.get(f"{base}/api/v1/course/category/").json()["result"]


def test_the_wheel_carries_its_migrations_and_seeds_and_runs_without_a_checkout(
    installed: Installed, started: Started, empty_dir: Path
) -> None:
    where = _run(
        installed.python, "-c", "import luffy.paths as p; print(p.checkout_dir(), p.resource_dir('db'))", cwd=empty_dir
    )
    checkout, migrations = where.split()
    assert checkout == "None"
    assert Path(migrations).is_relative_to(installed.python.parent.parent)
    env = {"LUFFY_DATA_DIR": str(empty_dir / "var")}
    _migrate_seed_and_serve(started, env)
    revision = run_luffy(env, "db", "revision", "-m", "nope", luffy=installed.luffy, cwd=empty_dir)
    assert revision.returncode == 2
    assert "source checkout" in revision.stderr
    assert sorted(path.name for path in empty_dir.iterdir()) == ["var"]


def test_the_wheel_runs_on_postgresql_and_redis_with_worker_and_scheduler(
    started: Started, empty_dir: Path, postgres_admin: str, redis_url: str
) -> None:
    with throwaway_database(postgres_admin) as database_url:
        env = {
            "LUFFY_DATABASE_URL": database_url,
            "LUFFY_REDIS_URL": redis_url,
            "LUFFY_SECRET_KEY": TEST_SECRET,
            "LUFFY_DATA_DIR": str(empty_dir / "var"),
            "LUFFY_BANNER_REFRESH_SECONDS": "1",
            "LUFFY_SMS_PROVIDER": "console",
        }
        try:
            _migrate_seed_and_serve(started, env)
            worker = started.start(env, "worker", "--queue", "default")
            started.start(env, "scheduler").wait_for_log("scheduler leading", timeout=30)
            worker.wait_for_log("banner cache refreshed: 3 banners", timeout=30)
        finally:
            started.stop()
            redis.Redis.from_url(redis_url).flushdb()


def test_a_checkout_migrates_and_seeds_from_its_own_db_and_seeds() -> None:
    from luffy.paths import checkout_dir, resource_dir

    assert checkout_dir() == CHECKOUT
    assert resource_dir("db") == CHECKOUT / "db"
    assert resource_dir("seeds") == CHECKOUT / "seeds"


def test_db_revision_in_a_checkout_writes_into_its_db_versions(tmp_path: Path) -> None:
    versions = CHECKOUT / "db" / "versions"
    before = set(versions.glob("*.py"))
    env = {"LUFFY_DATA_DIR": str(tmp_path / "var")}
    try:
        done = run_luffy(env, "db", "revision", "-m", "written by the test suite", cwd=tmp_path)
        written = [path.read_text() for path in set(versions.glob("*.py")) - before]
    finally:
        for path in set(versions.glob("*.py")) - before:
            path.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(written) == 1
    assert "written by the test suite" in written[0]
