"""Inference runtimes, model manifests, preprocessing, scoring and the data-set contract."""
