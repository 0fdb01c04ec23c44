"""The errors labkit raises on bad input: one message a learner can act on, never a deep stack trace.

Every check that can fail on what a learner typed (a model id, a prompt, k, a device) raises one of
these *before* any model work starts, with what was wrong and what to do instead. All derive from
`LabkitError`, so a notebook can catch them in one place. Left out: warnings (we refuse or we run).
"""

from __future__ import annotations


class LabkitError(Exception):
    """Base class: the message is written for the learner, not for a debugger."""


class BadInputError(LabkitError, ValueError):
    """A prompt, a setting or an argument that cannot work (empty prompt, k < 1, batch > 1, ...)."""


class PairError(LabkitError, ValueError):
    """A target and a drafter that do not belong together (widths, vocabularies, attention shapes)."""


class ModelNotFoundError(LabkitError, LookupError):
    """An unknown model id or a folder without a model in it."""


class OfflineError(LabkitError, ConnectionError):
    """Weights that are neither on disk nor reachable: the pocket pair still works offline."""


class NotEnoughMemoryError(LabkitError, MemoryError):
    """The pair would not fit on the chosen device; the message carries both numbers."""


class UnsupportedVersionError(LabkitError, RuntimeError):
    """An installed package version the lab cannot run with (e.g. transformers 5.23.x)."""


class MediaError(LabkitError, ValueError):
    """An image or a sound that cannot be used: unreadable, empty, or for a target that cannot take it."""


class PrecisionError(LabkitError, FloatingPointError):
    """Numbers that overflowed the precision a model runs in (float16's range ends at 65,504)."""
