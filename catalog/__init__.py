"""The system of record: archive storage, the Delta Lake tables, their records and the event log."""
