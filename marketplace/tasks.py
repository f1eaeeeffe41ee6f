"""Celery tasks of the shop: thin wrappers that take ids and call services."""

import logging

from celery import shared_task
from django.dispatch import receiver

from marketplace import services, signals
from marketplace.integrity import integrity_report, integrity_report_alert
from marketplace.models import Order

logger = logging.getLogger(__name__)


@shared_task(name="marketplace.tasks.release_expired_reservations")
def release_expired_reservations() -> int:
    return services.order_reservations_release()


@shared_task(name="marketplace.tasks.mature_seller_funds")
def mature_seller_funds() -> int:
    return services.seller_funds_mature()


@shared_task(name="marketplace.tasks.integrity_check")
def integrity_check() -> dict:
    report = integrity_report()
    if not report["ok"]:
        integrity_report_alert(report=report)
    return report


@shared_task(
    name="marketplace.tasks.send_delivery_email",
    autoretry_for=(OSError,),
    retry_backoff=30,
    max_retries=5,
)
def send_delivery_email(order_id: int) -> bool:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return False
    return services.order_delivery_email_send(order=order)


@receiver(signals.order_delivered, dispatch_uid="marketplace.tasks.order_delivered")
def queue_delivery_email(sender, order_id: int, **kwargs) -> None:
    """Mail the codes from a worker (connected in ``MarketplaceConfig.ready``)."""
    send_delivery_email.delay(order_id)
