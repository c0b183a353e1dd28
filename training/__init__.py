"""Offline work: synthetic tray scenes, training and ONNX export (torch only here)."""
