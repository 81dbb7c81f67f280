"""A real SAML identity provider for rolegate's tests: pysaml2's `Server` with an RSA-2048 key made
here, producing fresh Responses (Response and/or Assertion signed, RSA-SHA256) for rolegate's own SP
metadata, and parsing rolegate's real AuthnRequests.

For the attack corpus, `sign()` signs any document the way an IdP (or an attacker with a key) would,
through the xmlsec1 command line: a signature template with the given algorithms, reference and
transforms is inserted and `xmlsec1 --sign` fills it in.

Encrypted assertions: pysaml2 encrypts for the SP metadata's `use="encryption"` certificate by
running `xmlsec1 --encrypt` with a template it builds itself, always 3DES-CBC content encryption
(`pre_encryption_part`'s default, which `_encrypt_assertion` does not let a caller change) and
RSA-OAEP-MGF1P key transport. `response_xml(encryption=(content, key transport))` keeps pysaml2's
whole flow (sign the Assertion, encrypt it, sign the Response) and only gives that xmlsec1 call a
template with other algorithms, e.g. AES-256-GCM. `encrypt_raw()` encrypts arbitrary bytes with the
`cryptography` package, for plaintexts no IdP would produce.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import subprocess
import tempfile
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

XMLSEC1 = "/usr/bin/xmlsec1"
NS_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"
AC_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
AC_MFA = "urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor"
SIG = {
    "rsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "rsa-sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "hmac-sha1": "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
    "rsa-md5": "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
}
DIGEST = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha1": "http://www.w3.org/2000/09/xmldsig#sha1",
}
ENC = {
    "aes256-gcm": "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "aes128-gcm": "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "aes128-cbc": "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    "tripledes-cbc": "http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
    "rsa-oaep-mgf1p": "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    "rsa-1_5": "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
}
# xmlsec1's --session-key for each content algorithm.
SESSION_KEY = {"aes256-gcm": "aes-256", "aes128-gcm": "aes-128", "aes128-cbc": "aes-128",
               "tripledes-cbc": "des-192"}
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


def make_key_pair(workdir: Path, name: str, bits: int = 2048) -> tuple[Path, Path, str]:
    """(key.pem, cert.pem, base64 DER certificate) of a new self-signed RSA certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path = workdir / f"{name}.key.pem"
    cert_path = workdir / f"{name}.cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    return key_path, cert_path, der_b64


