"""The payment simulator's stand-in for Alipay: a cashier that checks a pay request and pays it.

It does what Alipay does for ``alipay.trade.page.pay``, with keys of its own
(``providers.load_simulator_keys``): it checks the request's RSA2 signature with the app's public
key, shows the order, and on 支付 sends the asynchronous notification to the request's
``notify_url`` (form-encoded, RSA2-signed with its private key, as Alipay signs: over the sorted
parameters without ``sign`` and ``sign_type``), then sends the browser to ``return_url`` with
Alipay's return parameters. Luffy verifies that notification with the code that verifies Alipay's.
"""

from __future__ import annotations

import binascii
import datetime
import secrets
import uuid
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import httpx
import msgspec

from luffy.order.providers import (
    BEIJING,
    PAGE_PAY,
    SIGN_TYPE,
    SimulatorKeys,
    alipay_time,
    parse_alipay_time,
    public_key_of,
)

NOTIFY_TIMEOUT_SECONDS = 10.0
SELLER_ID = "2088000000000000"
BUYER_ID = "2088000000000001"
REQUEST_FIELDS = (
    "app_id",
    "method",
    "charset",
    "sign_type",
    "timestamp",
    "version",
    "biz_content",
    "notify_url",
    "return_url",
    "sign",
)


class CashierRefusal(Exception):
    """The cashier will not pay this request; ``message`` says why (shown on the page)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class BizContent(msgspec.Struct, kw_only=True):
    out_trade_no: str
    total_amount: str
    subject: str
    product_code: str
    time_expire: str | None = None


class CashierOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A pay request the cashier accepted: what it shows, and where it notifies and returns."""

    out_trade_no: str
    total_amount: str
    subject: str
    expires_at: datetime.datetime | None
    notify_url: str
    return_url: str


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _amount(value: str) -> str | None:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        return None
    return value


class SimulatedAlipay:
    def __init__(self, keys: SimulatorKeys, *, app_id: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.app_id = app_id
        self.transport = transport
        # The SDK from Alipay's side: it signs with the stand-in Alipay's key and checks the app's signatures.
        # (Imported on first use, as in ``providers``: most API workers never load it.)
        from alipay import AliPay

        self._alipay = AliPay(
            appid=app_id,
            app_private_key_string=keys.alipay_private_key,
            alipay_public_key_string=public_key_of(keys.app_private_key),
            sign_type=SIGN_TYPE,
        )

    def read_request(self, pairs: list[tuple[str, str]], now: datetime.datetime) -> CashierOrder:
        """The order in a pay request, once its signature and parameters check out as Alipay would check them."""
        params = dict(pairs)
        if len(params) != len(pairs):
            raise CashierRefusal("请求参数重复")
        missing = [name for name in REQUEST_FIELDS if not params.get(name)]
        if missing:
            raise CashierRefusal(f"缺少参数 {', '.join(missing)}")
        if params["app_id"] != self.app_id or params["method"] != PAGE_PAY or params["sign_type"] != SIGN_TYPE:
            raise CashierRefusal("不是本收银台的支付请求")
        unsigned = "&".join(f"{key}={value}" for key, value in sorted(params.items()) if key != "sign")
        try:
            # A request's signature covers sign_type too, so the SDK's notification check (which drops it) cannot serve.
            valid = self._alipay._verify(unsigned, params["sign"])
        except (ValueError, TypeError, binascii.Error):
            valid = False
        if not valid:
            raise CashierRefusal("签名验证失败")
        try:
            biz = msgspec.json.decode(params["biz_content"], type=BizContent)
        except msgspec.DecodeError:
            raise CashierRefusal("biz_content 无效") from None
        amount = _amount(biz.total_amount)
        if amount is None or not _http_url(params["notify_url"]) or not _http_url(params["return_url"]):
            raise CashierRefusal("支付请求参数无效")
        expires_at = parse_alipay_time(biz.time_expire)
        if biz.time_expire is not None and expires_at is None:
            raise CashierRefusal("time_expire 无效")
        if expires_at is not None and now >= expires_at:
            raise CashierRefusal("交易已关闭：订单已超时")
        return CashierOrder(
            out_trade_no=biz.out_trade_no,
            total_amount=amount,
            subject=biz.subject,
            expires_at=expires_at,
            notify_url=params["notify_url"],
            return_url=params["return_url"],
        )

    def _signed(self, params: dict[str, str]) -> str:
        """Form-encoded ``params`` with Alipay's signature: over the sorted parameters, ``sign_type`` outside it."""
        return f"{self._alipay.sign_data(params)}&sign_type={SIGN_TYPE}"

    async def pay(self, order: CashierOrder, now: datetime.datetime) -> str:
        """Notify the merchant that ``order`` is paid; the URL the browser returns to once it said ``success``."""
        trade_no = f"{now.astimezone(BEIJING):%Y%m%d}22001{secrets.randbelow(10**15):015d}"
        when = alipay_time(now)
        notification = {
            "gmt_create": when,
            "gmt_payment": when,
            "notify_time": when,
            "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex,
            "charset": "utf-8",
            "version": "1.0",
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "seller_id": SELLER_ID,
            "buyer_id": BUYER_ID,
            "out_trade_no": order.out_trade_no,
            "trade_no": trade_no,
            "trade_status": "TRADE_SUCCESS",
            "subject": order.subject,
            "total_amount": order.total_amount,
            "receipt_amount": order.total_amount,
            "buyer_pay_amount": order.total_amount,
            "invoice_amount": order.total_amount,
            "point_amount": "0.00",
        }
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=NOTIFY_TIMEOUT_SECONDS) as client:
                reply = await client.post(
                    order.notify_url,
                    content=self._signed(notification).encode("ascii"),
                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                )
        except httpx.HTTPError as exc:
            raise CashierRefusal(f"无法通知商户 {order.notify_url}：{type(exc).__name__}", status=502) from None
        if reply.status_code != 200 or reply.text.strip() != "success":
            raise CashierRefusal(f"商户未确认支付通知（{reply.status_code} {reply.text[:40]!r}）", status=502)
        returned = {
            "charset": "utf-8",
            "method": "alipay.trade.page.pay.return",
            "version": "1.0",
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "seller_id": SELLER_ID,
            "out_trade_no": order.out_trade_no,
            "trade_no": trade_no,
            "total_amount": order.total_amount,
            "timestamp": when,
        }
        separator = "&" if urlsplit(order.return_url).query else "?"
        return f"{order.return_url}{separator}{self._signed(returned)}"
