"""Re-key companies known only by name to the one placeholder form (``crm.normalize.placeholder_domain``).

Before, the API and enrichment keyed "Acme Corp" as ``acmecorp.unknown`` and imports as
``acme-corp.unknown`` (and every non-Latin name as ``.unknown``), so one company became several. A row is
re-keyed only when the new key is free in its workspace; otherwise it is left as it is (no merge here: the
next write by that name finds the row that already holds the key). The key rule is frozen here as it was
when this migration was written."""

import hashlib

from django.db import migrations
from django.utils.text import slugify

SUFFIX = ".unknown"


def _key(name: str) -> str:
    name = name.strip()
    key = slugify(name, allow_unicode=True).strip("-_")
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    room = 253 - len(SUFFIX)
    if not key:
        return f"company-{digest}{SUFFIX}"
    return (key if len(key) <= room else f"{key[: room - 13]}-{digest}") + SUFFIX


def rekey(apps, schema_editor):
    Company = apps.get_model("crm", "Company")
    for company in Company.objects.filter(domain__endswith=SUFFIX).exclude(name="").iterator():
        new = _key(company.name)
        if new == company.domain:
            continue
        if not Company.objects.filter(workspace_id=company.workspace_id, domain=new).exists():
            Company.objects.filter(pk=company.pk).update(domain=new)


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_segment_broken_erased_address")]

    operations = [migrations.RunPython(rekey, migrations.RunPython.noop)]
