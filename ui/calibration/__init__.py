"""The technician's calibration wizard: PIN dialog, live camera frames, one page per step.

The steps' logic lives in ``calibration.wizard`` (no Qt); this package only shows it.
Start it with ``station-app calibrate`` (:func:`ui.calibration.wizard_window.run_calibration`).
"""
