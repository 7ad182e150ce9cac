"""The operators' web admin at ``/admin/``: sqladmin views over Luffy's models, mounted into Litestar.

Every write that has a rule goes through the same service the ``luffy`` CLI calls (banners, flash-sale
goods, users); the admin adds only login, CSRF, uploads and the views' labels.
"""
