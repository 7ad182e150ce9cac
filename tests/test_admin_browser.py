"""The admin in a real browser: Debian's chromium, driven by Playwright, against a production server.

``luffy serve`` runs on PostgreSQL and Redis (several-process shape: the session is a signed cookie,
flash-sale goods live in Redis). Each step checks its effect where the rest of Luffy sees it: the
public API, ``luffy seckill status``, ``/media/``. Screenshots of the main pages go to
``var/screenshots/`` (not committed) for a person to look at. No browser is ever downloaded: without
/usr/bin/chromium (``just services`` installs it) this test fails rather than skips.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from luffy.cache import make_redis
from luffy.settings import load_settings
from tests.conftest import truncate_all
from tests.support.admin_support import PLAIN, STAFF, make_users
from tests.support.processes import run_luffy
from tests.support.seckill_processes import Stack, production_env

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
# A 1x1 PNG: the upload must be a real image (the admin checks the bytes, not the name).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000003010100c9fe92ef0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed at /usr/bin/chromium: run `just services` (apt package chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def server(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = production_env(postgres_url, redis_url, tmp_path / "data")

    async def prepare() -> None:
        await truncate_all(postgres_url)
        settings = load_settings(env)
        redis = make_redis(settings)
        try:
            await redis.flushdb()  # the session's Redis: no earlier test's flash sale may linger
        finally:
            await redis.aclose()
        await make_users(settings)

    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, prepare()).result()
    (tmp_path / "logs").mkdir()
    stack = Stack(env, tmp_path / "logs")
    try:
        yield stack.start_api(), env
    finally:
        stack.stop_all()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def save(page: Page) -> None:
    page.click("input[type=submit][value=Save], button:has-text('Save')")


def pick(page: Page, field: str, label: str) -> None:
    """Choose an option of a select2 select by its visible text (select2 hides the real <select>)."""
    value = page.locator(f"select#{field} option", has_text=label).first.get_attribute("value")
    page.select_option(f"select#{field}", value=value, force=True)


def test_an_operator_runs_the_catalogue_banners_and_flash_sales_from_the_browser(
    browser: Browser, server: tuple[str, dict[str, str]]
) -> None:
    base, env = server
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        run_the_admin(page, context, base, env)
    except Exception:
        shot(page, "failure")
        raise
    finally:
        context.close()


def run_the_admin(page: Page, context: BrowserContext, base: str, env: dict[str, str]) -> None:
    api = httpx.Client(base_url=base, timeout=10)

    # Not staff: the right password is not enough.
    log_in(page, base, PLAIN[0], PLAIN[2])
    expect(page.locator(".invalid-feedback, .alert-danger").first).to_be_visible()
    assert page.url.endswith("/admin/login")
    shot(page, "01-login-refused")

    log_in(page, base, STAFF[0], STAFF[2])
    page.wait_for_url(f"{base}/admin/")
    (cookie,) = [c for c in context.cookies() if c["name"] == "luffy_admin"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"

    # A category, a course in it, a chapter of the course and a section of the chapter. The API's
    # catalogue cache is filled before the changes, so the replies below show that the admin clears it.
    assert "浏览器分类" not in [category["name"] for category in api.get("/api/v1/course/category/").json()["result"]]
    page.goto(f"{base}/admin/course-category/create")
    page.fill("#name", "浏览器分类")
    page.fill("#orders", "1")
    save(page)
    page.wait_for_url(re.compile(r".*/course-category/list"))

    page.goto(f"{base}/admin/course/create")
    page.fill("#name", "浏览器里建的课")
    pick(page, "course_category", "浏览器分类")
    page.fill("#brief", "operators enter courses here")
    page.fill("#price", "88.00")
    page.set_input_files("#course_img", files=[{"name": "cover.png", "mimeType": "image/png", "buffer": PNG}])
    shot(page, "02-course-form")
    save(page)
    page.wait_for_url(re.compile(r".*/course/list"))
    expect(page.locator("table")).to_contain_text("浏览器分类")
    shot(page, "03-course-list")

    page.goto(f"{base}/admin/course-chapter/create")
    pick(page, "course", "浏览器里建的课")
    page.fill("#chapter", "1")
    page.fill("#name", "第一章 入门")
    save(page)
    page.wait_for_url(re.compile(r".*/course-chapter/list"))
    (created,) = [
        item for item in api.get("/api/v1/course/actual/").json()["results"] if item["name"] == "浏览器里建的课"
    ]
    before_section = api.get("/api/v1/course/chapter/", params={"course": created["id"]}).json()
    assert [chapter["coursesections"] for chapter in before_section] == [[]]

    page.goto(f"{base}/admin/course-section/create")
    pick(page, "chapter", "第一章 入门")
    page.fill("#name", "1.1 你好")
    page.fill("#section_link", "https://example.invalid/1.mp4")
    save(page)
    page.wait_for_url(re.compile(r".*/course-section/list"))

    categories = api.get("/api/v1/course/category/").json()["result"]
    (category,) = [category for category in categories if category["name"] == "浏览器分类"]
    courses = api.get("/api/v1/course/actual/").json()
    (course,) = [item for item in courses["results"] if item["name"] == "浏览器里建的课"]
    assert course["price"] == "88.00"
    assert api.get(f"/api/v1/course/actual/{course['id']}/").json()["course_category"] == category["id"]
    assert re.search(r"/media/courses/[0-9a-f]{32}\.png$", course["course_img"])
    cover = api.get("/media/" + course["course_img"].split("/media/", 1)[1])
    assert cover.status_code == 200
    assert cover.content == PNG
    chapters = api.get("/api/v1/course/chapter/", params={"course": course["id"]}).json()
    assert [chapter["name"] for chapter in chapters] == ["第一章 入门"]
    assert [section["name"] for section in chapters[0]["coursesections"]] == ["1.1 你好"]

    # A banner with an uploaded image is on the home page at once; hidden, it is gone at once.
    page.goto(f"{base}/admin/banner/create")
    page.fill("#title", "浏览器轮播")
    page.set_input_files("#image", files=[{"name": "x.exe.png", "mimeType": "image/png", "buffer": PNG}])
    page.fill("#link", "/free-course")
    page.fill("#info", "from the admin")
    page.fill("#orders", "1")
    page.check("#is_show")
    save(page)
    page.wait_for_url(re.compile(r".*/banner/list"))
    shot(page, "04-banner-list")
    banners = api.get("/api/v1/home/banner/").json()["result"]
    (banner,) = [item for item in banners if item["title"] == "浏览器轮播"]
    media_path = "/media/" + banner["image"].split("/media/", 1)[1]
    assert re.fullmatch(r"/media/banner/[0-9a-f]{32}\.png", media_path)
    served = api.get(media_path)
    assert served.status_code == 200
    assert served.content == PNG

    page.goto(f"{base}/admin/banner/edit/{banner['id']}")
    page.uncheck("#is_show")
    save(page)
    page.wait_for_url(re.compile(r".*/banner/list"))
    assert "浏览器轮播" not in [item["title"] for item in api.get("/api/v1/home/banner/").json()["result"]]

    # Flash-sale goods: created and restocked in the browser; `luffy seckill status` agrees each time.
    page.goto(f"{base}/admin/seckill-goods/create")
    page.fill("#name", "浏览器秒杀")
    page.fill("#price", "9.90")
    page.fill("#stock", "10")
    # The start time is left at the form's default: now (UTC).
    save(page)
    page.wait_for_url(re.compile(r".*/seckill-goods/list"))
    status = run_luffy(env, "seckill", "status", "浏览器秒杀")
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"浏览器秒杀.*\b10\b.*\b10\b.*yes", status.stdout), status.stdout

    page.click("a[href*='/seckill-goods/edit/']")
    page.fill("#stock", "7")
    save(page)
    page.wait_for_url(re.compile(r".*/seckill-goods/list"))
    shot(page, "05-seckill-goods")
    status = run_luffy(env, "seckill", "status", "浏览器秒杀")
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"浏览器秒杀.*\b7\b.*\b7\b.*yes", status.stdout), status.stdout

    page.goto(f"{base}/admin/user/list")
    shot(page, "06-users")
    page.goto(f"{base}/admin/logout")
    page.goto(f"{base}/admin/course/list")
    assert page.url.endswith("/admin/login")
