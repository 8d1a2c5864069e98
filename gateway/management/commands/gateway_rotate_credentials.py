"""Re-encrypt every stored secret (provider credentials, inbound-hook secrets, DKIM private keys) with the
newest FIELD_ENCRYPTION_KEYS entry.

Rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it), deploy, run this
command, then drop the old key.
"""

from django.core.management.base import BaseCommand

from gateway.services import rotate_credentials


class Command(BaseCommand):
    help = "Re-encrypt stored secrets (provider credentials, hook secrets, DKIM keys) with the newest key."

    def handle(self, *args, **opts):
        counts = rotate_credentials()
        for column, count in counts.items():
            self.stdout.write(f"{column}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {sum(counts.values())} stored secret(s)."))
