"""Finance's back office for the payment platform. Secrets are write-only; money records
are read-only (changes go through services: refunds, corrections as new entries).

One module per idea; importing them registers every admin."""

from payments.admin import disputes as _disputes  # noqa: F401  (registers)
from payments.admin import fx as _fx  # noqa: F401  (registers)
from payments.admin import payments as _payments  # noqa: F401  (registers)
from payments.admin import refunds as _refunds  # noqa: F401  (registers)
from payments.admin.channels import ChannelAccountForm
from payments.admin.common import ReadOnlyMixin, money_column
from payments.admin.ledger import entries_link, reference_admin_url

__all__ = [
    "ChannelAccountForm",
    "ReadOnlyMixin",
    "entries_link",
    "money_column",
    "reference_admin_url",
]
