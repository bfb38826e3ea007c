"""A serial barcode scanner simulator on a pty pair, with realistic GS1 codes and ground truth."""
