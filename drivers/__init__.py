"""Hardware: camera, lighting controller, barcode scanner; each with a simulator."""
