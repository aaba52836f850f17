"""Exhibits: the museums' side of the archive, which bearers' voices they may ask for, and the texts they ask.

Takes a curator's registration (venue, audience, purpose, validity, bearers) and an exhibit's requests;
gives an ``exhibits`` row with its token's hash (the token is shown once), ``exhibit_requests`` rows (one
per text, with its state), approvals by curators and, where the protocol asks, a community reviewer, and
events for each.

- :mod:`tasks.exhibits.registry`: adding, retiring and rotating exhibits; who a token belongs to.
- :mod:`tasks.exhibits.requests`: checking a request (limits, bearers, consent, duplicates), approval
  with the two-approver rule (texts of the bearer's own transcripts arrive approved where a curator
  pre-approved them), rejection.
"""

from tasks.exhibits.registry import (
    add_exhibit,
    authenticate,
    get_exhibit,
    inactive_reason,
    list_exhibits,
    preapprove_transcripts,
    retire_exhibit,
    rotate_token,
)
from tasks.exhibits.requests import (
    RequestLimits,
    approve,
    from_transcripts,
    normalize_text,
    pending,
    reject,
    rows_of,
    save,
    submit,
    synthesis_decision,
    text_sha256,
    transcribed_words,
)

__all__ = [
    "RequestLimits",
    "add_exhibit",
    "approve",
    "authenticate",
    "from_transcripts",
    "get_exhibit",
    "inactive_reason",
    "list_exhibits",
    "normalize_text",
    "pending",
    "preapprove_transcripts",
    "reject",
    "retire_exhibit",
    "rotate_token",
    "rows_of",
    "save",
    "submit",
    "synthesis_decision",
    "text_sha256",
    "transcribed_words",
]
