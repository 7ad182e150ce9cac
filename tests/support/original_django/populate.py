"""Fill a freshly migrated original database the way the original project did: ``create_user`` (real
Django password hashes), the admin's catalogue rows, a paid course order.

Run: ``ORIGINAL_DATABASE=... python -m tests.support.original_django.populate``.
"""

from __future__ import annotations

import os
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.original_django.settings")

import django

django.setup()

from django.utils import timezone  # noqa: E402

from tests.support.original_django.luffy_original import models  # noqa: E402

PASSWORDS = {"luffy": "original-pass-1", "zoro": "original-pass-2", "nami": "original-pass-3"}


def populate() -> None:
    luffy = models.UserInfo.objects.create_user(
        "luffy", email="luffy@example.com", password=PASSWORDS["luffy"], mobile="13800138000"
    )
    models.UserInfo.objects.create_user("zoro", password=PASSWORDS["zoro"], mobile="13900139000", icon="icon/zoro.png")
    models.UserInfo.objects.create_user("nami", password=PASSWORDS["nami"], mobile="13700137000", is_active=False)
    models.UserInfo.objects.create_superuser("admin", "admin@example.com", "admin-pass-0", mobile="13600136000")

    models.Banner.objects.create(title="轮播图1", image="banner/banner1.png", link="/free-course", info="免费课")
    category = models.CourseCategory.objects.create(name="Python", orders=1)
    teacher = models.Teacher.objects.create(
        name="Alex", role=1, title="教学总监", image="teacher/alex_icon.png", brief=""
    )
    course = models.Course.objects.create(
        name="Python开发21天入门",
        course_img="courses/alex_python.png",
        price=Decimal("99.00"),
        course_category=category,
        teacher=teacher,
        students=120,
        sections=2,
        pub_sections=2,
    )
    chapter = models.CourseChapter.objects.create(course=course, chapter=1, name="计算机原理", orders=1)
    models.CourseSection.objects.create(chapter=chapter, name="计算机原理上", orders=1, free_trail=True)

    order = models.Order.objects.create(
        subject="Python开发21天入门",
        total_amount=Decimal("99.00"),
        out_trade_no="4f1b8f5e-2d0c-4a4e-9f7e-1a2b3c4d5e6f",
        trade_no="2026113022001400001",
        order_status=1,
        pay_type=1,
        pay_time=timezone.now(),
        user=luffy,
    )
    models.OrderDetail.objects.create(order=order, course=course, price=Decimal("99.00"), real_price=Decimal("99.00"))


if __name__ == "__main__":
    populate()
