from django.apps import AppConfig


class AicmoConfig(AppConfig):
    name = "aicmo"
    verbose_name = "AICMO core"
