"""What the shop announces to its own workers, so services never import the tasks that
carry their side effects out (``marketplace.tasks`` listens)."""

from django.dispatch import Signal

#: sent with ``order_id`` after an order's delivery is committed; the codes are mailed
order_delivered = Signal()
