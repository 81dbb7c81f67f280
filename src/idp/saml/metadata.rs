//! SAML metadata: writing rolegate's own SP metadata. Reading an IdP's `EntityDescriptor` is
//! [`crate::config::saml_metadata`]; fetching and refreshing it happen in the parent module.

use crate::config::saml_metadata::NS_METADATA;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The HTTP-POST binding.
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
/// NameID formats rolegate's SP metadata announces.
pub const NAME_ID_FORMATS: &[&str] = &[
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
];

/// What rolegate's SP metadata says.
#[derive(Debug, Clone)]
pub struct SpDescription<'a> {
    /// Our entity id (the audience of assertions).
    pub entity_id: &'a str,
    /// The assertion consumer service (HTTP-POST).
    pub acs_url: &'a str,
    /// Whether AuthnRequests are signed.
    pub requests_signed: bool,
    /// DER signing certificates.
    pub signing_certificates: &'a [Vec<u8>],
    /// DER encryption certificates (the current decryption key's, then the next one's), published
    /// with `use="encryption"` and the AES-GCM / RSA-OAEP methods only.
    pub encryption_certificates: &'a [Vec<u8>],
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// rolegate's SP metadata document.
pub fn sp_metadata(d: &SpDescription<'_>) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(&format!(
        r#"<md:EntityDescriptor xmlns:md="{NS_METADATA}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{}">"#,
        escape(d.entity_id)
    ));
    out.push_str(&format!(
        r#"<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="{}" WantAssertionsSigned="true">"#,
        d.requests_signed
    ));
    let key = |out: &mut String, usage: &str, der: &[u8], methods: &[&str]| {
        out.push_str(&format!(
            r#"<md:KeyDescriptor use="{usage}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"#,
            STANDARD.encode(der)
        ));
        for m in methods {
            out.push_str(&format!(r#"<md:EncryptionMethod Algorithm="{m}"/>"#));
        }
        out.push_str("</md:KeyDescriptor>");
    };
    for c in d.signing_certificates {
        key(&mut out, "signing", c, &[]);
    }
    // Exactly what decryption accepts: AES-GCM content, RSA-OAEP key transport.
    let methods: Vec<&str> = super::shape::DATA_ENCRYPTION_METHODS
        .iter()
        .chain(super::shape::KEY_TRANSPORT_METHODS)
        .copied()
        .collect();
    for c in d.encryption_certificates {
        key(&mut out, "encryption", c, &methods);
    }
    for f in NAME_ID_FORMATS {
        out.push_str(&format!("<md:NameIDFormat>{f}</md:NameIDFormat>"));
    }
    out.push_str(&format!(
        r#"<md:AssertionConsumerService Binding="{BINDING_POST}" Location="{}" index="0" isDefault="true"/>"#,
        escape(d.acs_url)
    ));
    out.push_str("</md:SPSSODescriptor></md:EntityDescriptor>");
    out
}
