"""Item segmentation: a U-Net trained on tray images and item masks in the Kaputt layout."""
