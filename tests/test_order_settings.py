"""Payment settings: the simulator by default, Alipay keys as PEM, base64 or @path, one clear line when wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from luffy.settings import SettingsError, load_settings
from tests.support.order_support import ALIPAY_KEYS, APP_KEYS, alipay_env, key_pair


def _body(pem: str) -> str:
    """A key as Alipay's console shows it: the base64 body without the PEM lines."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def test_without_alipay_keys_payments_go_to_the_simulator(tmp_path: Path) -> None:
    settings = load_settings({"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_BACKEND_URL": "http://api.example:8000/"})
    assert settings.payment_provider == "simulator"
    assert settings.alipay_gateway == "https://openapi.alipay.com/gateway.do"
    assert settings.pay_return_url == "http://127.0.0.1:8080/pay/success"
    assert settings.pay_notify_url == "http://api.example:8000/api/v1/order/success/"
    assert settings.order_timeout_seconds == 900


def test_alipay_keys_switch_to_alipay_in_every_accepted_form(tmp_path: Path) -> None:
    app, alipay = key_pair(APP_KEYS), key_pair(ALIPAY_KEYS)
    (tmp_path / "app.pem").write_text(app.private_pem)
    forms = [
        alipay_env(),
        alipay_env(
            LUFFY_ALIPAY_APP_PRIVATE_KEY=app.private_pem.replace("\n", "\\n"),
            LUFFY_ALIPAY_PUBLIC_KEY=alipay.public_pem.replace("\n", "\\n"),
        ),
        alipay_env(
            LUFFY_ALIPAY_APP_PRIVATE_KEY=f"@{tmp_path / 'app.pem'}", LUFFY_ALIPAY_PUBLIC_KEY=_body(alipay.public_pem)
        ),
    ]
    loaded = [load_settings({"LUFFY_DATA_DIR": str(tmp_path), **env}) for env in forms]
    assert {settings.payment_provider for settings in loaded} == {"alipay"}
    assert len({settings.alipay_app_private_key for settings in loaded}) == 1
    assert len({settings.alipay_public_key for settings in loaded}) == 1
    assert loaded[0].alipay_public_key.startswith("-----BEGIN PUBLIC KEY-----")


def test_the_sandbox_is_a_gateway_setting_and_the_simulator_can_be_chosen_with_keys_set(tmp_path: Path) -> None:
    sandbox = "https://openapi-sandbox.dl.alipaydev.com/gateway.do"
    settings = load_settings({"LUFFY_DATA_DIR": str(tmp_path), **alipay_env(LUFFY_ALIPAY_GATEWAY=sandbox)})
    assert settings.alipay_gateway == sandbox
    chosen = load_settings({"LUFFY_DATA_DIR": str(tmp_path), **alipay_env(LUFFY_PAYMENT_PROVIDER="simulator")})
    assert chosen.payment_provider == "simulator"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LUFFY_PAYMENT_PROVIDER": "alipay"}, "LUFFY_ALIPAY_APP_ID"),
        ({"LUFFY_ALIPAY_APP_ID": "2021000000000001"}, "LUFFY_ALIPAY_APP_PRIVATE_KEY"),
        (alipay_env(LUFFY_ALIPAY_PUBLIC_KEY=""), "LUFFY_ALIPAY_PUBLIC_KEY"),
        ({"LUFFY_PAYMENT_PROVIDER": "wechat"}, "LUFFY_PAYMENT_PROVIDER"),
        (alipay_env(LUFFY_ALIPAY_APP_PRIVATE_KEY="not a key"), "LUFFY_ALIPAY_APP_PRIVATE_KEY"),
        (alipay_env(LUFFY_ALIPAY_APP_PRIVATE_KEY="@/no/such/key.pem"), "LUFFY_ALIPAY_APP_PRIVATE_KEY"),
        (alipay_env(LUFFY_ALIPAY_APP_PRIVATE_KEY=key_pair(APP_KEYS).public_pem), "LUFFY_ALIPAY_APP_PRIVATE_KEY"),
        (alipay_env(LUFFY_ALIPAY_PUBLIC_KEY=key_pair(ALIPAY_KEYS).private_pem), "LUFFY_ALIPAY_PUBLIC_KEY"),
        ({"LUFFY_ALIPAY_GATEWAY": "openapi.alipay.com"}, "LUFFY_ALIPAY_GATEWAY"),
        ({"LUFFY_PAY_RETURN_URL": "javascript:alert(1)"}, "LUFFY_PAY_RETURN_URL"),
        ({"LUFFY_PAY_NOTIFY_URL": "/api/v1/order/success/"}, "LUFFY_PAY_NOTIFY_URL"),
        ({"LUFFY_ORDER_TIMEOUT_SECONDS": "0"}, "LUFFY_ORDER_TIMEOUT_SECONDS"),
        ({"LUFFY_ORDER_SWEEP_SECONDS": "soon"}, "LUFFY_ORDER_SWEEP_SECONDS"),
    ],
)
def test_bad_payment_values_name_their_variable(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"LUFFY_DATA_DIR": str(tmp_path), **env})
    assert raised.value.variable == variable
    assert "PRIVATE KEY" not in str(raised.value)
    assert _body(key_pair(APP_KEYS).private_pem)[:40] not in str(raised.value)


def test_an_api_process_loads_the_alipay_sdk_only_when_it_makes_a_payment_provider(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from luffy.app import create_app\n"
        "from luffy.settings import load_settings\n"
        f"create_app(load_settings({{'LUFFY_DATA_DIR': {str(tmp_path)!r}}}))\n"
        "print('alipay' in sys.modules)\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "False", "~5 MiB of resident memory in every API worker"