def idp_metadata(entity_id: str, sso_url: str, certs_b64: list[str]) -> str:
    """IdP metadata as an IdP publishes it (one KeyDescriptor per signing certificate)."""
    keys = "".join(
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{c}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for c in certs_b64
    )
    return (
        '<?xml version="1.0"?>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{keys}"
        f'<md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" Location="{sso_url}"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


class SamlIdp:
    """pysaml2 as the IdP `entity_id`, with its own key; rolegate's SP metadata loaded later."""

    def __init__(self, workdir: Path, entity_id: str = "https://idp.example.test/saml"):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.entity_id = entity_id
        self.sso_url = "https://idp.example.test/sso/redirect"
        self.key, self.cert, self.cert_b64 = make_key_pair(workdir, "idp")
        self.metadata_path = workdir / "idp-metadata.xml"
        self.metadata_path.write_text(idp_metadata(entity_id, self.sso_url, [self.cert_b64]))
        self.server: Server | None = None
        self.sp_entity_id = ""
        self.acs_url = ""

    def trust_sp(self, sp_metadata: str, want_signed_requests: bool = False) -> None:
        """Loads rolegate's SP metadata (as served at /saml/metadata); with `want_signed_requests`
        pysaml2 refuses an AuthnRequest whose signature does not verify with the metadata's
        certificate."""
        (self.workdir / "sp-metadata.xml").write_text(sp_metadata)
        config = IdPConfig().load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": XMLSEC1,
                "key_file": str(self.key),
                "cert_file": str(self.cert),
                "metadata": {"local": [str(self.workdir / "sp-metadata.xml")]},
                "service": {
                    "idp": {
                        "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
                        "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None}},
                        "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                        "sign_response": True,
                        "sign_assertion": True,
                        "want_authn_requests_signed": want_signed_requests,
                    }
                },
            }
        )
        self.server = Server(config=config)
        self.sp_entity_id = re.search(r'entityID="([^"]+)"', sp_metadata).group(1)
        self.acs_url = re.search(r'AssertionConsumerService [^>]*Location="([^"]+)"', sp_metadata).group(1)

    def response_xml(
        self,
        name_id: str = "alice@example.test",
        attributes: dict[str, list[str]] | None = None,
        in_response_to: str | None = None,
        sign_response: bool = True,
        sign_assertion: bool = True,
        authn_class: str = AC_PASSWORD,
        session_not_on_or_after: str | None = None,
        destination: str | None = None,
        encrypt: bool = False,
        encryption: tuple[str, str] | None = None,
        encrypt_cert: str | None = None,
    ) -> str:
        """A fresh Response from pysaml2, as XML text. With `encrypt` the assertion is encrypted
        for the SP metadata's encryption certificate (or `encrypt_cert`, PEM) the way pysaml2 does
        it (3DES-CBC); `encryption=(content, key transport)` (keys of `ENC`) gives pysaml2's xmlsec1
        call a template with those algorithms instead."""
        assert self.server is not None, "call trust_sp first"
        sec = self.server.sec
        original = sec.encrypt_assertion
        if encryption is not None:
            encrypt = True
            content, transport = encryption

            def with_template(statement, enc_key, template, key_type="des-192", node_xpath=None):
                template.encryption_method.algorithm = ENC[content]
                keys = template.key_info.encrypted_key
                for k in keys if isinstance(keys, list) else [keys]:
                    k.encryption_method.algorithm = ENC[transport]
                return original(statement, enc_key, template, key_type=SESSION_KEY[content],
                                node_xpath=node_xpath)

            sec.encrypt_assertion = with_template
        try:
            return self._create(name_id, attributes, in_response_to, sign_response, sign_assertion,
                                authn_class, session_not_on_or_after, destination, encrypt,
                                encrypt_cert)
        finally:
            sec.encrypt_assertion = original

    def _create(self, name_id, attributes, in_response_to, sign_response, sign_assertion,
                authn_class, session_not_on_or_after, destination, encrypt, encrypt_cert) -> str:
        resp = self.server.create_authn_response(
            identity=attributes or {},
            in_response_to=in_response_to,
            destination=destination or self.acs_url,
            sp_entity_id=self.sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
            authn={"class_ref": authn_class, "authn_auth": self.entity_id},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
            session_not_on_or_after=session_not_on_or_after,
            encrypt_assertion=encrypt,
            encrypt_cert_assertion=encrypt_cert,
        )
        return str(resp)

    def response(self, **kw) -> str:
        """A fresh signed Response, base64 (what a browser posts and AssumeRoleWithSAML takes)."""
        return b64(self.response_xml(**kw))

    def parse_authn_request(self, saml_request: str, relay_state: str | None = None,
                            sigalg: str | None = None, signature: str | None = None):
        """pysaml2's view of rolegate's AuthnRequest (HTTP-Redirect encoding); with `sigalg` and
        `signature`, the query signature is verified too."""
        assert self.server is not None
        return self.server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT,
                                               relay_state=relay_state, sigalg=sigalg,
                                               signature=signature)


def b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def unb64(s: str) -> str:
    return base64.b64decode(s).decode()


def element_id(xml: str, local: str) -> str:
    """The ID attribute of the first element with this local name."""
    m = re.search(rf"<(?:\w+:)?{local}\b[^>]*?\sID=\"([^\"]+)\"", xml)
    assert m, f"no {local} with an ID"
    return m.group(1)


def strip_signatures(xml: str) -> str:
    """The document without any ds:Signature element."""
    return re.sub(r"<((?:\w+:)?)Signature\b.*?</\1Signature>", "", xml, flags=re.S)


