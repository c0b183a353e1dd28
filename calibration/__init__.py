"""Station profile, tray geometry, photometry, focus and decision thresholds."""
