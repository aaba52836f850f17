"""Consent: the records that say what may be done with a bearer's voice, carrying out their withdrawal, and
the audit that checks everything made against them.

Takes grants, changes and revocations (with their evidence) and the catalog; gives hash-chained ``consents``
rows, the facts :func:`policies.decide.decide` rules on, revocations and erasures carried through models,
clips, files and table history, and the curator's audit report.

- :mod:`tasks.consent.records`: writing and reading consent records, chained per bearer.
- :mod:`tasks.consent.people`: personal data and consent evidence outside the catalog (``people/``,
  ``consent-evidence/``).
- :mod:`tasks.consent.revocation`: a revocation or an erasure, carried out in a crash-safe order.
- :mod:`tasks.consent.audit`: every model, clip and consent checked against the rules;
  :mod:`tasks.consent.audit_html` renders the report as a page.
"""

from tasks.consent.audit import DATASET_MANIFEST, AuditReport, run_audit
from tasks.consent.audit_html import render_audit_html
from tasks.consent.people import write_person
from tasks.consent.records import all_bearer_facts, bearer_facts, consent_records, grant, revoke_scopes
from tasks.consent.revocation import RevocationReport, carry_out, erase

__all__ = [
    "DATASET_MANIFEST",
    "AuditReport",
    "RevocationReport",
    "all_bearer_facts",
    "bearer_facts",
    "carry_out",
    "consent_records",
    "erase",
    "grant",
    "render_audit_html",
    "revoke_scopes",
    "run_audit",
    "write_person",
]
