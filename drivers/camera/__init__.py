"""People-counting cameras: background subtraction, blob tracking, directed line counts and floor heatmaps."""

KEY = "camera"
