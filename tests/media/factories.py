"""Media factories. Assets made here carry real bytes so every code path sees a genuine file."""

from __future__ import annotations

import factory
from django.core.files.base import ContentFile

from media.models import AssetKind, MediaAsset, MediaLibrary
from tests.factories import WorkspaceFactory


class MediaLibraryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MediaLibrary

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Library {n}")


class MediaAssetFactory(factory.django.DjangoModelFactory):
    """A text asset with unique content (cheap); use services.asset_upload for images."""

    class Meta:
        model = MediaAsset

    workspace = factory.SubFactory(WorkspaceFactory)
    library = factory.SubFactory(MediaLibraryFactory, workspace=factory.SelfAttribute("..workspace"))
    kind = AssetKind.OTHER
    title = factory.Sequence(lambda n: f"Asset {n}")
    mime_type = "text/plain"
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    size_bytes = 12
    file = factory.LazyAttribute(lambda o: ContentFile(b"hello world\n", name="note.txt"))
