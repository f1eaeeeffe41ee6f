"""Celery tasks of the shop: thin wrappers that take ids and call services."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="marketplace.tasks.release_expired_reservations")
def release_expired_reservations() -> int:
    from marketplace.services import order_reservations_release

    return order_reservations_release()


@shared_task(name="marketplace.tasks.mature_seller_funds")
def mature_seller_funds() -> int:
    from marketplace.services import seller_funds_mature

    return seller_funds_mature()


@shared_task(name="marketplace.tasks.integrity_check")
def integrity_check() -> dict:
    from marketplace.integrity import integrity_report, integrity_report_alert

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
    from marketplace.models import Order
    from marketplace.services import order_delivery_email_send

    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return False
    return order_delivery_email_send(order=order)
