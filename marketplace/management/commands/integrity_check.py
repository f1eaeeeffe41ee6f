"""``manage.py integrity_check [--json]``: the money and stock invariants; exit 1 if any fails."""

import json

from django.core.management.base import BaseCommand

from marketplace.integrity import integrity_report


class Command(BaseCommand):
    help = "Check the money and stock invariants; exits non-zero when any check fails."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        report = integrity_report()
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
        else:
            for name, count in report["checks"].items():
                line = f"{'ok  ' if not count else 'FAIL'} {name}: {count}"
                self.stdout.write(self.style.SUCCESS(line) if not count else self.style.ERROR(line))
            self.stdout.write("all checks passed" if report["ok"] else "some checks FAILED")
        if not report["ok"]:
            raise SystemExit(1)
