"""The HTTP service: upload audio files and get the validator's verdict as JSON (``adv serve``)."""
