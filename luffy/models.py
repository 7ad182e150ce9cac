"""Every table, imported in one place for Alembic and for ``metadata``-wide operations."""

from luffy.course.models import Course, CourseCategory, CourseChapter, CourseSection, Teacher
from luffy.db import Base
from luffy.home.models import Banner
from luffy.order.models import Order, OrderDetail
from luffy.seckill.models import SeckillGoods, SeckillOrder
from luffy.user.models import SmsLog, User

metadata = Base.metadata

__all__ = [
    "Banner",
    "Course",
    "CourseCategory",
    "CourseChapter",
    "CourseSection",
    "Order",
    "OrderDetail",
    "SeckillGoods",
    "SeckillOrder",
    "SmsLog",
    "Teacher",
    "User",
    "metadata",
]
