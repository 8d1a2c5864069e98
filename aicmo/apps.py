from django.apps import AppConfig


class AicmoConfig(AppConfig):
    name = "aicmo"
    verbose_name = "AICMO core"

    def ready(self) -> None:
        from aicmo.api import schema  # noqa: F401  (registers the OpenAPI auth extension)
