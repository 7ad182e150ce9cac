"""The original Luffy tables as the original Django project defined them (see original-schema.md).

Image and file fields are ``CharField`` of the same length: the same column, without Pillow.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class BaseModel(models.Model):
    orders = models.IntegerField(default=0)
    is_show = models.BooleanField(default=True)
    is_delete = models.BooleanField(default=False)
    created_time = models.DateTimeField(auto_now_add=True)
    updated_time = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Banner(BaseModel):
    title = models.CharField(max_length=16, unique=True)
    image = models.CharField(max_length=255)
    link = models.CharField(max_length=64)
    info = models.TextField()

    class Meta:
        db_table = "luffy_banner"


class Teacher(BaseModel):
    name = models.CharField(max_length=32)
    role = models.SmallIntegerField(choices=((0, "讲师"), (1, "导师"), (2, "班主任")), default=0)
    title = models.CharField(max_length=64)
    signature = models.CharField(max_length=255, null=True, blank=True)
    image = models.CharField(max_length=100, null=True)
    brief = models.TextField()

    class Meta:
        db_table = "luffy_teacher"


class CourseCategory(BaseModel):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        db_table = "luffy_course_category"


class Course(BaseModel):
    name = models.CharField(max_length=128)
    course_img = models.CharField(max_length=255, null=True, blank=True)
    course_type = models.SmallIntegerField(choices=((0, "付费"), (1, "VIP专享")), default=0)
    brief = models.TextField(null=True, blank=True)
    level = models.SmallIntegerField(choices=((0, "初级"), (1, "中级"), (2, "高级")), default=0)
    pub_date = models.DateField(auto_now_add=True)
    period = models.IntegerField(default=7)
    attachment_path = models.CharField(max_length=128, null=True, blank=True)
    status = models.SmallIntegerField(choices=((0, "上线"), (1, "下线"), (2, "预上线")), default=0)
    students = models.IntegerField(default=0)
    sections = models.IntegerField(default=0)
    pub_sections = models.IntegerField(default=0)
    price = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    course_category = models.ForeignKey(
        CourseCategory, on_delete=models.SET_NULL, db_constraint=False, null=True, blank=True
    )
    teacher = models.ForeignKey(Teacher, on_delete=models.DO_NOTHING, null=True, blank=True)

    class Meta:
        db_table = "luffy_course"


class CourseChapter(BaseModel):
    course = models.ForeignKey(Course, related_name="coursechapters", on_delete=models.CASCADE)
    chapter = models.SmallIntegerField(default=1)
    name = models.CharField(max_length=128)
    summary = models.TextField(null=True, blank=True)
    pub_date = models.DateField(auto_now_add=True)

    class Meta:
        db_table = "luffy_course_chapter"


class CourseSection(BaseModel):
    chapter = models.ForeignKey(CourseChapter, related_name="coursesections", on_delete=models.CASCADE)
    name = models.CharField(max_length=128)
    section_type = models.SmallIntegerField(choices=((0, "文档"), (1, "练习"), (2, "视频")), default=2)
    section_link = models.CharField(max_length=255, null=True, blank=True)
    duration = models.CharField(max_length=32, null=True, blank=True)
    pub_date = models.DateTimeField(auto_now_add=True)
    free_trail = models.BooleanField(default=False)

    class Meta:
        db_table = "luffy_course_section"


class UserInfo(AbstractUser):
    mobile = models.CharField(max_length=11, unique=True)
    icon = models.CharField(max_length=100, default="icon/default.png")

    class Meta:
        db_table = "luffy_user"


class Order(models.Model):
    subject = models.CharField(max_length=150)
    total_amount = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    out_trade_no = models.CharField(max_length=64, unique=True)
    trade_no = models.CharField(max_length=64, null=True)
    order_status = models.SmallIntegerField(
        choices=((0, "未支付"), (1, "已支付"), (2, "已取消"), (3, "超时取消")), default=0
    )
    pay_type = models.SmallIntegerField(choices=((1, "支付宝"), (2, "微信支付")), default=1)
    pay_time = models.DateTimeField(null=True)
    created_time = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(UserInfo, related_name="order_user", on_delete=models.DO_NOTHING, db_constraint=False)

    class Meta:
        db_table = "luffy_order"


class OrderDetail(models.Model):
    order = models.ForeignKey(Order, related_name="order_courses", on_delete=models.CASCADE, db_constraint=False)
    course = models.ForeignKey(Course, on_delete=models.DO_NOTHING, db_constraint=False)
    price = models.DecimalField(max_digits=6, decimal_places=2)
    real_price = models.DecimalField(max_digits=6, decimal_places=2)

    class Meta:
        db_table = "luffy_order_detail"
