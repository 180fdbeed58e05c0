from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class RefairnConfig(AppConfig):
    name = "refairn"
    verbose_name = "Refairn"


class RefairnAdminConfig(AdminConfig):
    """The Django admin, with Refairn's console landing page as its index."""

    default_site = "refairn.admin_site.RefairnAdminSite"
