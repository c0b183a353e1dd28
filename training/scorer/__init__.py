"""Supervised defect scorer: EfficientNet-Lite0 with heatmap, trained on Kaputt-layout data."""
