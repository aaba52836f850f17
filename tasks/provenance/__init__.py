"""Provenance: Content Credentials for every generated clip, and finding where a clip came from.

Takes an encoded clip and the provenance generation gathered (model, consent, approvals, credit line,
watermark payload) and the site's signing identity; gives the clip signed with a C2PA manifest (embedded,
or a sidecar for Opus) and the manifest's bytes to keep in the archive; reads a file's credentials back,
validated against the site's root.

- :mod:`tasks.provenance.identity`: the site's root and signing certificate (``heirloom provenance keygen``).
- :mod:`tasks.provenance.credentials`: the manifest of a clip, signing it, reading and validating it.
- :mod:`tasks.provenance.trace`: from any copy of a clip back to its clip, exhibit, model, consent, approvals.
"""

from tasks.provenance.credentials import (
    MIME,
    Credentials,
    clip_credentials,
    manifest_definition,
    read_credentials,
    sign_clip,
    site_signer,
)
from tasks.provenance.identity import SiteIdentity, keygen, load_identity
from tasks.provenance.trace import trace_file

__all__ = [
    "MIME",
    "Credentials",
    "SiteIdentity",
    "clip_credentials",
    "keygen",
    "load_identity",
    "manifest_definition",
    "read_credentials",
    "sign_clip",
    "site_signer",
    "trace_file",
]
