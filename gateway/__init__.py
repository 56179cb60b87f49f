"""Notebook Gateway: a self-hosted PostHog Notebooks API with sandboxed kernels."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
