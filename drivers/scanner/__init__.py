"""Barcode scanner: code validation, the serial scanner driver, and a simulator."""

from drivers.scanner.codes import (CheckDigitMode, CodeRules, InvalidCode, RejectReason,
                                   gtin_check_digit, has_valid_check_digit, validate_code)
from drivers.scanner.serial_scanner import ScannedCode, ScanRejected, SerialScanner

__all__ = [
    "CheckDigitMode", "CodeRules", "InvalidCode", "RejectReason", "ScanRejected", "ScannedCode",
    "SerialScanner", "gtin_check_digit", "has_valid_check_digit", "validate_code",
]