def signature_template(
    ref_uri: str,
    cert_b64: str,
    sig_alg: str = SIG["rsa-sha256"],
    digest_alg: str = DIGEST["sha256"],
    transforms: list[str] | None = None,
    extra_references: int = 0,
    c14n: str = EXC_C14N,
) -> str:
    transforms = transforms if transforms is not None else [ENVELOPED, EXC_C14N]
    tr = "".join(f'<ds:Transform Algorithm="{t}"/>' for t in transforms)
    ref = (
        f'<ds:Reference URI="{ref_uri}"><ds:Transforms>{tr}</ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{digest_alg}"/><ds:DigestValue></ds:DigestValue></ds:Reference>'
    )
    return (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        f'<ds:CanonicalizationMethod Algorithm="{c14n}"/><ds:SignatureMethod Algorithm="{sig_alg}"/>'
        f"{ref * (1 + extra_references)}</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>"
        f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></ds:Signature>"
    )


def insert_after_issuer(xml: str, element: str, fragment: str) -> str:
    """Inserts `fragment` right after the Issuer child of the first `element` (Response/Assertion)."""
    start = re.search(rf"<(?:\w+:)?{element}\b", xml)
    assert start, element
    issuer_end = re.compile(r"</(?:\w+:)?Issuer>").search(xml, start.end())
    assert issuer_end, "no Issuer"
    return xml[: issuer_end.end()] + fragment + xml[issuer_end.end():]


def sign(
    xml: str,
    element: str,
    key: Path,
    cert_b64: str,
    ref_uri: str | None = None,
    **template,
) -> str:
    """Signs `element` (Response or Assertion) of `xml` with xmlsec1, using a template built from
    `template` (algorithms, transforms, reference URI); returns the signed document."""
    ref = ref_uri if ref_uri is not None else "#" + element_id(xml, element)
    doc = insert_after_issuer(xml, element, signature_template(ref, cert_b64, **template))
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in.xml"
        out = Path(d) / "out.xml"
        src.write_text(doc)
        r = subprocess.run(
            [
                XMLSEC1, "--sign", "--privkey-pem", str(key),
                "--id-attr:ID", f"{NS_ASSERTION}:Assertion",
                "--id-attr:ID", f"{NS_PROTOCOL}:Response",
                "--output", str(out), str(src),
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, f"xmlsec1 --sign failed: {r.stderr}"
        return out.read_text()


def new_id() -> str:
    return "_" + uuid.uuid4().hex


def encrypt_raw(plaintext: bytes, cert_pem: Path, content: str = "aes256-gcm",
                transport: str = "rsa-oaep-mgf1p") -> str:
    """`plaintext` as a `saml:EncryptedAssertion` for the certificate's key, encrypted with the
    `cryptography` package: AES-GCM (IV ‖ ciphertext ‖ tag, as XML-Enc 1.1 says) and RSA-OAEP
    (SHA-1, MGF1-SHA-1) of the content key."""
    key_len = {"aes256-gcm": 32, "aes128-gcm": 16}[content]
    key = os.urandom(key_len)
    iv = os.urandom(12)
    data = iv + AESGCM(key).encrypt(iv, plaintext, None)
    public = x509.load_pem_x509_certificate(cert_pem.read_bytes()).public_key()
    wrapped = public.encrypt(key, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                               algorithm=hashes.SHA1(), label=None))
    return (
        f'<saml:EncryptedAssertion xmlns:saml="{NS_ASSERTION}">'
        '<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" '
        'Type="http://www.w3.org/2001/04/xmlenc#Element">'
        f'<xenc:EncryptionMethod Algorithm="{ENC[content]}"/>'
        '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>'
        f'<xenc:EncryptionMethod Algorithm="{ENC[transport]}"/>'
        f"<xenc:CipherData><xenc:CipherValue>{base64.b64encode(wrapped).decode()}</xenc:CipherValue>"
        "</xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>"
        f"<xenc:CipherData><xenc:CipherValue>{base64.b64encode(data).decode()}</xenc:CipherValue>"
        "</xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>"
    )


def self_contained(assertion: str, response: str) -> str:
    """The Assertion element cut out of `response`, with the namespace declarations of the
    Response's root copied onto it (so that it stands alone once decrypted, as pysaml2 makes it)."""
    root = re.search(r"<(?:\w+:)?Response\b[^>]*>", response).group(0)
    decls = " ".join(re.findall(r'xmlns(?::\w+)?="[^"]*"', root))
    return re.sub(r"^(<(?:\w+:)?Assertion\b)", rf"\1 {decls}", assertion, count=1)
