"""The work itself, as plain functions: one package per stage of a recording's path, shared pieces beside them.

Stages (each package's ``__init__`` says what it takes and gives, and names its entry points):

- :mod:`tasks.ingest`: a collection folder or S3 prefix plus ``manifest.csv`` -> ``originals/``, ``recordings``
  rows, PREMIS events, ``quarantine/`` for what cannot be used.
- :mod:`tasks.prepare`: an original -> a 32 kHz mono working copy in ``working/``, its metrics and quality gate.
- :mod:`tasks.align`: working copies and transcripts -> ``segments`` rows and TextGrids, through per-dialect
  lexicons and G2P.
- :mod:`tasks.consent`: consent records, personal data and evidence, revocation and erasure, the curator's audit.
- :mod:`tasks.watermark`: a payload watermark in generated audio, and finding it again.

Shared, so that any stage may use them and none owns them:

- :mod:`tasks.audio`: probing, validating and streaming the decode of any audio file heirloom accepts.
- :mod:`tasks.fixity`: where originals live (``originals/<sha[:2]>/<sha>.<ext>``), hashing and verifying them,
  and the archive-wide fixity check.
- :mod:`tasks.demo_collection`: a synthetic collection with field damage, for the demo, tests and benchmarks.

A stage imports the shared modules, ``catalog`` and ``policies``, and another stage only through that
stage's package (never one of its modules); nothing here imports ``voice_models`` or ``flows``.
"""
