"""The site's signing identity for Content Credentials: a certificate chain, its key, and the root readers trust.

``keygen`` makes a site root and a signing certificate for testing and small sites. The leaf carries what
C2PA's validator insists on (digitalSignature, EKU emailProtection, subject and authority key identifiers;
without any of them c2pa-python says only "the certificate is invalid"). A site with a CA-issued
certificate puts its chain (leaf first) in ``signer.pem``, its key in ``signer.key`` and the CA's root in
``root.pem``. Readers validate against ``root.pem`` as the trust anchor, so a clip of this site reads
"Trusted", not merely "Valid".
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from heirloom.errors import ProvenanceError
from heirloom.settings import provenance_settings

SIGNER_CERT = "signer.pem"
SIGNER_KEY = "signer.key"
ROOT_CERT = "root.pem"
ROOT_KEY = "root.key"
ALGORITHM = "es256"


@dataclass(frozen=True)
class SiteIdentity:
    chain_pem: bytes
    key_pem: bytes
    root_pem: bytes
    folder: str


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _name(organization: str, role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} {role}"),
        ]
    )


def _certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    days: int,
    ca: bool = False,
) -> x509.Certificate:
    """A CA certificate, or a signing leaf with what C2PA's validator asks of one (EKU and both key ids)."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(_usage(sign=not ca, ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def keygen(folder: Path, *, organization: str = "heirloom site", years: int = 2) -> SiteIdentity:
    """A new site root and signing certificate (ECDSA P-256) in ``folder``, which must not hold one yet."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = [n for n in (SIGNER_CERT, SIGNER_KEY, ROOT_CERT, ROOT_KEY) if (folder / n).exists()]
    if existing:
        raise ProvenanceError(
            f"{folder} already holds {', '.join(existing)}; an identity is never overwritten (clips signed with "
            "it would no longer be trusted): choose another folder"
        )
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = _name(organization, "root")
    root = _certificate(root_name, root_key.public_key(), root_name, root_key, days=365 * (years + 8), ca=True)
    leaf = _certificate(_name(organization, "clips"), leaf_key.public_key(), root_name, root_key, days=365 * years)

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    _write_private(folder / ROOT_KEY, key_pem(root_key))
    _write_private(folder / SIGNER_KEY, key_pem(leaf_key))
    (folder / SIGNER_CERT).write_bytes(pem(leaf) + pem(root))
    (folder / ROOT_CERT).write_bytes(pem(root))
    return load_identity(folder)


def load_identity(folder: Path | None = None) -> SiteIdentity:
    """The identity in ``folder``, else in the folder ``HEIRLOOM_PROVENANCE_DIR`` names."""
    if folder is None:
        configured = provenance_settings().dir
        if not configured:
            raise ProvenanceError(
                "no signing identity: set HEIRLOOM_PROVENANCE_DIR to a folder made by "
                "`heirloom provenance keygen DIR` (or holding a CA-issued signer.pem, signer.key and root.pem)"
            )
        folder = Path(configured)
    missing = [n for n in (SIGNER_CERT, SIGNER_KEY, ROOT_CERT) if not (folder / n).is_file()]
    if missing:
        raise ProvenanceError(
            f"{folder} lacks {', '.join(missing)}; make an identity with `heirloom provenance keygen`"
        )
    return SiteIdentity(
        chain_pem=(folder / SIGNER_CERT).read_bytes(),
        key_pem=(folder / SIGNER_KEY).read_bytes(),
        root_pem=(folder / ROOT_CERT).read_bytes(),
        folder=str(folder),
    )
