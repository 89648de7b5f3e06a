"""The one exception type users see: a readable message naming the culprit."""


class LionSweepError(Exception):
    """A problem the user can fix (bad input, bad config); printed without a traceback."""
