"""heirloom: field recordings of tradition-bearers, kept, prepared and voiced only with consent.

This package holds what every layer shares and nothing else: the version, the error hierarchy and the
settings. The work lives in ``catalog``, ``tasks``, ``policies``, ``voice_models`` and ``flows``.
"""

__version__ = "0.1.0"

AGENT = f"heirloom@{__version__}"
