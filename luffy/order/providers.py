"""Payment providers: Alipay's page payment through python-alipay-sdk, or Luffy's offline simulator.

One class serves both. An ``AliPay`` client of the SDK signs the pay request with the app's private
key and checks notifications with "Alipay's" public key; only the keys and the gateway differ. For
the real gateway they come from the settings. The simulator generates two key pairs once into the
data dir (the app's, and its stand-in Alipay's) and its gateway is Luffy's own cashier page
(``luffy.order.simulator``), so a simulated notification is verified by exactly the code that
verifies Alipay's.
"""

from __future__ import annotations

import datetime
import os
import secrets
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from luffy.settings import Settings

# Alipay reads and writes times in Beijing time; China has no daylight saving, so a fixed offset is exact.
BEIJING = datetime.timezone(datetime.timedelta(hours=8), "CST")
ALIPAY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PAGE_PAY = "alipay.trade.page.pay"
PRODUCT_CODE = "FAST_INSTANT_TRADE_PAY"
SIGN_TYPE = "RSA2"
SIMULATOR_PATH = "/pay/simulator/"
SIMULATOR_APP_ID = "luffy-simulator"
SIMULATOR_APP_KEY_FILE = "simulator_app_key.pem"
SIMULATOR_ALIPAY_KEY_FILE = "simulator_alipay_key.pem"
KEY_BITS = 2048


def alipay_time(moment: datetime.datetime) -> str:
    return moment.astimezone(BEIJING).strftime(ALIPAY_TIME_FORMAT)


def parse_alipay_time(text: str | None) -> datetime.datetime | None:
    """A time as Alipay writes it (``2026-11-30 08:00:00``, Beijing time), or ``None`` when it is not one."""
    if not text or len(text) != len("2026-11-30 08:00:00"):
        return None
    try:
        return datetime.datetime.strptime(text, ALIPAY_TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        return None


class SimulatorKeys(msgspec.Struct, frozen=True):
    """The simulator's two private keys (PEM): the app's, and the stand-in Alipay's."""

    app_private_key: str
    alipay_private_key: str


def public_key_of(private_key_pem: str) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _key_file(path: Path) -> str:
    """The private key in ``path``, generated first when there is none.

    The key is written to a private temporary file and hard-linked into place, so processes that
    start together all end up with the one key that won, never with a half-written file.
    """
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text(encoding="ascii")


def load_simulator_keys(data_dir: Path) -> SimulatorKeys:
    """The simulator's key pairs, generated once into ``data_dir`` (mode 0600) and kept."""
    return SimulatorKeys(
        app_private_key=_key_file(data_dir / SIMULATOR_APP_KEY_FILE),
        alipay_private_key=_key_file(data_dir / SIMULATOR_ALIPAY_KEY_FILE),
    )


class PaymentProvider:
    """Signs pay requests as the app and verifies notifications as coming from Alipay (or the simulator)."""

    def __init__(
        self,
        *,
        name: str,
        app_id: str,
        app_private_key: str,
        alipay_public_key: str,
        gateway: str,
        notify_url: str,
        return_url: str,
    ) -> None:
        self.name = name
        self.app_id = app_id
        self.gateway = gateway
        self.notify_url = notify_url
        self.return_url = return_url
        # Imported here, on the first payment: the SDK (and the crypto library under it) is ~5 MiB of
        # memory in every API worker, most of which never takes a payment.
        from alipay import AliPay

        self._client = AliPay(
            appid=app_id,
            app_private_key_string=app_private_key,
            alipay_public_key_string=alipay_public_key,
            sign_type=SIGN_TYPE,
        )

    def pay_url(
        self,
        *,
        out_trade_no: str,
        total_amount: Decimal,
        subject: str,
        expires_at: datetime.datetime,
        now: datetime.datetime,
    ) -> str:
        """The gateway URL of an ``alipay.trade.page.pay`` request, RSA2-signed with the app's key.

        ``time_expire`` makes Alipay close the trade when Luffy times the order out, so a buyer
        cannot start paying an order that is already closed.
        """
        biz_content = {
            "out_trade_no": out_trade_no,
            "total_amount": f"{total_amount:.2f}",
            "subject": subject,
            "product_code": PRODUCT_CODE,
            "time_expire": alipay_time(expires_at),
        }
        data = self._client.build_body(
            PAGE_PAY,
            biz_content,
            return_url=self.return_url,
            notify_url=self.notify_url,
            timestamp=alipay_time(now),
        )
        return f"{self.gateway}?{self._client.sign_data(data)}"

    def verify(self, params: Mapping[str, str]) -> bool:
        """Alipay's notification check: RSA2 over the sorted parameters without ``sign`` and ``sign_type``."""
        signature = params.get("sign")
        if not signature or params.get("sign_type") != SIGN_TYPE:
            return False
        unsigned = {key: value for key, value in params.items() if key != "sign"}
        from alipay.exceptions import AliPayException

        try:
            return self._client.verify(unsigned, signature)
        except (ValueError, TypeError, AliPayException):
            return False


def make_provider(settings: Settings, simulator_keys: SimulatorKeys | None = None) -> PaymentProvider:
    """The provider the settings choose; the simulator needs its keys (``load_simulator_keys``)."""
    if settings.payment_provider == "alipay":
        return PaymentProvider(
            name="alipay",
            app_id=settings.alipay_app_id,
            app_private_key=settings.alipay_app_private_key,
            alipay_public_key=settings.alipay_public_key,
            gateway=settings.alipay_gateway,
            notify_url=settings.pay_notify_url,
            return_url=settings.pay_return_url,
        )
    if simulator_keys is None:
        raise ValueError("the payment simulator needs its keys")
    return PaymentProvider(
        name="simulator",
        app_id=SIMULATOR_APP_ID,
        app_private_key=simulator_keys.app_private_key,
        alipay_public_key=public_key_of(simulator_keys.alipay_private_key),
        gateway=settings.backend_url + SIMULATOR_PATH,
        notify_url=settings.pay_notify_url,
        return_url=settings.pay_return_url,
    )
