"""Capture store: captures (SQLite, WAL) and their image files, reference galleries,
retention, free-space guard and export to the Kaputt layout. See ``capture_store``."""

from station_app.store.capture_store import (CaptureFilter, CaptureStore, CaptureStoreError,
                                             StoreHealth)
from station_app.store.disk import DiskFull, DiskGuard, SpaceStatus, Usage
from station_app.store.export import ExportSummary, export_confirmed, split_of
from station_app.store.gallery import GalleryReference, ReferenceGallery
from station_app.store.records import (IMAGE_KINDS, REQUIRED_IMAGE_KINDS, CaptureRecord,
                                       Confirmation, ModelOutputs, utc_now)
from station_app.store.retention import apply_retention, expired_captures
from station_app.store.schema import SCHEMA_VERSION

__all__ = [
    "CaptureFilter", "CaptureRecord", "CaptureStore", "CaptureStoreError", "Confirmation",
    "DiskFull", "DiskGuard", "ExportSummary", "GalleryReference", "IMAGE_KINDS", "ModelOutputs",
    "REQUIRED_IMAGE_KINDS", "ReferenceGallery", "SCHEMA_VERSION", "SpaceStatus", "StoreHealth",
    "Usage", "apply_retention", "export_confirmed", "expired_captures", "split_of", "utc_now",
]
