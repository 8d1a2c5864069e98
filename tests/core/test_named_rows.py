"""`named_rows_ensure`: the one get-or-create-by-name that crm and media tags share."""

from __future__ import annotations

from aicmo.workspaces import named_rows_ensure
from crm.models import Tag as CrmTag
from media.models import Tag as MediaTag


def test_creates_missing_reuses_existing_and_drops_blanks(workspace, other_workspace):
    CrmTag.objects.create(workspace=other_workspace, name="vip")
    first = named_rows_ensure(CrmTag, workspace=workspace, names=[" vip ", "vip", "", "  ", "lead"])
    assert sorted(t.name for t in first) == ["lead", "vip"]
    again = named_rows_ensure(CrmTag, workspace=workspace, names=["vip", "new"])
    assert {t.name: t.pk for t in again}["vip"] == {t.name: t.pk for t in first}["vip"]
    assert CrmTag.objects.filter(workspace=workspace).count() == 3
    assert (
        CrmTag.objects.filter(workspace=other_workspace).count() == 1
    )  # the other workspace's tag untouched
    assert named_rows_ensure(CrmTag, workspace=workspace, names=[]) == []


def test_names_are_cut_to_each_models_field_length(workspace):
    long = "x" * 100
    assert named_rows_ensure(CrmTag, workspace=workspace, names=[long])[0].name == "x" * 80
    assert named_rows_ensure(MediaTag, workspace=workspace, names=[long])[0].name == "x" * 60
