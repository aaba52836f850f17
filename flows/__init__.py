"""Prefect flows and the faces people touch (the ``heirloom`` CLI). Prefect is imported only here."""
