"""The error the command line reports as one line and a non-zero exit."""


class StationError(Exception):
    """A failure the user can act on; its message names the cause and the fix."""
