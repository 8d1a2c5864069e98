import pytest

from aicmo.models import Workspace


@pytest.fixture
def berlin(db, settings):
    """Workspace days in a zone with DST: every workspace (those made before and, through the server
    default, after this fixture) counts its days in Europe/Berlin."""
    settings.TIME_ZONE = "Europe/Berlin"
    Workspace.objects.update(time_zone="Europe/Berlin")
    return "Europe/Berlin"
