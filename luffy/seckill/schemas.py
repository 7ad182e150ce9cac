"""What the seckill endpoints read and answer (the contract's codes 100/101/102/103)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from luffy.responses import Envelope

# The task's outcome, as stored in its result and reported as ``reason`` when it is not an order.
ORDERED = "ordered"
SOLD_OUT = "sold_out"
DUPLICATE = "duplicate"
NOT_ACTIVE = "not_active"
FailureReason = Literal["sold_out", "duplicate", "not_active"]
FAILURE_REASONS = (SOLD_OUT, DUPLICATE, NOT_ACTIVE)
# ``get_result`` also reports a task that failed for good (the page stops polling only on 100/101).
PageFailureReason = Literal["sold_out", "duplicate", "not_active", "failed"]

MAX_GOODS_ID = 2**63 - 1
TASK_ID_MAX_LENGTH = 64


class PurchaseRequest(msgspec.Struct):
    """``{"name": ...}`` (as the original front end sends) or ``{"goods_id": ...}``."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    goods_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_GOODS_ID)] | None = None


class QueuedReply(Envelope, kw_only=True):
    """The request holds a unit and its order task is enqueued; poll with ``task_id``."""

    msg: str = "您正在排队"
    task_id: str


class OrderedReply(Envelope, kw_only=True):
    msg: str = "秒杀成功"
    order_no: str


class FailedReply(Envelope, kw_only=True):
    code: int = 101
    msg: str = "秒杀失败"
    reason: FailureReason


class NotSucceededReply(Envelope, kw_only=True):
    """Unknown or expired task id, another user's task, or a task that failed."""

    code: int = 102
    msg: str = "没成功"


class WaitingReply(Envelope, kw_only=True):
    code: int = 103
    msg: str = "还在排队"


class PageQueuedReply(Envelope, kw_only=True):
    """``GET user/seckill/``: the original ``Seckill.vue`` reads the task id from ``id``."""

    msg: str = "正在排队"
    id: str


class PageFailedReply(Envelope, kw_only=True):
    code: int = 101
    msg: str = "秒杀失败"
    reason: PageFailureReason


class PageWaitingReply(Envelope, kw_only=True):
    """``get_result``: queued, running or unknown; ``Seckill.vue`` polls again on 102."""

    code: int = 102
    msg: str = "还在排队"


class PurchaseOutcome(msgspec.Struct, frozen=True):
    """What an order task concluded; stored as its result (a plain dict on the wire)."""

    outcome: str
    order_no: str | None = None

    def as_result(self) -> dict[str, str | None]:
        return {"outcome": self.outcome, "order_no": self.order_no}
