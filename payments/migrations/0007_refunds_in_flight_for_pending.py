"""Refunds already on their way when payments:refunds-in-flight was introduced get the entry
that moves their amount there, so confirming (or refusing) them later keeps the account at
exactly what is still owed."""

from django.db import migrations

IN_FLIGHT, CLEARING = "payments:refunds-in-flight", "payments:clearing"


def post_refunds_sent(apps, schema_editor):
    Refund = apps.get_model("payments", "Refund")
    JournalEntry = apps.get_model("payments", "JournalEntry")
    JournalLine = apps.get_model("payments", "JournalLine")
    LedgerAccount = apps.get_model("payments", "LedgerAccount")
    pending = Refund.objects.filter(status="pending").select_related("payment")
    if not pending.exists():
        return
    clearing, _ = LedgerAccount.objects.get_or_create(code=CLEARING, defaults={"kind": "liability"})
    in_flight, _ = LedgerAccount.objects.get_or_create(code=IN_FLIGHT, defaults={"kind": "liability"})
    for refund in pending:
        key = f"refund-sent:{refund.refund_no}"
        if JournalEntry.objects.filter(key=key).exists():
            continue
        entry = JournalEntry.objects.create(
            key=key, kind="refund_sent", reference=refund.payment.reference[:64], memo=refund.reason[:255],
        )
        JournalLine.objects.bulk_create([
            JournalLine(entry=entry, account=clearing, amount=refund.amount, currency=refund.currency),
            JournalLine(entry=entry, account=in_flight, amount=-refund.amount, currency=refund.currency),
        ])


class Migration(migrations.Migration):
    dependencies = [("payments", "0006_verbose_names")]

    operations = [migrations.RunPython(post_refunds_sent, migrations.RunPython.noop)]
