"""Backups: one ``.tar.gz`` holding the database and the media files, and its restore.

Archive layout (format 1)::

    manifest.json   {"format": 1, "created_at": ISO-8601, "vendor": "postgresql"|"sqlite",
                     "media": "included"|"external", "migrations": {"app": "latest applied", ...}}
    database.dump   PostgreSQL: ``pg_dump --format=custom --no-owner --no-privileges``;
                    SQLite: a consistent copy made with SQLite's online backup API
    media/...       every file under MEDIA_ROOT (local storage only; with AICMO_STORAGE=s3 the bucket is
                    backed up by the object store: versioning/replication, see docs/OPERATIONS.md)

PostgreSQL tools: ``pg_dump``/``pg_restore`` from ``AICMO_PG_BINDIR`` when set, else from PATH (Debian:
``postgresql-client``); their major version must be at least the server's. The password reaches them
through ``PGPASSWORD`` in their environment, never on the command line.

Restore replaces the database's contents (``pg_restore --clean --if-exists --single-transaction``: all or
nothing) and writes the archive's media files into MEDIA_ROOT (existing files of the same name are
overwritten, others are kept). Stop web, workers and beat first. Errors: :class:`BackupError` with the
tool's message.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

FORMAT = 1


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict


def _db() -> dict:
    return connections["default"].settings_dict


def _vendor() -> str:
    return connections["default"].vendor


def _pg_tool(name: str) -> str:
    bindir = settings.AICMO_PG_BINDIR
    found = str(Path(bindir) / name) if bindir else shutil.which(name)
    if not found or not Path(found).is_file():
        raise BackupError(f"{name} not found (install postgresql-client or set AICMO_PG_BINDIR)")
    return found


def _pg_env() -> dict:
    db = _db()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        {
            "PGHOST": str(db.get("HOST") or "localhost"),
            "PGPORT": str(db.get("PORT") or 5432),
            "PGUSER": str(db.get("USER") or ""),
            "PGDATABASE": str(db["NAME"]),
        }
    )
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, env=_pg_env(), capture_output=True, text=True)  # noqa: S603 - our argv
    if result.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}")


def _dump_database(target: Path) -> None:
    if _vendor() == "postgresql":
        _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={target}"])
    elif _vendor() == "sqlite":
        connection = connections["default"]
        connection.ensure_connection()
        with sqlite3.connect(target) as copy:
            connection.connection.backup(copy)
    else:
        raise BackupError(f"no backup method for {_vendor()}")


def _restore_database(source: Path) -> None:
    connections.close_all()  # our own sessions would hold locks on the tables being replaced
    if _vendor() == "postgresql":
        _run(
            [
                _pg_tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                f"--dbname={_db()['NAME']}",
                str(source),
            ]
        )
    elif _vendor() == "sqlite":
        connection = connections["default"]
        connection.ensure_connection()
        with sqlite3.connect(source) as backup:
            backup.backup(connection.connection)
    else:
        raise BackupError(f"no restore method for {_vendor()}")
    connections.close_all()


def _migrations() -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in MigrationRecorder(connections["default"]).applied_migrations():
        latest[app] = max(latest.get(app, ""), name)
    return dict(sorted(latest.items()))


def backup_create(*, directory: Path) -> BackupResult:
    """Write ``aicmo-backup-<UTC timestamp>.tar.gz`` into ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"aicmo-backup-{stamp}.tar.gz"
    media_root = Path(settings.MEDIA_ROOT)
    local_media = settings.AICMO_STORAGE == "local"
    manifest = {
        "format": FORMAT,
        "created_at": timezone.now().isoformat(),
        "vendor": _vendor(),
        "media": "included" if local_media else "external",
        "migrations": _migrations(),
    }
    with tempfile.TemporaryDirectory(prefix="aicmo-backup-") as tmp:
        dump = Path(tmp) / "database.dump"
        _dump_database(dump)
        manifest_file = Path(tmp) / "manifest.json"
        manifest_file.write_text(json.dumps(manifest, indent=2))
        partial = path.with_suffix(".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(manifest_file, arcname="manifest.json")
            tar.add(dump, arcname="database.dump")
            if local_media and media_root.is_dir():
                tar.add(media_root, arcname="media")
        partial.rename(path)  # never leave a truncated archive under the final name
    return BackupResult(path=path, manifest=manifest)


def backup_restore(*, archive: Path) -> dict:
    """Restore ``archive`` (made by :func:`backup_create`) into the configured database and MEDIA_ROOT;
    returns its manifest. BackupError when the archive is unreadable, of another format or vendor."""
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the `with tar` below
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"not a readable backup archive: {exc}") from exc
    with tar, tempfile.TemporaryDirectory(prefix="aicmo-restore-") as tmp:
        try:
            manifest = json.load(tar.extractfile("manifest.json"))
        except (KeyError, ValueError, TypeError) as exc:
            raise BackupError("archive has no valid manifest.json") from exc
        if manifest.get("format") != FORMAT:
            raise BackupError(f"unsupported backup format {manifest.get('format')!r}")
        if manifest.get("vendor") != _vendor():
            raise BackupError(
                f"backup is from {manifest.get('vendor')}, the configured database is {_vendor()}"
            )
        try:
            tar.extractall(tmp, filter="data")  # refuses absolute paths, '..', devices and links outside
        except tarfile.FilterError as exc:
            raise BackupError(f"unsafe entry in archive: {exc}") from exc
        _restore_database(Path(tmp) / "database.dump")
        media = Path(tmp) / "media"
        if media.is_dir():
            shutil.copytree(media, Path(settings.MEDIA_ROOT), dirs_exist_ok=True)
    return manifest
