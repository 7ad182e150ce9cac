"""The payment simulator: the original front end's buying flow on one machine, with no Alipay account.

create order → the cashier page (the pay URL) → 支付 → the simulator's signed notification pays
the order → the browser returns to the front end's pay page → the return check says paid. In
process (both databases), and over real HTTP with ``luffy serve`` in embedded mode and with
``luffy serve`` + ``luffy worker`` + ``luffy scheduler`` on PostgreSQL and Redis.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar

from luffy.app import create_app
from luffy.db import make_sqlalchemy_config
from luffy.order.providers import SIMULATOR_APP_ID, load_simulator_keys, public_key_of
from luffy.order.simulator import SimulatedAlipay
from luffy.settings import Settings, load_settings
from luffy.user.auth import issue_token, make_jwt_auth
from tests.conftest import TEST_SECRET, truncate_all
from tests.support.order_support import (
    FORM,
    KeyPair,
    alipay_env,
    create_courses,
    notification_params,
    orders,
    query_of,
    signed_notification,
    verifies,
)
from tests.support.processes import LuffyProcess
from tests.support.seckill_support import create_users, running
from tests.support.services import free_port
from tests.support.waiting import eventually

BUY = "/api/v1/order/alipay/"
CHECK = "/api/v1/order/success/"
RETURN_URL = "http://127.0.0.1:8080/pay/success"


def simulator_alipay_keys(data_dir: Path) -> KeyPair:
    """The simulator's stand-in Alipay key pair, read from where it was generated."""
    private = load_simulator_keys(data_dir).alipay_private_key
    return KeyPair(private_pem=private, public_pem=public_key_of(private))


