"""Create (or refresh) the demo workspace, its users, and every app's demo data. Idempotent."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from aicmo.models import Membership, Role, Workspace

DEMO_APPS = ("gateway", "crm", "media", "publishing", "analytics")
DEMO_USERS = {
    "admin": Role.ADMIN,
    "marketer": Role.MARKETER,
    "reviewer": Role.REVIEWER,
    "viewer": Role.VIEWER,
}


class Command(BaseCommand):
    help = "Create the demo workspace with users per role and realistic demo data (dev/demo only)."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="aicmo-demo", help="Password for the demo users.")
        parser.add_argument("--force", action="store_true", help="Allow running outside AICMO_ENV=dev.")

    def handle(self, *args, password: str, force: bool, **options):
        if not (settings.DEV or settings.TESTING or force):
            raise CommandError(
                "seed_demo creates users with a known password; run it with AICMO_ENV=dev or --force."
            )
        User = get_user_model()
        with transaction.atomic():
            workspace, _ = Workspace.objects.get_or_create(slug="demo", defaults={"name": "Demo Marketing"})
            second, _ = Workspace.objects.get_or_create(
                slug="agency-client", defaults={"name": "Agency Client"}
            )
            users = {}
            for name, role in DEMO_USERS.items():
                user, created = User.objects.get_or_create(
                    username=f"demo-{name}" if name != "admin" else "admin",
                    defaults={"email": f"{name}@demo.aicmo.local", "is_staff": True},
                )
                if created:
                    user.set_password(password)
                    user.is_superuser = name == "admin"
                    user.save()
                Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
                users[name] = user
            Membership.objects.get_or_create(
                workspace=second, user=users["admin"], defaults={"role": Role.ADMIN}
            )
        for app in DEMO_APPS:
            if find_spec(f"{app}.demo") is None:
                continue
            self.stdout.write(f"Seeding {app} demo data…")
            import_module(f"{app}.demo").seed(workspace, users=users)
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(
            f"  Log in at http://127.0.0.1:8000/login/ as admin / {password}\n"
            f"  (also demo-marketer, demo-reviewer, demo-viewer with the same password; "
            f"passwords are set only when a user is first created)"
        )
