"""The admin without a browser: who gets in, the session cookie, CSRF, and what the forms write.

On SQLite and PostgreSQL, embedded mode (no Redis). The browser test (test_admin_browser.py) drives
the same pages through chromium against a production server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from luffy.admin.uploads import MAX_IMAGE_BYTES
from luffy.admin.views.users import mask_codes
from luffy.app import create_app
from luffy.cache import make_redis
from luffy.course.models import CourseCategory
from luffy.db import make_sqlalchemy_config, session_scope
from luffy.order.models import Order, OrderDetail
from luffy.seckill.models import SeckillGoods
from luffy.seckill.reservations import RedisGoods, RedisReservations
from luffy.seckill.services import publish_goods
from luffy.user.models import User
from tests.conftest import truncate_all
from tests.support.admin_support import PLAIN, STAFF, log_in, make_users, page_token
from tests.support.seckill_support import create_goods

if TYPE_CHECKING:
    from litestar import Litestar

    from luffy.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

# Every page of every view, and the admin's own pages: none may answer without a staff session.
ADMIN_URLS = [
    "/admin/",
    *(
        f"/admin/{identity}/{page}"
        for identity in (
            "course-category",
            "course",
            "course-chapter",
            "course-section",
            "teacher",
            "banner",
            "seckill-goods",
            "seckill-order",
            "order",
            "order-detail",
            "user",
            "sms-log",
        )
        for page in ("list", "create", "details/1", "edit/1")
    ),
    "/admin/user/password?pk=1",
    "/admin/user/active?pks=1&active=0",
    "/admin/user/action/disable?pks=1",
]


@pytest.fixture
async def users(settings: Settings) -> dict[str, int]:
    return await make_users(settings)


async def _one_value(settings: Settings, statement: object) -> object:
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            return await session.scalar(statement)  # type: ignore[call-overload]
    finally:
        await config.get_engine().dispose()


async def test_every_admin_url_redirects_to_the_login_page_when_logged_out(
    client: AsyncTestClient[Litestar], users: dict[str, int]
) -> None:
    for url in ADMIN_URLS:
        response = await client.get(url, follow_redirects=False)
        assert response.status_code == 302, url
        assert response.headers["location"].endswith("/admin/login"), url


async def test_staff_log_in_and_get_an_httponly_strict_session_cookie(
    client: AsyncTestClient[Litestar], users: dict[str, int]
) -> None:
    response = await log_in(client, STAFF[0], STAFF[2])
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/")
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("luffy_admin=")
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/admin" in cookie
    page = await client.get("/admin/course/list")
    assert page.status_code == 200
    assert "课程" in page.text


async def test_a_user_who_is_not_staff_is_refused_with_the_right_password(
    client: AsyncTestClient[Litestar], users: dict[str, int]
) -> None:
    response = await log_in(client, PLAIN[0], PLAIN[2])
    assert response.status_code == 400
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 302


async def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    for _ in range(settings.login_max_failures):
        assert (await log_in(client, STAFF[0], "wrong-password-1")).status_code == 400
    # Locked: now even the right password is refused (the API's lockout, shared with password login).
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 400
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 302


async def test_a_staff_user_disabled_or_demoted_is_out_at_the_next_request(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            from luffy.user.services import set_user_active

            await set_user_active(session, users["staff"], False)
    finally:
        await config.get_engine().dispose()
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 302


async def test_a_form_post_without_the_csrf_token_is_refused(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    login = await client.post("/admin/login", data={"username": STAFF[0], "password": STAFF[2]}, follow_redirects=False)
    assert login.status_code == 403
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
    form = {"name": "无令牌分类", "orders": "1", "is_show": "y"}
    refused = await client.post("/admin/course-category/create", data=form, follow_redirects=False)
    assert refused.status_code == 403
    wrong = await client.post(
        "/admin/course-category/create", data={**form, "csrf_token": "forged"}, follow_redirects=False
    )
    assert wrong.status_code == 403
    assert await _one_value(settings, select(CourseCategory.id).where(CourseCategory.name == "无令牌分类")) is None

    token = page_token((await client.get("/admin/course-category/create")).text)
    accepted = await client.post(
        "/admin/course-category/create", data={**form, "csrf_token": token}, follow_redirects=False
    )
    assert accepted.status_code == 302
    assert await _one_value(settings, select(CourseCategory.id).where(CourseCategory.name == "无令牌分类")) is not None


async def test_deleting_a_category_only_marks_it_deleted(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
    token = page_token((await client.get("/admin/course-category/create")).text)
    await client.post("/admin/course-category/create", data={"name": "待删分类", "orders": "1", "csrf_token": token})
    category_id = await _one_value(settings, select(CourseCategory.id).where(CourseCategory.name == "待删分类"))
    no_token = await client.delete(f"/admin/course-category/delete?pks={category_id}")
    assert no_token.status_code == 403
    deleted = await client.delete(f"/admin/course-category/delete?pks={category_id}", headers={"X-CSRF-Token": token})
    assert deleted.status_code == 200
    assert await _one_value(settings, select(CourseCategory.is_delete).where(CourseCategory.id == category_id)) is True
    assert "待删分类" not in (await client.get("/admin/course-category/list")).text


async def test_the_user_pages_never_show_the_password_hash(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
    encoded = str(await _one_value(settings, select(User.password).where(User.id == users["plain"])))
    for url in ("/admin/user/list", f"/admin/user/details/{users['plain']}", f"/admin/user/edit/{users['plain']}"):
        page = await client.get(url)
        assert page.status_code == 200, url
        assert encoded not in page.text
        assert encoded.split("$")[-1] not in page.text


async def test_disable_and_set_password_act_through_the_user_services(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
    plain = users["plain"]
    confirm = await client.get(f"/admin/user/action/disable?pks={plain}")
    assert confirm.status_code == 200
    assert "确认禁用" in confirm.text
    assert await _one_value(settings, select(User.is_active).where(User.id == plain)) is True
    token = page_token(confirm.text)
    done = await client.post(f"/admin/user/active?active=0&pks={plain}", data={"csrf_token": token})
    assert done.status_code == 200
    assert await _one_value(settings, select(User.is_active).where(User.id == plain)) is False

    too_short = await client.post(f"/admin/user/password?pk={plain}", data={"csrf_token": token, "password": "x"})
    assert too_short.status_code == 400
    changed = await client.post(
        f"/admin/user/password?pk={plain}", data={"csrf_token": token, "password": "Brand-new-pass-9"}
    )
    assert changed.status_code == 200
    await client.post(f"/admin/user/active?active=1&pks={plain}", data={"csrf_token": token})
    login = await client.post("/api/v1/user/login", json={"username": PLAIN[0], "password": "Brand-new-pass-9"})
    assert login.status_code == 200, login.text


async def test_an_upload_that_is_not_an_image_or_too_large_is_refused(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
    token = page_token((await client.get("/admin/teacher/create")).text)
    form = {"name": "张老师", "role": "0", "title": "讲师", "brief": "简介", "orders": "1", "csrf_token": token}
    script = await client.post(
        "/admin/teacher/create", data=form, files={"image": ("face.png", b"<script>alert(1)</script>", "image/png")}
    )
    assert script.status_code == 400
    assert "只接受" in script.text
    huge = await client.post(
        "/admin/teacher/create", data=form, files={"image": ("big.png", PNG + b"\x00" * MAX_IMAGE_BYTES, "image/png")}
    )
    assert huge.status_code in (400, 413)
    assert not any(settings.media_root.glob("teacher/*"))

    fine = await client.post(
        "/admin/teacher/create",
        data=form,
        files={"image": ("../../etc/passwd.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert fine.status_code == 302
    (stored,) = settings.media_root.glob("teacher/*")
    assert stored.suffix == ".png"
    assert stored.read_bytes() == PNG
    served = await client.get(f"/media/teacher/{stored.name}")
    assert served.status_code == 200
    assert served.content == PNG


def test_the_sms_log_masks_codes_but_keeps_the_mobile() -> None:
    assert mask_codes("您的验证码是 482913，5分钟内有效") == "您的验证码是 ******，5分钟内有效"
    assert mask_codes("13800000001 code 1234") == "13800000001 code ****"
    assert mask_codes(None) == ""


async def test_flash_sale_stock_cannot_go_below_the_units_reserved_in_redis(
    postgres_url: str, redis_url: str, make_settings: Callable[..., Settings]
) -> None:
    await truncate_all(postgres_url)
    settings = make_settings(postgres_url, redis_url)
    redis = make_redis(settings)
    await redis.flushdb()
    await make_users(settings)
    config = make_sqlalchemy_config(settings)
    reservations = RedisReservations(redis, owner_ttl_seconds=60)
    try:
        goods_id = await create_goods(config, name="限量帽子", stock=5)
        async with session_scope(config) as session:
            await publish_goods(session, reservations, goods_ids=[goods_id])
        await reservations.mark_loaded(time.time())
        for user_id in (101, 102, 103):
            await reservations.admit(
                name=None, goods_id=goods_id, user_id=user_id, task_id=f"t{user_id}", now=time.time()
            )

        async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
            assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
            token = page_token((await client.get(f"/admin/seckill-goods/edit/{goods_id}")).text)
            form = {"price": "99.00", "start_time": "2020-01-01 00:00:00", "end_time": "", "csrf_token": token}
            below = await client.post(f"/admin/seckill-goods/edit/{goods_id}", data={**form, "stock": "2"})
            assert below.status_code == 400
            assert "3 件" in below.text
            assert (await reservations.state([goods_id]))[goods_id] == RedisGoods(stock=2, pending=3, buyers=3)

            enough = await client.post(
                f"/admin/seckill-goods/edit/{goods_id}", data={**form, "stock": "4"}, follow_redirects=False
            )
            assert enough.status_code == 302
        # Redis has it at once: 4 left in the database = 1 reservable + 3 reserved.
        assert (await reservations.state([goods_id]))[goods_id] == RedisGoods(stock=1, pending=3, buyers=3)
        async with session_scope(config) as session:
            assert await session.scalar(select(SeckillGoods.stock).where(SeckillGoods.id == goods_id)) == 4
    finally:
        await redis.flushdb()
        await redis.aclose()
        await config.get_engine().dispose()


async def test_a_user_icon_uploaded_in_the_edit_form_is_stored_and_a_later_edit_keeps_it(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
    url = f"/admin/user/edit/{users['plain']}"
    token = page_token((await client.get(url)).text)
    form = {"first_name": "小", "last_name": "王", "save": "Save", "csrf_token": token}
    uploaded = await client.post(url, data=form, files={"icon": ("me.png", PNG, "image/png")}, follow_redirects=False)
    assert uploaded.status_code == 302
    icon = str(await _one_value(settings, select(User.icon).where(User.id == users["plain"])))
    assert re.fullmatch(r"icon/[0-9a-f]{32}\.png", icon)
    assert (settings.media_root / icon).read_bytes() == PNG

    kept = await client.post(
        url, data={**form, "first_name": "大"}, files={"icon": ("", b"", "application/octet-stream")}
    )
    assert kept.status_code in (200, 302), kept.text[-600:]
    assert await _one_value(settings, select(User.icon).where(User.id == users["plain"])) == icon
    assert await _one_value(settings, select(User.first_name).where(User.id == users["plain"])) == "大"


async def test_course_and_flash_sale_orders_are_listed_but_cannot_be_changed(
    client: AsyncTestClient[Litestar], users: dict[str, int], settings: Settings
) -> None:
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            order = Order(
                subject="Python 入门", total_amount=Decimal("88.00"), out_trade_no="T20301", user_id=users["plain"]
            )
            session.add(order)
            await session.flush()
            session.add(
                OrderDetail(price=Decimal("88.00"), real_price=Decimal("88.00"), course_id=1, order_id=order.id)
            )
    finally:
        await config.get_engine().dispose()
    assert (await log_in(client, STAFF[0], STAFF[2])).status_code == 302
    listed = await client.get("/admin/order/list")
    assert "T20301" in listed.text
    assert "未支付" in listed.text
    assert "T20301" not in (await client.get("/admin/order/list?search=nothing-like-it")).text
    assert (await client.get("/admin/order-detail/list")).status_code == 200
    token = page_token(listed.text)
    for identity in ("order", "order-detail", "seckill-order", "sms-log"):
        assert (await client.get(f"/admin/{identity}/create")).status_code == 403, identity
        assert (await client.get(f"/admin/{identity}/edit/{order.id}")).status_code == 403, identity
        deleted = await client.delete(f"/admin/{identity}/delete?pks={order.id}", headers={"X-CSRF-Token": token})
        assert deleted.status_code == 403, identity
    assert await _one_value(settings, select(Order.out_trade_no).where(Order.id == order.id)) == "T20301"
