"""What the admin's views share: soft delete over ``is_delete``, image uploads, read-only views."""

from __future__ import annotations

from typing import Any, ClassVar

from sqladmin import ModelView
from sqlalchemy import Select, update
from starlette.requests import Request
from wtforms import FileField, Form
from wtforms.validators import Optional

from luffy.admin.site import admin_context
from luffy.admin.uploads import is_upload, save_image

COMMON_LABELS = {
    "id": "ID",
    "orders": "排序",
    "is_show": "是否显示",
    "is_delete": "已删除",
    "created_time": "创建时间",
    "updated_time": "更新时间",
    "name": "名称",
}
# Columns an operator never types: set by the database, by the services or by soft delete.
MANAGED = ("is_delete", "created_time", "updated_time")


def labels(**extra: str) -> dict[Any, str]:
    return {**COMMON_LABELS, **extra}


IMAGE_HELP = "PNG、JPEG、GIF 或 WebP，不超过 2 MB；留空则不修改"


class ImageUploads(ModelView):
    """Image columns (``image_folders``: column → media folder) are file inputs; a file is stored, its path saved.

    The file input is optional: on an edit, no file keeps the image; a new row that needs one is
    refused by its service or by the database.
    """

    image_folders: ClassVar[dict[str, str]] = {}

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        form = await super().scaffold_form(rules)
        for column in self.image_folders:
            if hasattr(form, column):
                label = self._column_labels.get(column, column)
                setattr(form, column, FileField(label, validators=[Optional()], description=IMAGE_HELP))
        return form

    async def store_images(self, request: Request, data: dict[str, Any]) -> None:
        media_root = admin_context(request).settings.media_root
        for column, folder in self.image_folders.items():
            value = data.pop(column, None)
            if is_upload(value):
                data[column] = await save_image(value, media_root, folder)

    async def on_model_change(self, data: dict[str, Any], model: Any, is_created: bool, request: Request) -> None:
        await self.store_images(request, data)


class SoftDeleteView(ImageUploads):
    """Lists hide deleted rows and delete only sets ``is_delete``, as the original's ``BaseModel`` intends."""

    form_excluded_columns: ClassVar[list[Any]] = list(MANAGED)

    def list_query(self, request: Request) -> Select[Any]:
        model: Any = self.model
        return super().list_query(request).where(model.is_delete.is_(False))

    async def delete_model(self, request: Request, pk: Any) -> None:
        model: Any = self.model
        async with admin_context(request).session() as session:
            await session.execute(update(model).where(model.id == int(pk)).values(is_delete=True))


class ReadOnlyView(ModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_export = False
