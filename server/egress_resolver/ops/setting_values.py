"""How each setting's text (a flag, a variable, a TOML value) is read: one parser per kind.

Each raises ValueError with what the value must be; settings.py names the setting.
"""

from __future__ import annotations

from egress_resolver.definitions.durations import NANOS_PER_SECOND, parse_duration


def seconds(text: str) -> float:
    """A duration in the policy's syntax ("2s", "5 mins"), in seconds; a bare 0 too."""
    if text.strip() == "0":  # "0 disables" reads naturally without a unit
        return 0.0
    return parse_duration(text) / NANOS_PER_SECOND


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """An integer of 0 or more."""
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def log_format(text: str) -> str:
    """json or console."""
    if text not in ("json", "console"):
        raise ValueError("must be 'json' or 'console'")
    return text


def log_level(text: str) -> str:
    """debug, info, warning or error (any case)."""
    if text.lower() not in ("debug", "info", "warning", "error"):
        raise ValueError("must be one of debug, info, warning, error")
    return text.lower()


def boolean(text: str) -> bool:
    """true/false, 1/0, yes/no, on/off."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def file_mode(text: str) -> int:
    """An octal file mode such as 600."""
    mode = int(text, 8)
    if not 0 <= mode <= 0o777:
        raise ValueError("must be an octal file mode such as 600")
    return mode


def redis_url(text: str) -> str:
    """A redis://, rediss:// or unix:// URL."""
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return text


def channel(text: str) -> str:
    """A non-empty pub/sub channel name."""
    if not text:
        raise ValueError("must not be empty")
    return text
