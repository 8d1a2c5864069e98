"""manage.py backup / restore: a round trip brings back the database and the media files (pg_dump and
pg_restore on PostgreSQL, SQLite's online backup on SQLite); bad archives are refused and change nothing."""

from __future__ import annotations

import subprocess
import tarfile

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from aicmo.models import Workspace
from crm.models import Contact
from tests.crm.factories import ContactFactory
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def pg_bindir_for_server() -> str:
    """A directory with pg_dump/pg_restore at least as new as the test server (the pgrun candidates)."""
    from tests.pgrun import candidate_bindirs

    server_major = connection.pg_version // 10000
    for bindir in candidate_bindirs():
        if not (bindir / "pg_dump").is_file():
            continue
        version = subprocess.run([bindir / "pg_dump", "--version"], capture_output=True, text=True).stdout
        if int(version.split()[-1].split(".")[0].split("-")[0]) >= server_major:
            return str(bindir)
    pytest.fail(f"no pg_dump >= {server_major} among the PostgreSQL binaries tests/pgrun.py knows")


@pytest.fixture
def storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AICMO_STORAGE = "local"
    if connection.vendor == "postgresql":
        settings.AICMO_PG_BINDIR = pg_bindir_for_server()
    (settings.MEDIA_ROOT / "assets").mkdir(parents=True)
    return settings.MEDIA_ROOT


def test_backup_then_restore_brings_back_database_and_media(storage, tmp_path, capsys):
    ws = WorkspaceFactory(slug="kept")
    ContactFactory.create_batch(3, workspace=ws)
    (storage / "assets" / "logo.txt").write_text("original")

    call_command("backup", "--dir", str(tmp_path / "backups"))
    archive = capsys.readouterr().out.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "database.dump", "media/assets/logo.txt"} <= names

    # Life goes on after the backup ...
    Workspace.objects.filter(slug="kept").delete()
    WorkspaceFactory(slug="created-later")
    (storage / "assets" / "logo.txt").write_text("overwritten")

    call_command("restore", archive, "--yes")

    assert set(Workspace.objects.values_list("slug", flat=True)) == {"kept"}
    assert Contact.objects.filter(workspace__slug="kept").count() == 3
    assert (storage / "assets" / "logo.txt").read_text() == "original"
    # The restored database is complete: new rows get fresh ids (sequences came back too).
    assert WorkspaceFactory(slug="after-restore").pk > ws.pk


def test_restore_needs_confirmation_and_refuses_bad_archives(storage, tmp_path):
    WorkspaceFactory(slug="untouched")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(CommandError, match="--yes"):
        call_command("restore", str(junk))
    with pytest.raises(CommandError, match="not a readable backup archive"):
        call_command("restore", str(junk), "--yes")

    no_manifest = tmp_path / "empty.tar.gz"
    with tarfile.open(no_manifest, "w:gz"):
        pass
    with pytest.raises(CommandError, match=r"no valid manifest\.json"):
        call_command("restore", str(no_manifest), "--yes")
    assert list(Workspace.objects.values_list("slug", flat=True)) == ["untouched"]


def test_archive_with_path_traversal_is_refused(storage, tmp_path):
    import io
    import json

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        manifest = json.dumps({"format": 1, "vendor": connection.vendor}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        info = tarfile.TarInfo("../outside.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(CommandError, match="unsafe entry"):
        call_command("restore", str(evil), "--yes")
    assert not (tmp_path / "outside.txt").exists()
