"""reconcile_file --channel CODE [--date YYYY-MM-DD] PATH [--json] (CONTRACT.md)."""

import datetime as dt
import json
import time
from contextlib import nullcontext
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.models import ChannelAccount
from reconciliation import services


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date {value!r} is not YYYY-MM-DD") from None


def _is_tty(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar:
    """Lines read, rate and time left of a run on a terminal (rich), from its ReconcileRun."""

    def __init__(self, stream, file):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        out = getattr(stream, "_out", stream)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[lines]:,} lines · {task.fields[rate]:,.0f}/s"),
            TextColumn("{task.fields[matched]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=out, force_terminal=True),
            auto_refresh=False,
            transient=False,
        )
        self.task = self.progress.add_task(
            file.name,
            total=file.size or 1,
            lines=0,
            rate=0.0,
            matched="",
        )
        self.started = time.monotonic()

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def show(self, run) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        matched = f"matched {run.matched:,}" if run.status == "done" else run.stage
        self.progress.update(
            self.task,
            completed=run.bytes_read,
            lines=run.lines_read,
            rate=run.lines_read / elapsed,
            matched=matched,
            refresh=True,
        )


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
                    account=account,
                    content=stream,
                    name=path.name,
                    day=options["date"],
                )
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        bar = (
            None if options["json"] or not _is_tty(self.stderr) else ProgressBar(self.stderr, file)
        )
        try:
            with bar or nullcontext():
                result = services.settlement_file_reconcile(
                    settlement_file=file,
                    account=account,
                    progress=bar.show if bar else None,
                )
        except services.ReconcileError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))
            return
        d = result
        self.stdout.write(
            f"{d.channel} {d.date}: {d.lines} lines ({d.payments} payments, {d.refunds} refunds), "
            f"gross {d.gross}, refunded {d.refunded}, fees {d.fees}, net {d.net}; matched "
            f"{d.matched}"
        )
        for kind, n in d.discrepancies.items():
            if n:
                self.stdout.write(f"  {kind}: {n}")
