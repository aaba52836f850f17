"""The work itself as plain functions, free of Prefect: fixity, probing, collections, ingest, demo data."""
