from django.apps import AppConfig


class RefairnConfig(AppConfig):
    name = "refairn"
    verbose_name = "Refairn"
