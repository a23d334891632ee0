"""The one domain exception: its message names the fix."""


class RobustkitError(Exception):
    """Bad input or configuration; the message says what to change."""
