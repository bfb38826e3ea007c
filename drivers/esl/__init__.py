"""Electronic shelf labels on OpenEPaperLink access points: price-label content, images and the AP driver."""
