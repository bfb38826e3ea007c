"""Device drivers, one folder per device family."""
