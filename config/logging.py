"""Log hygiene: secrets never reach a log line."""

import logging
import re

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
