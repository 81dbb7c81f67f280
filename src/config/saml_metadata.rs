//! SAML metadata of an identity provider: reading its `EntityDescriptor` (entity id, signing
//! certificates, single sign-on endpoint). Pure: fetching and refreshing happen in the SAML identity
//! provider, which also writes rolegate's own SP metadata.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use quick_xml::events::Event;
use quick_xml::NsReader;

/// Largest metadata document accepted.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;
/// `urn:oasis:names:tc:SAML:2.0:metadata`.
pub const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// The HTTP-Redirect binding.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// Why metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Not parseable.
    #[error("metadata is not well-formed XML: {0}")]
    Malformed(String),
    /// A DOCTYPE.
    #[error("metadata must not contain a DOCTYPE")]
    Doctype,
    /// Too large.
    #[error("metadata is larger than {MAX_METADATA_BYTES} bytes")]
    TooLarge,
    /// No `EntityDescriptor` with an `IDPSSODescriptor`.
    #[error("metadata has no EntityDescriptor with an IDPSSODescriptor")]
    NoIdp,
    /// More than one IdP and none chosen.
    #[error("metadata describes {0} identity providers; exactly one is supported")]
    SeveralIdps(usize),
    /// No signing certificate: samael would then skip signature verification (fail open).
    #[error("metadata of {0} has no signing certificate")]
    NoSigningCertificate(String),
    /// A certificate that does not parse or whose key is too weak.
    #[error("metadata of {entity}: signing certificate {index}: {why}")]
    BadCertificate {
        /// The entity id.
        entity: String,
        /// 1-based position.
        index: usize,
        /// What is wrong.
        why: String,
    },
}

/// What rolegate needs from an IdP's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    /// `entityID`: the exact Issuer of its Responses.
    pub entity_id: String,
    /// DER signing certificates (several during a rotation).
    pub signing_certificates: Vec<Vec<u8>>,
    /// The HTTP-Redirect single sign-on endpoint, if any.
    pub sso_redirect: Option<String>,
    /// Whether the IdP wants signed AuthnRequests.
    pub wants_signed_requests: bool,
}

#[derive(Default)]
struct Descriptor {
    entity_id: String,
    certs: Vec<String>,
    sso_redirect: Option<String>,
    wants_signed: bool,
}

/// Parses IdP metadata: an `EntityDescriptor`, or an `EntitiesDescriptor` holding exactly one IdP.
pub fn parse_idp(xml: &str) -> Result<IdpMetadata, MetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge);
    }
    let mut reader = NsReader::from_str(xml);
    let bad = |e: quick_xml::Error| MetadataError::Malformed(e.to_string());
    let mut path: Vec<String> = Vec::new();
    let mut found: Vec<Descriptor> = Vec::new();
    let mut current: Option<Descriptor> = None;
    let mut in_idp = false;
    let mut key_use_signing = false;
    let mut text = String::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(bad)?;
        let ns_is = |want: &str| matches!(&ns, quick_xml::name::ResolveResult::Bound(n) if n.as_ref() == want.as_bytes());
        match event {
            Event::DocType(_) => return Err(MetadataError::Doctype),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let attr = |name: &[u8]| -> Option<String> {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == name)
                        .and_then(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .ok()
                                .map(|v| v.into_owned())
                        })
                };
                match local.as_str() {
                    "EntityDescriptor" if ns_is(NS_METADATA) => {
                        current = Some(Descriptor {
                            entity_id: attr(b"entityID").unwrap_or_default(),
                            ..Descriptor::default()
                        });
                    }
                    "IDPSSODescriptor" if ns_is(NS_METADATA) => {
                        in_idp = true;
                        if let Some(d) = current.as_mut() {
                            d.wants_signed =
                                attr(b"WantAuthnRequestsSigned").as_deref() == Some("true");
                        }
                    }
                    "KeyDescriptor" if in_idp && ns_is(NS_METADATA) => {
                        key_use_signing =
                            attr(b"use").is_none_or(|u| u.is_empty() || u == "signing");
                    }
                    "SingleSignOnService"
                        if in_idp
                            && ns_is(NS_METADATA)
                            && attr(b"Binding").as_deref() == Some(BINDING_REDIRECT) =>
                    {
                        if let Some(d) = current.as_mut().filter(|d| d.sso_redirect.is_none()) {
                            d.sso_redirect = attr(b"Location");
                        }
                    }
                    _ => {}
                }
                text.clear();
                if !empty {
                    path.push(local);
                } else if local == "IDPSSODescriptor" {
                    in_idp = false;
                }
            }
            Event::Text(t) => {
                text.push_str(
                    &t.decode()
                        .map_err(|e| MetadataError::Malformed(e.to_string()))?,
                );
            }
            Event::End(_) => {
                let Some(local) = path.pop() else {
                    return Err(MetadataError::Malformed("unbalanced end tag".into()));
                };
                match local.as_str() {
                    "X509Certificate"
                        if in_idp
                            && key_use_signing
                            && path.iter().any(|p| p == "KeyDescriptor") =>
                    {
                        if let Some(d) = current.as_mut() {
                            d.certs.push(text.clone());
                        }
                    }
                    "IDPSSODescriptor" => {
                        in_idp = false;
                        if let Some(d) = current.as_mut() {
                            // Marks the descriptor as an IdP even with no certificate, so that
                            // the missing certificate is the reported problem.
                            if d.entity_id.is_empty() {
                                d.entity_id = " ".into();
                            }
                            found.push(Descriptor {
                                entity_id: d.entity_id.clone(),
                                certs: std::mem::take(&mut d.certs),
                                sso_redirect: d.sso_redirect.take(),
                                wants_signed: d.wants_signed,
                            });
                        }
                    }
                    "KeyDescriptor" => key_use_signing = false,
                    "EntityDescriptor" => current = None,
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let d = match found.len() {
        0 => return Err(MetadataError::NoIdp),
        1 => found.remove(0),
        n => return Err(MetadataError::SeveralIdps(n)),
    };
    let entity_id = d.entity_id.trim().to_string();
    if entity_id.is_empty() {
        return Err(MetadataError::Malformed(
            "EntityDescriptor has no entityID".into(),
        ));
    }
    let mut signing_certificates = Vec::new();
    for (i, c) in d.certs.iter().enumerate() {
        let bad = |why: String| MetadataError::BadCertificate {
            entity: entity_id.clone(),
            index: i + 1,
            why,
        };
        let compact: String = c.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| bad(format!("not base64: {e}")))?;
        check_certificate(&der).map_err(bad)?;
        if !signing_certificates.contains(&der) {
            signing_certificates.push(der);
        }
    }
    if signing_certificates.is_empty() {
        return Err(MetadataError::NoSigningCertificate(entity_id));
    }
    Ok(IdpMetadata {
        entity_id,
        signing_certificates,
        sso_redirect: d.sso_redirect,
        wants_signed_requests: d.wants_signed,
    })
}

/// A certificate must parse, and carry an RSA key of at least 2048 bits or an EC key.
pub fn check_certificate(der: &[u8]) -> Result<(), String> {
    let cert =
        openssl::x509::X509::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let key = cert
        .public_key()
        .map_err(|e| format!("no usable public key: {e}"))?;
    match key.id() {
        openssl::pkey::Id::RSA if key.bits() >= 2048 => Ok(()),
        openssl::pkey::Id::RSA => Err(format!(
            "RSA key of {} bits; at least 2048 are required",
            key.bits()
        )),
        openssl::pkey::Id::EC => Ok(()),
        other => Err(format!("key type {other:?} is not RSA or ECDSA")),
    }
}
