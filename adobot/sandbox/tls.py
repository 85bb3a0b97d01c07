"""A certificate for the sandbox's TLS listener, made on start with `cryptography`: valid for
127.0.0.1 and localhost for a day, trusted by nobody but a client given its file (the tests and
azure-identity's ``connection_verify``). MSAL refuses an authority that is not https, so the
sandbox's Entra routes need one."""
from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files in ``folder``: a self-signed CA certificate for loopback."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adobot sandbox")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "sandbox-ca.pem", folder / "sandbox-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


def server_context() -> tuple[ssl.SSLContext, Path, tempfile.TemporaryDirectory]:
    """A server TLS context, the certificate file a client trusts, and the folder holding them
    (removed when the sandbox stops)."""
    folder = tempfile.TemporaryDirectory(prefix="adobot-sandbox-tls-")
    cert_file, key_file = make_certificate(Path(folder.name))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file, folder
