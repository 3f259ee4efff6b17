"""solarpipe: a heuristics pipeline for ALMA solar interferometric data.

Importing solarpipe configures CASA for offline use (casadata measures, no
auto-update) before casatools is loaded; see :mod:`solarpipe.casaenv`.
The interactive task functions (``hsol_importdata`` ...) are exported lazily so
that ``import solarpipe`` stays cheap.
"""
from __future__ import annotations

from .casaenv import configure_offline_casa

configure_offline_casa()

__version__ = "0.1.0"


def __getattr__(name: str):
    """Expose the interactive task functions (``hsol_*``) at package level."""
    if name.startswith("hsol_") or name in ("h_init", "h_save", "h_resume"):
        from . import interactive

        return getattr(interactive, name)
    raise AttributeError(f"module 'solarpipe' has no attribute {name!r}")
