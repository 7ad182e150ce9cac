"""Catalogue views: categories, courses (with their chapters and sections one click away), teachers.

Every write clears the API's catalogue cache (``luffy.course.cache``) after its commit, so the
next page view shows it.
"""

from __future__ import annotations

import logging
from typing import Any

from markupsafe import Markup
from sqladmin.filters import BooleanFilter, ForeignKeyFilter, StaticValuesFilter
from starlette.requests import Request
from wtforms import SelectField

from luffy.admin.site import admin_context
from luffy.admin.views.base import MANAGED, SoftDeleteView, labels
from luffy.cache import CACHE_ERRORS
from luffy.course.models import Course, CourseCategory, CourseChapter, CourseSection, Teacher
from luffy.course.schemas import COURSE_TYPE_NAMES, LEVEL_NAMES, ROLE_NAMES, SECTION_TYPE_NAMES, STATUS_NAMES

MENU = "课程"
logger = logging.getLogger("luffy.admin")


def choice(names: dict[int, str], label: str) -> dict[str, Any]:
    return {"label": label, "choices": list(names.items()), "coerce": int}


def shown(names: dict[int, str], column: str) -> Any:
    return lambda model, _attribute: names.get(getattr(model, column), getattr(model, column))


def _link(url: str, text: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url, text)


class CatalogueView(SoftDeleteView):
    """A catalogue table: after a create, an edit (sqladmin calls the hook once committed) or a delete,
    the catalogue cache is cleared."""

    async def after_model_change(self, data: dict[str, Any], model: Any, is_created: bool, request: Request) -> None:
        await self.clear_catalogue_cache(request)

    async def delete_model(self, request: Request, pk: Any) -> None:
        await super().delete_model(request, pk)
        await self.clear_catalogue_cache(request)

    async def clear_catalogue_cache(self, request: Request) -> None:
        context = admin_context(request)
        try:
            await context.catalogue_cache.invalidate()
        except CACHE_ERRORS as exc:
            logger.warning(
                "%s saved, but the catalogue cache could not be cleared (%s); the API may show the old "
                "catalogue for up to %d s",
                self.name,
                type(exc).__name__,
                context.settings.catalogue_cache_seconds,
            )


class CategoryView(CatalogueView, model=CourseCategory):
    name = "课程分类"
    name_plural = "课程分类"
    icon = "fa-solid fa-folder"
    category = MENU
    column_list = [CourseCategory.id, CourseCategory.name, CourseCategory.orders, CourseCategory.is_show]
    column_labels = labels(name="分类名称")
    column_searchable_list = [CourseCategory.name]
    column_sortable_list = [CourseCategory.id, CourseCategory.orders]
    column_default_sort = [(CourseCategory.orders, False), (CourseCategory.id, False)]
    column_filters = [BooleanFilter(CourseCategory.is_show, title="是否显示")]


class CourseView(CatalogueView, model=Course):
    name = "课程"
    name_plural = "课程"
    icon = "fa-solid fa-book"
    category = MENU
    image_folders = {"course_img": "courses"}
    column_list = [
        Course.id,
        Course.name,
        Course.course_category,
        Course.teacher,
        Course.price,
        Course.level,
        Course.status,
        Course.students,
        Course.orders,
        Course.is_show,
    ]
    column_labels = labels(
        name="课程名称",
        course_img="封面图片",
        course_type="付费类型",
        brief="详情介绍",
        level="难度等级",
        pub_date="发布日期",
        period="建议学习周期(天)",
        attachment_path="课件路径",
        status="课程状态",
        students="学习人数",
        sections="总课时数量",
        pub_sections="课时更新数量",
        price="课程原价",
        teacher="授课老师",
        course_category="课程分类",
    )
    column_searchable_list = [Course.name, Course.brief]
    column_sortable_list = [Course.id, Course.orders, Course.price, Course.students]
    column_default_sort = [(Course.orders, False), (Course.id, False)]
    column_filters = [
        ForeignKeyFilter(Course.teacher_id, Teacher.name, title="授课老师"),
        StaticValuesFilter(Course.status, [(str(k), v) for k, v in STATUS_NAMES.items()], title="课程状态"),
        BooleanFilter(Course.is_show, title="是否显示"),
    ]
    column_formatters = {
        Course.name: lambda model, _a: (
            Markup("{} · ").format(model.name) + _link(f"/admin/course-chapter/list?course_id={model.id}", "章节")
        ),
        Course.course_category: lambda model, _a: model.course_category.name if model.course_category else "",
        Course.teacher: lambda model, _a: model.teacher.name if model.teacher else "",
        Course.level: shown(LEVEL_NAMES, "level"),
        Course.status: shown(STATUS_NAMES, "status"),
    }
    column_formatters_detail = {
        Course.name: lambda model, _a: (
            Markup("{} · ").format(model.name) + _link(f"/admin/course-chapter/list?course_id={model.id}", "查看章节")
        ),
        Course.course_category: lambda model, _a: model.course_category.name if model.course_category else "",
        Course.teacher: lambda model, _a: model.teacher.name if model.teacher else "",
    }
    # The category has no database foreign key, so sqladmin would also offer its id as a plain field
    # (and save it over the category chosen): the relationship field alone sets it.
    form_excluded_columns = [*MANAGED, "course_category_id"]
    form_overrides = {"course_type": SelectField, "level": SelectField, "status": SelectField}
    form_args = {
        "course_type": choice(COURSE_TYPE_NAMES, "付费类型"),
        "level": choice(LEVEL_NAMES, "难度等级"),
        "status": choice(STATUS_NAMES, "课程状态"),
    }


