"""Flash-sale goods (through ``load_goods`` + ``publish_goods``, as ``luffy seckill load``) and their orders."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqladmin.filters import ForeignKeyFilter
from sqlalchemy import select, update
from starlette.requests import Request

from luffy.admin.site import AdminContext, admin_context
from luffy.admin.views.base import ReadOnlyView, SoftDeleteView, labels
from luffy.errors import InvalidInput, NotFound
from luffy.seckill.models import SeckillGoods, SeckillOrder
from luffy.seckill.services import SeckillError, load_goods, publish_goods

MENU = "秒杀"
GOODS_LABELS = labels(name="商品名称", price="秒杀价", stock="剩余库存", start_time="开始时间", end_time="结束时间")


def _utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    """A time typed in the form is UTC unless it names an offset (as ``luffy seckill load --start``)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


async def _refuse_below_pending(context: AdminContext, goods_id: int, stock: int) -> None:
    """Units reserved in Redis whose orders are still being written are sold: the stock cannot go below them."""
    reservations = context.reservations
    if reservations is None:
        return
    state = (await reservations.state([goods_id])).get(goods_id)
    if state is not None and stock < state.pending:
        raise InvalidInput(f"库存不能少于已售出、订单尚在写入的 {state.pending} 件")


class SeckillGoodsView(SoftDeleteView, model=SeckillGoods):
    name = "秒杀商品"
    name_plural = "秒杀商品"
    icon = "fa-solid fa-bolt"
    category = MENU
    column_list = [
        SeckillGoods.id,
        SeckillGoods.name,
        SeckillGoods.price,
        SeckillGoods.stock,
        SeckillGoods.start_time,
        SeckillGoods.end_time,
        SeckillGoods.is_show,
    ]
    column_labels = GOODS_LABELS
    column_searchable_list = [SeckillGoods.name]
    column_sortable_list = [SeckillGoods.id, SeckillGoods.stock, SeckillGoods.start_time]
    form_columns = [
        SeckillGoods.name,
        SeckillGoods.price,
        SeckillGoods.stock,
        SeckillGoods.start_time,
        SeckillGoods.end_time,
    ]
    form_edit_rules = ["price", "stock", "start_time", "end_time"]
    form_args = {"end_time": {"description": "留空表示不限结束时间；时间按 UTC 填写"}}

    async def _load(self, request: Request, name: str, data: dict[str, Any]) -> SeckillGoods:
        context = admin_context(request)
        stock = int(data["stock"])
        price = data.get("price")
        try:
            async with context.session() as session:
                existing = await session.scalar(select(SeckillGoods.id).where(SeckillGoods.name == name.strip()))
                if existing is not None:
                    await _refuse_below_pending(context, existing, stock)
                goods = await load_goods(
                    session,
                    name=name,
                    stock=stock,
                    price=None if price is None else Decimal(price).quantize(Decimal("0.01")),
                    start=_utc(data.get("start_time")),
                    end=_utc(data.get("end_time")),
                    open_ended=data.get("end_time") is None,
                )
        except SeckillError as exc:
            raise InvalidInput(str(exc)) from None
        if context.reservations is not None:
            async with context.session() as session:
                await publish_goods(session, context.reservations, goods_ids=[goods.id])
        return goods

    async def insert_model(self, request: Request, data: dict[str, Any]) -> SeckillGoods:
        return await self._load(request, str(data.get("name") or ""), data)

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> SeckillGoods:
        async with admin_context(request).session() as session:
            name = await session.scalar(select(SeckillGoods.name).where(SeckillGoods.id == int(pk)))
        if name is None:
            raise NotFound("没有这个秒杀商品")
        return await self._load(request, name, data)

    async def delete_model(self, request: Request, pk: Any) -> None:
        """Off sale: soft deleted in the database and gone from Redis, so no new purchase is admitted."""
        context = admin_context(request)
        async with context.session() as session:
            await session.execute(update(SeckillGoods).where(SeckillGoods.id == int(pk)).values(is_delete=True))
        if context.reservations is not None:
            await context.reservations.remove(int(pk))


class SeckillOrderView(ReadOnlyView, model=SeckillOrder):
    name = "秒杀订单"
    name_plural = "秒杀订单"
    icon = "fa-solid fa-receipt"
    category = MENU
    column_list = [
        SeckillOrder.id,
        SeckillOrder.order_no,
        SeckillOrder.user_id,
        SeckillOrder.goods_id,
        SeckillOrder.price,
        SeckillOrder.status,
        SeckillOrder.created_time,
    ]
    column_labels: ClassVar[dict[Any, str]] = {
        "id": "ID",
        "order_no": "订单号",
        "task_id": "任务号",
        "user_id": "用户ID",
        "goods_id": "商品ID",
        "price": "成交价",
        "status": "状态",
        "created_time": "下单时间",
        "updated_time": "更新时间",
    }
    column_searchable_list = [SeckillOrder.order_no]
    column_sortable_list = [SeckillOrder.id, SeckillOrder.created_time]
    column_default_sort = [(SeckillOrder.id, True)]
    column_filters = [ForeignKeyFilter(SeckillOrder.goods_id, SeckillGoods.name, title="商品")]
