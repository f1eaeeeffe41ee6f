"""pull_settlements [--channel CODE] [--date YYYY-MM-DD]: what the beat task does."""

import json

from django.core.management.base import BaseCommand

from reconciliation import services
from reconciliation.management.commands.reconcile_file import iso_date


class Command(BaseCommand):
    help = (
        "Download, store and reconcile settlement files "
        "(default: every enabled account, yesterday)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--channel", action="append", dest="channels", help="channel account code (repeatable)"
        )
        parser.add_argument("--date", type=iso_date, default=None)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        report = services.settlement_pull(codes=options["channels"], day=options["date"])
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False))
            return
        for entry in report:
            detail = entry.get("error") or "{lines} lines, matched {matched}".format(
                **entry["result"]
            )
            self.stdout.write(f"{entry['channel']} {entry['date']}: {entry['status']} — {detail}")
