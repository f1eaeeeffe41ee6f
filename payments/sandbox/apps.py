from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """Local simulators of each provider (DESIGN.md §3): same endpoints, signatures,
    notifications and settlement files as the real channel."""

    name = "payments.sandbox"
    label = "sandbox"
    verbose_name = "Payment sandbox"

    def ready(self) -> None:
        from payments.sandbox import checks, tasks  # noqa: F401 - delivery receiver, deploy check
