"""Reference comparison: a query item against earlier good captures of the same item.

``patches`` cuts pose-independent item crops and embeds them with the scorer's frozen
trunk; ``bank`` builds each reference's pose-augmented memory bank once and caches it;
``comparison`` scores a query against the banks robustly; ``gallery`` ties them together
for callers that hold reference images (the station gallery, a data set).
"""

from engines.reference.bank import (REFERENCE_READ_REDUCTION, ReferenceBank,
                                    ReferenceFeatureCache, build_bank, content_identity,
                                    default_reference_cache_dir, file_identity)
from engines.reference.comparison import (ComparisonSettings, ReferenceResult, compare,
                                          nearest_distances)
from engines.reference.display import reference_heatmap
from engines.reference.patches import (AUGMENTATIONS, PatchEmbedder, PatchGrid, PatchSettings,
                                       circle_box, query_grid)

__all__ = [
    "AUGMENTATIONS", "ComparisonSettings", "PatchEmbedder", "PatchGrid", "PatchSettings",
    "REFERENCE_READ_REDUCTION", "ReferenceBank", "ReferenceFeatureCache", "ReferenceResult",
    "build_bank", "circle_box", "compare", "content_identity",
    "default_reference_cache_dir", "file_identity", "nearest_distances", "query_grid",
    "reference_heatmap",
]
