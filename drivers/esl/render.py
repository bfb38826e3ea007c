"""What an update uploads: its item's template rendered for the label's tag type, as OEPL JSON for the AP to draw or
as a JPEG drawn here, and its hash; or a ``ContentError`` saying why nothing can be uploaded for it.

Holds the tag types and templates (read once at start) and the latest item of each GTIN the driver was given.
"""

from pathlib import Path
from typing import Literal

from drivers.esl.content import (
    TagType,
    Template,
    content_hash,
    json_payload,
    load_tag_types,
    load_templates,
    render_json,
)
from drivers.esl.drawing import ContentError
from drivers.esl.items import PriceItem
from drivers.esl.protocol import LabelUpdate, TagRecord


class LabelContent:
    """Tag types, templates and items: everything needed to make an update's upload."""

    def __init__(self, mode: Literal["json", "image"], content_dir: Path) -> None:
        self.mode = mode
        self.content_dir = content_dir
        self.items: dict[str, PriceItem] = {}  # GTIN → its latest price item
        self._tag_types: dict[int, TagType] = {}
        self._templates: dict[tuple[int, int], Template] = {}
        self._error: str | None = None

    def load(self) -> None:
        """Read the tag types and templates; on a ``ContentError`` every later upload fails with its text."""
        try:
            self._tag_types = load_tag_types(self.content_dir / "tagtypes")
            self._templates = load_templates(self.content_dir / "templates")
        except ContentError as err:
            self._error = str(err)
            raise

    def payload(self, update: LabelUpdate, label: TagRecord | None) -> tuple[bytes, str]:
        """The bytes to upload for an update and their hash; ``ContentError`` says why there are none."""
        if self._error is not None:
            raise ContentError(self._error)
        if label is None:
            raise ContentError("label not known to the access point")
        item = self.items.get(update.gtin)
        if item is None:
            raise ContentError(f"no price received for GTIN {update.gtin}")
        tag_type = self._tag_types.get(label.hw_type)
        if tag_type is None:
            raise ContentError(f"unknown tag type hwType 0x{label.hw_type:02X}")
        elements = render_json(item, tag_type, self._templates)
        if self.mode == "image":
            from drivers.esl.image import render_jpeg  # OpenCV is loaded only for an AP that gets images

            payload = render_jpeg(elements, tag_type)
        else:
            payload = json_payload(elements)
        return payload, content_hash(payload)
