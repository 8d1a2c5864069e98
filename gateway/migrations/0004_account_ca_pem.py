"""Provider accounts carry a private CA as PEM text (``ca_pem``); server file paths are no longer options.

Existing accounts: an option naming a file on the server (``ca_file`` and the like) is dropped, unread,
with an audit note asking for the certificate as PEM. SMTP/IMAP accounts configured by the old
``host``/``port``/``security`` options get the one documented form, a base URL (``smtp://host:587``,
``smtps://host:465``, ``smtp+plain://host:25``; ``imap``/``imaps``/``imap+plain`` alike).
"""

from urllib.parse import urlsplit

from django.db import migrations, models

PATH_OPTIONS = ("ca_file", "ca_path", "cafile", "capath", "cert_file", "key_file", "certfile", "keyfile")
MAIL = {
    "smtp": {"starttls": ("smtp", 587), "ssl": ("smtps", 465), "none": ("smtp+plain", 25)},
    "imap": {"starttls": ("imap", 143), "ssl": ("imaps", 993), "none": ("imap+plain", 143)},
}
URL_SECURITY = {"smtp": "starttls", "smtps": "ssl", "imap": "starttls", "imaps": "ssl"}


def mail_base_url(adapter: str, base_url: str, options: dict) -> str:
    """The base URL an old SMTP/IMAP account meant (options override what the URL left open)."""
    host = str(options.get("host") or "")
    port = options.get("port")
    security = str(options.get("security") or "")
    if base_url and "://" in base_url:
        parts = urlsplit(base_url)
        host = parts.hostname or host
        port = parts.port or port
        security = security or URL_SECURITY.get(parts.scheme.lower(), "")
    if not host:
        return base_url
    scheme, default_port = MAIL[adapter].get(security or "starttls", MAIL[adapter]["starttls"])
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{int(port or default_port)}"


def forwards(apps, schema_editor):
    ProviderAccount = apps.get_model("gateway", "ProviderAccount")
    AuditEvent = apps.get_model("aicmo", "AuditEvent")
    for account in ProviderAccount.objects.all().iterator():
        options = dict(account.options or {}) if isinstance(account.options, dict) else {}
        changes = {}
        dropped = sorted(k for k in options if k in PATH_OPTIONS)
        for key in dropped:
            changes[key] = [str(options.pop(key)), "dropped: server paths are not read; paste the CA as ca_pem"]
        if account.adapter in MAIL and ({"host", "port", "security"} & set(options) or account.base_url):
            url = mail_base_url(account.adapter, account.base_url, options)
            for key in ("host", "port", "security"):
                options.pop(key, None)
            if url != account.base_url:
                changes["base_url"] = [account.base_url, url]
                account.base_url = url
        if not changes and options == account.options:
            continue
        account.options = options
        account.save(update_fields=["options", "base_url"])
        AuditEvent.objects.create(
            workspace_id=account.workspace_id,
            actor=None,
            actor_label="migration gateway.0004",
            verb="gateway.account_updated",
            target_type="gateway.provideraccount",
            target_id=str(account.pk),
            target_repr=str(account.name)[:255],
            changes=changes,
        )


class Migration(migrations.Migration):
    dependencies = [("gateway", "0003_health_flush_schedule"), ("aicmo", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="provideraccount",
            name="ca_pem",
            field=models.TextField(
                blank=True,
                help_text="PEM text of the private CA certificate(s) to trust for this provider, in addition "
                "to the system store. Blank: system store only.",
            ),
        ),
        migrations.AlterField(
            model_name="provideraccount",
            name="options",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Non-secret adapter options (only those the adapter declares).",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
