"""Serial / USB-CDC barcode scanners: framing, AIM/GS1/GTIN/RCN decoding, and the reader driver."""

KEY = "barcode"
