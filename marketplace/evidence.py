"""Screenshots a buyer attaches to a dispute (the merchant's "card invalid" screen).

Only real PNG, JPEG or WebP images up to a size and pixel bound are kept, and they are
re-encoded so nothing but pixels is stored: no EXIF (a phone photo's GPS position), no
trailing payload, no script disguised as an image. Files live in a private storage that no
URL serves; the dispute's parties and staff fetch them through a view that checks who asks.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

MAX_EVIDENCE_FILES = 3
MAX_EVIDENCE_BYTES = 5 * 1024 * 1024
MAX_EVIDENCE_PIXELS = 40_000_000  # ~ an 8K screenshot; larger is a decompression bomb
_FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
}


class EvidenceRefused(ValueError):
    """An attachment that is not a screenshot we keep; the message names the file."""


@dataclass(frozen=True)
class CleanImage:
    content: ContentFile
    content_type: str
    original_name: str


def _refuse(name: str, why: str) -> EvidenceRefused:
    return EvidenceRefused(_("%(name)s: %(why)s") % {"name": name[:80], "why": why})


def clean_image(upload) -> CleanImage:
    """The upload as a freshly encoded image, or :class:`EvidenceRefused` saying why not."""
    name = getattr(upload, "name", "") or _("attachment")
    if upload.size > MAX_EVIDENCE_BYTES:
        raise _refuse(name, _("larger than 5 MB."))
    data = upload.read(MAX_EVIDENCE_BYTES + 1)
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            if kind not in _FORMATS:
                raise _refuse(name, _("only PNG, JPEG or WebP images are accepted."))
            if probe.width * probe.height > MAX_EVIDENCE_PIXELS:
                raise _refuse(name, _("the image has too many pixels."))
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if kind == "JPEG" and image.mode not in {"RGB", "L"}:
                image = image.convert("RGB")
            out = io.BytesIO()
            image.save(out, format=kind)  # pixels only: no EXIF, no trailing bytes
    except EvidenceRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _refuse(name, _("not a readable image."))
    content_type, extension = _FORMATS[kind]
    return CleanImage(
        content=ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.{extension}"),
        content_type=content_type,
        original_name=name[:120],
    )


def clean_images(uploads) -> list[CleanImage]:
    uploads = list(uploads or [])
    if len(uploads) > MAX_EVIDENCE_FILES:
        raise EvidenceRefused(_("Attach at most %(n)d screenshots.") % {"n": MAX_EVIDENCE_FILES})
    return [clean_image(upload) for upload in uploads]
