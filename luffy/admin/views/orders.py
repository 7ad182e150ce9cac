"""Course orders and their lines, read-only: payments change them (``luffy/order/services.py``), never an operator."""

from __future__ import annotations

from typing import Any, ClassVar

from sqladmin.filters import StaticValuesFilter

from luffy.admin.views.base import ReadOnlyView
from luffy.order.models import Order, OrderDetail, OrderStatus, PayType

MENU = "订单"
STATUS_NAMES = {
    OrderStatus.UNPAID: "未支付",
    OrderStatus.PAID: "已支付",
    OrderStatus.CANCELLED: "已取消",
    OrderStatus.TIMED_OUT: "超时取消",
}
PAY_TYPE_NAMES = {PayType.ALIPAY: "支付宝", PayType.WECHAT: "微信支付"}


class OrderView(ReadOnlyView, model=Order):
    name = "课程订单"
    name_plural = "课程订单"
    icon = "fa-solid fa-file-invoice"
    category = MENU
    column_list = [
        Order.id,
        Order.out_trade_no,
        Order.subject,
        Order.total_amount,
        Order.order_status,
        Order.pay_type,
        Order.user_id,
        Order.created_time,
        Order.pay_time,
    ]
    column_labels: ClassVar[dict[Any, str]] = {
        "id": "ID",
        "subject": "订单标题",
        "total_amount": "订单总价",
        "out_trade_no": "订单号",
        "trade_no": "流水号",
        "order_status": "订单状态",
        "pay_type": "支付方式",
        "pay_time": "支付时间",
        "created_time": "创建时间",
        "user_id": "用户ID",
    }
    column_searchable_list = [Order.out_trade_no, Order.trade_no, Order.subject]
    column_sortable_list = [Order.id, Order.created_time, Order.total_amount]
    column_default_sort = [(Order.id, True)]
    column_filters = [
        StaticValuesFilter(Order.order_status, [(str(int(k)), v) for k, v in STATUS_NAMES.items()], title="订单状态")
    ]
    column_formatters = {
        Order.order_status: lambda model, _a: STATUS_NAMES.get(model.order_status, model.order_status),
        Order.pay_type: lambda model, _a: PAY_TYPE_NAMES.get(model.pay_type, model.pay_type),
    }
    column_formatters_detail = column_formatters


class OrderDetailView(ReadOnlyView, model=OrderDetail):
    name = "订单明细"
    name_plural = "订单明细"
    icon = "fa-solid fa-list-ol"
    category = MENU
    column_list = [
        OrderDetail.id,
        OrderDetail.order_id,
        OrderDetail.course_id,
        OrderDetail.price,
        OrderDetail.real_price,
    ]
    column_labels: ClassVar[dict[Any, str]] = {
        "id": "ID",
        "order_id": "订单ID",
        "course_id": "课程ID",
        "price": "课程原价",
        "real_price": "课程实价",
    }
    column_searchable_list = [OrderDetail.order_id]
    column_default_sort = [(OrderDetail.id, True)]
