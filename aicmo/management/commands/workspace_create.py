"""Operators create a workspace with its first admin (a fresh install has none; `/` answers "No workspace"
until one exists): `manage.py workspace_create "Acme Marketing" --admin ada [--slug acme] [--time-zone …]`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from aicmo.models import Workspace
from aicmo.timezones import workspace_time_zone_set, zone_clean
from aicmo.workspaces import workspace_create


class Command(BaseCommand):
    help = "Create a workspace and make an existing user its first admin (for operators with shell access)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the workspace's name, e.g. 'Acme Marketing'")
        parser.add_argument("--admin", required=True, help="username or email of its first admin")
        parser.add_argument("--slug", help="short name in URLs and commands (default: from the name)")
        parser.add_argument(
            "--time-zone", help="IANA zone, e.g. Europe/Berlin (default: the server's TIME_ZONE)"
        )

    def handle(self, *args, name, admin, slug=None, time_zone=None, **options):
        name = name.strip()
        if not name or len(name) > 120:
            raise CommandError("The name must be 1 to 120 characters.")
        slug = slugify(slug or name)[:60]
        if not slug:
            raise CommandError("Give a --slug of letters, digits or hyphens.")
        if Workspace.objects.filter(slug=slug).exists():
            raise CommandError(f"A workspace with the slug {slug!r} exists already; choose another --slug.")
        try:
            zone = zone_clean(time_zone) if time_zone else None
        except ValidationError as exc:
            raise CommandError(exc.message_dict["time_zone"][0]) from exc
        users = get_user_model().objects.filter(is_active=True)
        value = admin.strip()
        found = list(users.filter(username=value)[:1]) or list(users.filter(email__iexact=value)[:2])
        if len(found) != 1:
            what = "Several active users have" if found else "No active user has"
            raise CommandError(f"{what} the username or email {value!r} (create it with createsuperuser).")
        with transaction.atomic():
            ws = workspace_create(name=name, slug=slug, owner=found[0])
            if zone:
                ws = workspace_time_zone_set(workspace=ws, time_zone=zone, by=found[0])
        self.stdout.write(
            f"Created {ws.name} ({ws.slug}, {ws.time_zone}); {found[0].get_username()} is its admin."
        )
