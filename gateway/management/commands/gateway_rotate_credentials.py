"""Re-encrypt every provider credential with the newest FIELD_ENCRYPTION_KEYS entry.

Rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it), deploy, run this
command, then drop the old key.
"""

from django.core.management.base import BaseCommand

from gateway.services import rotate_credentials


class Command(BaseCommand):
    help = "Re-encrypt stored provider credentials with the newest encryption key."

    def handle(self, *args, **opts):
        count = rotate_credentials()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted credentials of {count} provider account(s)."))
