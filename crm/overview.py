"""crm's part of the home overview (aicmo/overview.py): contact, company, list and segment counts with
their 7-day change, and the "import contacts" getting-started step."""

from __future__ import annotations

from django.urls import reverse

from aicmo.models import JobStatus
from aicmo.overview import Figure, Step, figure_for

from .models import Company, Contact, ContactList, ImportRun, Segment

FIGURES = (
    (Contact, "Contacts", "crm:index"),
    (Company, "Companies", "crm:companies"),
    (ContactList, "Lists", "crm:lists"),
    (Segment, "Segments", "crm:segments"),
)


def figures(workspace, since) -> list[Figure]:
    return [
        figure_for(model.objects.for_workspace(workspace), since, label=label, url=reverse(url), order=10 + i)
        for i, (model, label, url) in enumerate(FIGURES)
    ]


def steps(workspace) -> list[Step]:
    imported = ImportRun.objects.for_workspace(workspace).filter(job__status=JobStatus.SUCCEEDED).exists()
    return [
        Step(
            label="Import contacts",
            done=imported,
            url=reverse("crm:imports"),
            hint="Upload a CSV or XLSX export from your old CRM or a spreadsheet.",
            order=10,
        )
    ]
