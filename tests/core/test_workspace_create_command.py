"""`manage.py workspace_create`: an operator's first workspace with its first admin, and clear refusals."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from aicmo.models import AuditEvent, Membership, Role, Workspace
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_creates_the_workspace_with_its_admin_who_can_then_sign_in(client, capsys):
    ada = UserFactory(username="ada", email="ada@example.com")
    call_command(
        "workspace_create", "Acme Marketing", "--admin", "ADA@example.com", "--time-zone", "Europe/Berlin"
    )
    ws = Workspace.objects.get(slug="acme-marketing")
    assert (ws.name, ws.time_zone) == ("Acme Marketing", "Europe/Berlin")
    assert Membership.objects.get(workspace=ws, user=ada).role == Role.ADMIN
    assert AuditEvent.objects.filter(workspace=ws, verb="workspace.created").exists()
    assert "ada is its admin" in capsys.readouterr().out
    client.force_login(ada)
    assert client.get("/").status_code == 200  # no more "No workspace"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["Acme", "--admin", "nobody"], "No active user"),
        (["Acme", "--admin", "ada", "--time-zone", "Mars/Olympus"], "Not a known time zone"),
        (["   ", "--admin", "ada"], "1 to 120 characters"),
        (["!!!", "--admin", "ada"], "--slug"),
        (["Taken", "--admin", "ada", "--slug", "taken"], "exists already"),
    ],
)
def test_refusals_say_what_to_do_and_create_nothing(args, words):
    UserFactory(username="ada")
    Workspace.objects.create(name="Taken", slug="taken")
    with pytest.raises(CommandError, match=words):
        call_command("workspace_create", *args)
    assert Workspace.objects.count() == 1
