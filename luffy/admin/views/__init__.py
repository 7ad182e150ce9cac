"""The admin's model views, one module per domain; ``VIEWS`` is the menu order."""

from __future__ import annotations

from luffy.admin.views.catalogue import CategoryView, ChapterView, CourseView, SectionView, TeacherView
from luffy.admin.views.home import BannerView
from luffy.admin.views.orders import OrderDetailView, OrderView
from luffy.admin.views.seckill import SeckillGoodsView, SeckillOrderView
from luffy.admin.views.users import SmsLogView, UserView

VIEWS = (
    CategoryView,
    CourseView,
    ChapterView,
    SectionView,
    TeacherView,
    BannerView,
    SeckillGoodsView,
    SeckillOrderView,
    OrderView,
    OrderDetailView,
    UserView,
    SmsLogView,
)
