"""reconcile_file --channel CODE [--date YYYY-MM-DD] PATH [--json] (CONTRACT.md)."""

import datetime as dt
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.models import ChannelAccount
from reconciliation import services


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date {value!r} is not YYYY-MM-DD") from None


class Command(BaseCommand):
    help = "Store a settlement file of a channel account, parse it and reconcile it."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--channel", required=True, help="channel account code")
        parser.add_argument("--date", type=iso_date, default=None)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        account = ChannelAccount.objects.filter(code=options["channel"]).first()
        if account is None:
            raise CommandError(f"no channel account {options['channel']!r}")
        path = Path(options["path"])
        try:
            with path.open("rb") as stream:
                file = services.settlement_file_store(
                    account=account, content=stream, name=path.name, day=options["date"],
                )
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            result = services.settlement_file_reconcile(settlement_file=file, account=account)
        except services.ReconcileError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))
            return
        d = result
        self.stdout.write(
            f"{d.channel} {d.date}: {d.lines} lines ({d.payments} payments, {d.refunds} refunds), "
            f"gross {d.gross}, refunded {d.refunded}, fees {d.fees}, net {d.net}; matched {d.matched}"
        )
        for kind, n in d.discrepancies.items():
            if n:
                self.stdout.write(f"  {kind}: {n}")
