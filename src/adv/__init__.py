"""Audio Distortion Validator: detects clipping, MP3 artifacts, noise, EQ and phase damage in music."""

__version__ = "0.1.0"

CLASSES = ("clean", "clipping", "mp3", "noise", "eq", "phase")
DISTORTION_KINDS = CLASSES[1:]


def __getattr__(name):  # lazy: importing adv must not load torch
    if name == "AudioDistortionValidator":
        from adv.inference.validator import AudioDistortionValidator

        return AudioDistortionValidator
    raise AttributeError(name)
