"""PyQt6 windows and widgets; the only package that imports Qt."""
