"""The station's application layer: configuration, workflow, store, replay and the CLI."""

__version__ = "0.1.0"