async def buy(client: httpx.AsyncClient, token: str, course_id: int, total: str) -> str:
    reply = await client.post(
        BUY,
        json={"courses": [str(course_id)], "total_amount": total, "subject": "课程", "pay_type": 1},
        headers={"Authorization": f"jwt {token}"},  # as the original front end sends it
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["pay_url"]


async def pay_through_the_cashier(client: httpx.AsyncClient, pay_url: str) -> str:
    """What a browser does on the cashier page: load it, press 支付; the URL it is sent back to."""
    page = await client.get(pay_url)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    paid = await client.post(urlsplit(pay_url)._replace(path="", query="").geturl() + action)
    assert paid.status_code == 303, paid.text
    return paid.headers["location"]


def check_return(location: str, out_trade_no: str, alipay: KeyPair) -> dict[str, str]:
    """The return URL carries Alipay's return parameters, signed with the (simulated) Alipay key."""
    assert location.startswith(RETURN_URL + "?")
    params = query_of(location)
    assert params["out_trade_no"] == out_trade_no
    assert params["method"] == "alipay.trade.page.pay.return"
    assert params["trade_no"]
    assert params["timestamp"]
    signature = params.pop("sign")
    assert params.pop("sign_type") == "RSA2"
    assert verifies(alipay, params, signature)
    return params


# --- in process ---------------------------------------------------------------------------------------


class Simulated:
    def __init__(self, app: Litestar, client: httpx.AsyncClient, token: str, course: int) -> None:
        self.app = app
        self.client = client
        self.token = token
        self.course = course
        self.settings: Settings = app.state.settings
        self.config = app.state.sqlalchemy_config


@pytest.fixture
async def simulated(settings: Settings) -> AsyncIterator[Simulated]:
    app = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        # The cashier's notification reaches the app through the same in-process transport.
        app.state.cashier = SimulatedAlipay(
            load_simulator_keys(settings.data_dir), app_id=SIMULATOR_APP_ID, transport=transport
        )
        async with httpx.AsyncClient(transport=transport, base_url=settings.backend_url) as client:
            [user] = await create_users(app.state.sqlalchemy_config, 1)
            [course] = await create_courses(app.state.sqlalchemy_config, ("Python项目实战", "99.00", True))
            yield Simulated(app, client, issue_token(app.state.jwt_auth, user, str(user)), course)


async def test_the_simulator_is_the_default_and_its_cashier_pays_the_order(simulated: Simulated) -> None:
    assert simulated.settings.payment_provider == "simulator"
    pay_url = await buy(simulated.client, simulated.token, simulated.course, "99.00")
    assert pay_url.startswith("http://testserver.local/pay/simulator/?")
    out_trade_no = json.loads(query_of(pay_url)["biz_content"])["out_trade_no"]
    page = await simulated.client.get(pay_url)
    assert "Python项目实战" in page.text
    assert "99.00" in page.text
    assert out_trade_no in page.text
    location = await pay_through_the_cashier(simulated.client, pay_url)
    returned = check_return(location, out_trade_no, simulator_alipay_keys(simulated.settings.data_dir))
    [order] = await orders(simulated.config)
    assert (order.order_status, order.trade_no) == (1, returned["trade_no"])
    check = await simulated.client.get(CHECK + "?" + urlsplit(location).query)
    assert check.json() == {"code": 100, "msg": "支付成功"}


async def test_the_simulator_keys_are_generated_once_and_private(simulated: Simulated) -> None:
    await buy(simulated.client, simulated.token, simulated.course, "99.00")
    files = sorted(simulated.settings.data_dir.glob("simulator_*_key.pem"))
    assert [path.name for path in files] == ["simulator_alipay_key.pem", "simulator_app_key.pem"]
    assert all(path.stat().st_mode & 0o077 == 0 for path in files)
    before = [path.read_text() for path in files]
    assert load_simulator_keys(simulated.settings.data_dir).app_private_key == before[1]
    assert [path.read_text() for path in files] == before


async def test_a_notification_not_signed_by_the_simulator_is_refused(simulated: Simulated) -> None:
    pay_url = await buy(simulated.client, simulated.token, simulated.course, "99.00")
    out_trade_no = json.loads(query_of(pay_url)["biz_content"])["out_trade_no"]
    params = notification_params(out_trade_no, "99.00", app_id=SIMULATOR_APP_ID)
    forged = await simulated.client.post(CHECK, content=signed_notification(params), headers=FORM)
    assert forged.text == "failure"
    keys = simulator_alipay_keys(simulated.settings.data_dir)
    genuine = await simulated.client.post(CHECK, content=signed_notification(params, keys), headers=FORM)
    assert genuine.text == "success"


async def test_the_cashier_refuses_a_tampered_pay_url(simulated: Simulated) -> None:
    pay_url = await buy(simulated.client, simulated.token, simulated.course, "99.00")
    tampered = pay_url.replace("99.00", "0.01")
    assert tampered != pay_url
    for url in (tampered, pay_url + "&app_id=x", "http://testserver.local/pay/simulator/", pay_url + "%FF"):
        page = await simulated.client.get(url)
        assert page.status_code == 400, url
        assert page.headers["content-type"].startswith("text/html")
        assert (await simulated.client.post(url)).status_code == 400
    assert [order.order_status for order in await orders(simulated.config)] == [0]


async def test_the_cashier_refuses_an_order_past_its_time(
    clean_database: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(clean_database, LUFFY_ORDER_TIMEOUT_SECONDS="1")
    app = create_app(settings)
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.backend_url) as client,
    ):
        [user] = await create_users(app.state.sqlalchemy_config, 1)
        [course] = await create_courses(app.state.sqlalchemy_config, ("课", "9.90", True))
        pay_url = await buy(client, issue_token(app.state.jwt_auth, user, "u"), course, "9.90")

        async def refused() -> httpx.Response | None:
            reply = await client.get(pay_url)
            return reply if reply.status_code == 400 else None

        page = await eventually(refused, within=5, what="the cashier to refuse the expired order")
        assert "超时" in page.text


