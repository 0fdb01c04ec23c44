"""labkit: the helper package of the MTP Lab. Everything a notebook needs is re-exported here.

Names are imported on first use (PEP 562), so `import labkit` stays light: torch and transformers
load only when a notebook first touches a model, a trace or a plot.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "setup": "labkit.env",
    "LabEnv": "labkit.env",
    "load_pair": "labkit.loading",
    "Pair": "labkit.loading",
    "run": "labkit.generation",
    "load_prompts": "labkit.generation",
    "Trace": "labkit.trace",
    "Decoding": "labkit.trace",
    "Round": "labkit.trace",
    "load_traces": "labkit.trace",
    "summarize": "labkit.metrics",
    "tau": "labkit.metrics",
    "by_segment": "labkit.metrics",
    "segments": "labkit.chat",
    "speculate": "labkit.glassbox",
    "trace_generate": "labkit.tracing",
}
_MODULES = ("plots", "widgets", "style", "media", "synthetic", "chat")

__all__ = [  # literal, so tools can read it; tests/test_env.py checks it against _EXPORTS
    "__version__", "setup", "LabEnv", "load_pair", "Pair", "run", "load_prompts", "Trace", "Decoding", "Round",
    "load_traces", "summarize", "tau", "by_segment", "segments", "speculate", "trace_generate", "plots", "widgets",
    "style", "media", "synthetic", "chat",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"labkit.{name}")
    else:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # editors and type checkers see the real names
    from labkit import chat, media, plots, style, synthetic, widgets
    from labkit.chat import segments
    from labkit.env import LabEnv, setup
    from labkit.generation import load_prompts, run
    from labkit.glassbox import speculate
    from labkit.loading import Pair, load_pair
    from labkit.metrics import by_segment, summarize, tau
    from labkit.trace import Decoding, Round, Trace, load_traces
    from labkit.tracing import trace_generate
