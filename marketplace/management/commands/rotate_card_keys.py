"""``manage.py rotate_card_keys``: re-encrypt every card secret with the newest vault key.

Put the new key first in CARD_VAULT_KEYS (keep the old ones after it), deploy, run this, then
drop the old keys. Works in batches, each committed on its own; prints the last id done so an
interrupted run resumes with ``--after-id``. Secrets already under the newest key are skipped,
so running it again is harmless.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from marketplace import vault
from marketplace.models import CardCode


class Command(BaseCommand):
    help = "Re-encrypt card codes and PINs with the newest key of CARD_VAULT_KEYS (resumable)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--after-id", type=int, default=0, help="Resume after this card code id."
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, after_id, batch_size, **options):
        total = CardCode.objects.filter(pk__gt=after_id).count()
        seen = rotated = 0
        last_id = after_id
        while True:
            with transaction.atomic():
                batch = list(
                    CardCode.objects.select_for_update()
                    .filter(pk__gt=last_id)
                    .order_by("pk")
                    .only("pk", "code_encrypted", "pin_encrypted")[:batch_size]
                )
                if not batch:
                    break
                stale = []
                for code in batch:
                    if vault.is_current(code.code_encrypted) and vault.is_current(
                        code.pin_encrypted
                    ):
                        continue
                    code.code_encrypted = vault.rotate(code.code_encrypted)
                    code.pin_encrypted = vault.rotate(code.pin_encrypted)
                    stale.append(code)
                CardCode.objects.bulk_update(stale, ["code_encrypted", "pin_encrypted"])
            seen += len(batch)
            rotated += len(stale)
            last_id = batch[-1].pk
            self.stdout.write(f"{seen}/{total} checked, {rotated} re-encrypted; last id {last_id}")
        self.stdout.write(
            self.style.SUCCESS(f"done: {rotated} of {seen} codes re-encrypted with the newest key")
        )
