from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "publishing"

    def ready(self) -> None:
        from crm.signals import contacts_opted_out

        from . import receivers

        contacts_opted_out.connect(receivers.contacts_opted_out, dispatch_uid="publishing.contacts_opted_out")
