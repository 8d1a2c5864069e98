"""Local file storage that never leaves a partly written file behind, and says when the disk is full.

Django's ``FileSystemStorage`` writes straight into the final name; when the write fails half-way (the
disk or the quota filled up: ``ENOSPC``, ``EDQUOT``) the truncated file stays, with no row pointing at
it. :class:`LocalStorage` writes into a hidden temporary file in the target directory and renames it
into place only when every byte is written (a rename within one file system is atomic, POSIX
``rename(2)``), removing the temporary file on any error. A full disk is raised as :class:`StorageFull`,
which the API and pages answer with ``507`` (:mod:`aicmo.dblocks`) instead of a 500.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from django.core.files.storage import FileSystemStorage

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
FULL_CODE = "storage_full"
FULL_MESSAGE = "File storage is full; nothing was saved. Try again later or ask an administrator."
FULL_RETRY_AFTER_SECONDS = 300
PARTIAL_PREFIX = ".partial-"


class StorageFull(OSError):
    """The file could not be stored because the disk (or the quota) is full; nothing was kept."""


def is_storage_full(exc: BaseException) -> bool:
    """True for :class:`StorageFull` or an ``OSError`` with ``ENOSPC`` / ``EDQUOT``."""
    return isinstance(exc, OSError) and (isinstance(exc, StorageFull) or exc.errno in FULL_ERRNOS)


class _WrittenFile:
    """A fully written temporary file, handed to ``FileSystemStorage._save`` to be moved into place."""

    def __init__(self, path: str):
        self.path = path

    def temporary_file_path(self) -> str:
        return self.path


class LocalStorage(FileSystemStorage):
    """``FileSystemStorage`` with all-or-nothing writes (see the module docstring)."""

    def _save(self, name: str, content) -> str:
        directory = Path(self.path(name)).parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=directory)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in content.chunks():  # File.chunks() starts from the beginning
                    out.write(chunk if isinstance(chunk, bytes) else chunk.encode())
                out.flush()
                os.fsync(out.fileno())  # ENOSPC can surface only here (delayed allocation)
            return super()._save(name, _WrittenFile(partial))
        except OSError as exc:
            Path(partial).unlink(missing_ok=True)
            if is_storage_full(exc) and not isinstance(exc, StorageFull):
                raise StorageFull(exc.errno, FULL_MESSAGE) from exc
            raise
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
