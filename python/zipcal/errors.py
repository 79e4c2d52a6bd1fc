"""Exceptions raised by zipcal. Every one is a :class:`ZipcalError`; most are also a
built-in (``ValueError``, ``OSError``) so generic handlers keep working."""

from __future__ import annotations


class ZipcalError(Exception):
    """Base class of every error zipcal raises on purpose."""


class InvalidArgumentError(ZipcalError, ValueError):
    """An argument is out of range or of the wrong kind (``n <= 0``, unknown strategy, ...)."""


class InputError(ZipcalError, ValueError):
    """The input data is malformed: names the file, row and column where known."""


class SourceNotFoundError(ZipcalError, FileNotFoundError):
    """An input path (or glob) matches no file."""


class TokenizerError(ZipcalError, ValueError):
    """A tokenizer could not be loaded or does not fit the model."""


class NotEnoughCandidatesError(ZipcalError, ValueError):
    """Fewer usable candidates than the requested number of samples."""


class CapacityError(ZipcalError, RuntimeError):
    """An internal limit was reached (for example more than 2**31 distinct types)."""


class MissingDependencyError(ZipcalError, ImportError):
    """An optional dependency needed for this feature is not installed."""


def positive_int(name: str, value: object) -> int:
    """``value`` as an int, or :class:`InvalidArgumentError` naming ``name`` unless it
    is a positive integer (``bool`` is not one)."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) <= 0:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


__all__ = [
    "ZipcalError",
    "InvalidArgumentError",
    "InputError",
    "SourceNotFoundError",
    "TokenizerError",
    "NotEnoughCandidatesError",
    "CapacityError",
    "MissingDependencyError",
]
