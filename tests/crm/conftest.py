import pytest


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def staff_client(client, workspace, member_factory):
    """A Django client logged in as a staff admin of `workspace` (the admin site)."""
    client.force_login(member_factory(workspace, "admin", is_staff=True))
    return client
