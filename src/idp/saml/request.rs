//! SP-initiated login: the `AuthnRequest` and its HTTP-Redirect encoding (raw DEFLATE, base64,
//! URL-encoded, RelayState alongside). Pure: the caller supplies the ID, the time and the endpoints.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use std::io::Write;

/// `SigAlg` of a signed HTTP-Redirect message.
pub const SIG_ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// An AuthnRequest to send.
#[derive(Debug, Clone)]
pub struct AuthnRequest<'a> {
    /// Our request ID (an NCName: starts with `_`).
    pub id: &'a str,
    /// When it is issued.
    pub issue_instant: DateTime<Utc>,
    /// The IdP's single sign-on endpoint.
    pub destination: &'a str,
    /// Our entity id.
    pub issuer: &'a str,
    /// Our assertion consumer service.
    pub acs_url: &'a str,
    /// `ForceAuthn="true"`: the IdP must authenticate the person afresh (a step-up), not reuse
    /// its own session.
    pub force_authn: bool,
    /// `RequestedAuthnContext` (Comparison `exact`): the authentication context classes asked
    /// for, e.g. the provider's MFA classes on a step-up; none asks for nothing.
    pub authn_contexts: &'a [String],
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

impl AuthnRequest<'_> {
    /// The request document.
    pub fn to_xml(&self) -> String {
        let mut requested = String::new();
        if !self.authn_contexts.is_empty() {
            requested.push_str(r#"<samlp:RequestedAuthnContext Comparison="exact">"#);
            for c in self.authn_contexts {
                requested.push_str("<saml:AuthnContextClassRef>");
                requested.push_str(&escape(c));
                requested.push_str("</saml:AuthnContextClassRef>");
            }
            requested.push_str("</samlp:RequestedAuthnContext>");
        }
        format!(
            concat!(
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#,
                r#" ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{dest}"{force}"#,
                r#" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<samlp:NameIDPolicy AllowCreate="true"/>"#,
                "{requested}",
                r#"</samlp:AuthnRequest>"#
            ),
            id = escape(self.id),
            instant = self
                .issue_instant
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            dest = escape(self.destination),
            force = if self.force_authn {
                r#" ForceAuthn="true""#
            } else {
                ""
            },
            acs = escape(self.acs_url),
            issuer = escape(self.issuer),
            requested = requested,
        )
    }

    /// The HTTP-Redirect binding URL: `destination?SAMLRequest=…&RelayState=…`.
    pub fn redirect_url(&self, relay_state: &str) -> std::io::Result<String> {
        self.redirect_url_signed(relay_state, None)
    }

    /// [`Self::redirect_url`], signed when a key is given: `SigAlg` RSA-SHA256 and a `Signature`
    /// over the URL-encoded `SAMLRequest`, `RelayState` and `SigAlg`, in that order (the binding's
    /// section 3.4.4.1).
    pub fn redirect_url_signed(
        &self,
        relay_state: &str,
        key_pkcs8_der: Option<&[u8]>,
    ) -> std::io::Result<String> {
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
        enc.write_all(self.to_xml().as_bytes())?;
        let deflated = enc.finish()?;
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("SAMLRequest", &STANDARD.encode(deflated));
        if !relay_state.is_empty() {
            query.append_pair("RelayState", relay_state);
        }
        if let Some(der) = key_pkcs8_der {
            query.append_pair("SigAlg", SIG_ALG_RSA_SHA256);
            let signed_part = query.finish();
            let signature = rsa_sha256(der, signed_part.as_bytes())?;
            query = form_urlencoded::Serializer::new(signed_part);
            query.append_pair("Signature", &STANDARD.encode(signature));
        }
        let sep = if self.destination.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{}", self.destination, query.finish()))
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-256 of `data` under a PKCS#8 key.
fn rsa_sha256(key_pkcs8_der: &[u8], data: &[u8]) -> std::io::Result<Vec<u8>> {
    let key = openssl::pkey::PKey::private_key_from_pkcs8(key_pkcs8_der)
        .map_err(std::io::Error::other)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)
        .map_err(std::io::Error::other)?;
    signer.update(data).map_err(std::io::Error::other)?;
    signer.sign_to_vec().map_err(std::io::Error::other)
}