async def test_with_alipay_keys_there_is_no_cashier(
    clean_database: str, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(make_settings(clean_database, **alipay_env()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local") as client:
        assert (await client.get("/pay/simulator/")).status_code == 404


# --- real processes -----------------------------------------------------------------------------------


def start_api(env: dict[str, str], log_dir: Path) -> tuple[LuffyProcess, str]:
    """``luffy serve`` on a free port that is also its LUFFY_BACKEND_URL; its base URL once /health answers."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = LuffyProcess({**env, "LUFFY_BACKEND_URL": base_url}, ("serve", "--port", str(port)), log_dir / "api.log")
    process.wait_for_api(base_url)
    return process, base_url


async def whole_flow(env: dict[str, str], base_url: str, data_dir: Path) -> None:
    """The front end's buying flow against a running server; then a second order left to time out."""
    settings = load_settings({**env, "LUFFY_BACKEND_URL": base_url})
    config = make_sqlalchemy_config(settings)
    try:
        [user] = await create_users(config, 1)
        python, linux = await create_courses(config, ("Python项目实战", "99.00", True), ("Linux", "39.00", True))
        token = issue_token(make_jwt_auth(settings), user, str(user))
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
            pay_url = await buy(client, token, python, "99.00")
            assert pay_url.startswith(base_url + "/pay/simulator/?")
            out_trade_no = json.loads(query_of(pay_url)["biz_content"])["out_trade_no"]
            location = await pay_through_the_cashier(client, pay_url)
            check_return(location, out_trade_no, simulator_alipay_keys(data_dir))
            check = await client.get(CHECK + "?" + urlsplit(location).query)
            assert check.json() == {"code": 100, "msg": "支付成功"}
            mine = (await client.get("/api/v1/order/orders/", headers={"Authorization": f"Bearer {token}"})).json()
            assert [(item["out_trade_no"], item["order_status"]) for item in mine["results"]] == [(out_trade_no, 1)]

            late_url = await buy(client, token, linux, "39.00")
            late = json.loads(query_of(late_url)["biz_content"])["out_trade_no"]

            async def closed() -> bool:
                return (await orders(config))[-1].order_status == 3

            await eventually(closed, within=30, what="the scheduler to close the unpaid order")
            assert (await orders(config))[-1].out_trade_no == late
            params = notification_params(late, "39.00", app_id=SIMULATOR_APP_ID)
            reply = await client.post(
                CHECK, content=signed_notification(params, simulator_alipay_keys(data_dir)), headers=FORM
            )
            assert reply.text == "success"
            assert (await orders(config))[-1].order_status == 1
    finally:
        await config.get_engine().dispose()


@pytest.mark.slow
async def test_the_buying_flow_over_http_in_embedded_mode(sqlite_url: str, tmp_path: Path) -> None:
    await truncate_all(sqlite_url)
    data_dir = tmp_path / "data"
    env = {
        "LUFFY_DATABASE_URL": sqlite_url,
        "LUFFY_DATA_DIR": str(data_dir),
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_LOG_LEVEL": "WARNING",
        "LUFFY_ORDER_TIMEOUT_SECONDS": "3",
        "LUFFY_ORDER_SWEEP_SECONDS": "1",
    }
    api, base_url = start_api(env, tmp_path)
    try:
        await whole_flow(env, base_url, data_dir)
    finally:
        api.kill_all()


@pytest.mark.slow
async def test_the_buying_flow_over_http_in_production_mode(postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    await truncate_all(postgres_url)
    data_dir = tmp_path / "data"
    env = {
        "LUFFY_DATABASE_URL": postgres_url,
        "LUFFY_REDIS_URL": redis_url,
        "LUFFY_SMS_PROVIDER": "console",
        "LUFFY_DATA_DIR": str(data_dir),
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_LOG_LEVEL": "INFO",
        "LUFFY_ORDER_TIMEOUT_SECONDS": "3",
        "LUFFY_ORDER_SWEEP_SECONDS": "1",
    }
    worker = LuffyProcess(env, ("worker", "--queue", "default"), tmp_path / "worker.log")
    scheduler = LuffyProcess(env, ("scheduler",), tmp_path / "scheduler.log")
    api, base_url = start_api(env, tmp_path)
    try:
        scheduler.wait_for_log("scheduler leading")
        await whole_flow(env, base_url, data_dir)
        assert "closed 1 unpaid order(s)" in worker.log
    finally:
        for process in (api, worker, scheduler):
            process.kill_all()
