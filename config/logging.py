"""Log hygiene and shape: secrets never reach a log line; production lines are JSON carrying
the request id (docs/deploy.md, Observability)."""

import contextvars
import json
import logging
import re
import time
import uuid

_PATTERNS = [
    # key=value / "key": "value" pairs whose key names a secret
    re.compile(
        r'(?i)("?(?:code|pin|password|secret|private_key|api_key|apiv3_key|token|sign|signature)"?\s*[:=]\s*"?)([^",&\s]+)'
    ),
]


class RedactSecretsFilter(logging.Filter):
    """Masks values of secret-looking fields in every record; the vault never logs plaintext
    itself, this is the belt to that pair of braces."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for pattern in _PATTERNS:
            redacted = pattern.sub(r"\1[redacted]", redacted)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


#: The id of the request (or of the request that queued the task) being served on this thread.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_request_id(offered: str | None = None) -> str:
    """Keep an id the proxy sent (X-Request-ID) when it looks like one; otherwise make one."""
    if offered and _SAFE_ID.match(offered):
        return offered
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request id, so one purchase can be followed from
    the web request through the tasks it queued."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


# Attributes every LogRecord has; anything else was passed with `extra=` and goes in the JSON.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and the fields a
    caller passed with ``extra=`` (status, duration_ms, task…)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


JsonFormatter.converter = time.gmtime
