"""Fake OpenEPaperLink access point: a seeded tag fleet behind the AP's real HTTP and websocket interface."""

from simulators.esl.ap import FakeAP
from simulators.esl.fleet import HW_TYPES, HwType, SimTag, make_fleet
from simulators.esl.jpeg import JpegInfo, jpeg_info

__all__ = ["HW_TYPES", "FakeAP", "HwType", "JpegInfo", "SimTag", "jpeg_info", "make_fleet"]