class ChapterView(CatalogueView, model=CourseChapter):
    name = "章节"
    name_plural = "课程章节"
    icon = "fa-solid fa-list"
    category = MENU
    column_list = [
        CourseChapter.id,
        CourseChapter.course,
        CourseChapter.chapter,
        CourseChapter.name,
        CourseChapter.orders,
        CourseChapter.is_show,
    ]
    column_labels = labels(course="课程", chapter="第几章", name="章节标题", summary="章节介绍", pub_date="发布日期")
    column_searchable_list = [CourseChapter.name]
    column_sortable_list = [CourseChapter.id, CourseChapter.chapter, CourseChapter.orders]
    column_default_sort = [(CourseChapter.course_id, False), (CourseChapter.chapter, False)]
    column_filters = [ForeignKeyFilter(CourseChapter.course_id, Course.name, title="课程")]
    column_formatters = {
        CourseChapter.course: lambda model, _a: model.course.name,
        CourseChapter.name: lambda model, _a: (
            Markup("{} · ").format(model.name) + _link(f"/admin/course-section/list?chapter_id={model.id}", "课时")
        ),
    }
    column_formatters_detail = {CourseChapter.course: lambda model, _a: model.course.name}


class SectionView(CatalogueView, model=CourseSection):
    name = "课时"
    name_plural = "课时"
    icon = "fa-solid fa-play"
    category = MENU
    column_list = [
        CourseSection.id,
        CourseSection.chapter,
        CourseSection.name,
        CourseSection.section_type,
        CourseSection.duration,
        CourseSection.free_trail,
        CourseSection.orders,
        CourseSection.is_show,
    ]
    column_labels = labels(
        chapter="章节",
        name="课时标题",
        section_type="课时种类",
        section_link="课时链接",
        duration="视频时长",
        pub_date="发布时间",
        free_trail="是否可试看",
    )
    column_searchable_list = [CourseSection.name]
    column_sortable_list = [CourseSection.id, CourseSection.orders]
    column_filters = [
        ForeignKeyFilter(CourseSection.chapter_id, CourseChapter.name, title="章节"),
        BooleanFilter(CourseSection.free_trail, title="是否可试看"),
    ]
    column_formatters = {
        CourseSection.chapter: lambda model, _a: model.chapter.name,
        CourseSection.section_type: shown(SECTION_TYPE_NAMES, "section_type"),
    }
    column_formatters_detail = {CourseSection.chapter: lambda model, _a: model.chapter.name}
    form_excluded_columns = [*MANAGED, "pub_date"]
    form_overrides = {"section_type": SelectField}
    form_args = {
        "section_type": choice(SECTION_TYPE_NAMES, "课时种类"),
    }


class TeacherView(CatalogueView, model=Teacher):
    name = "导师"
    name_plural = "导师"
    icon = "fa-solid fa-user-tie"
    category = MENU
    image_folders = {"image": "teacher"}
    column_list = [Teacher.id, Teacher.name, Teacher.role, Teacher.title, Teacher.orders, Teacher.is_show]
    column_labels = labels(
        name="导师名", role="导师身份", title="职位职称", signature="导师签名", image="导师封面", brief="导师描述"
    )
    column_searchable_list = [Teacher.name, Teacher.title]
    column_sortable_list = [Teacher.id, Teacher.orders]
    column_filters = [StaticValuesFilter(Teacher.role, [(str(k), v) for k, v in ROLE_NAMES.items()], title="导师身份")]
    column_formatters = {Teacher.role: shown(ROLE_NAMES, "role")}
    form_overrides = {"role": SelectField}
    form_args = {
        "role": choice(ROLE_NAMES, "导师身份"),
    }


__all__ = ["CategoryView", "ChapterView", "CourseView", "SectionView", "TeacherView"]
