import pytest


@pytest.fixture
def berlin(settings):
    """Workspace days in a zone with DST (rollups read settings.TIME_ZONE)."""
    settings.TIME_ZONE = "Europe/Berlin"
    return "Europe/Berlin"
