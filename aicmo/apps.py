from django.apps import AppConfig


class AicmoConfig(AppConfig):
    name = "aicmo"
    verbose_name = "AICMO core"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from aicmo.api import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from aicmo.timezones import session_zone_load

        user_logged_in.connect(session_zone_load, dispatch_uid="aicmo.timezones.session_zone_load")
