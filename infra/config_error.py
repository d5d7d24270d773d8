"""The one error a stack's configuration raises: the message names the file (or config key) and the key."""


class StackConfigError(ValueError):
    """An environment file or stack setting is missing or malformed; the message names file and key."""
