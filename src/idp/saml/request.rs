//! SP-initiated login: the `AuthnRequest` and its HTTP-Redirect encoding (raw DEFLATE, base64,
//! URL-encoded, RelayState alongside). Pure: the caller supplies the ID, the time and the endpoints.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use std::io::Write;

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
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
        enc.write_all(self.to_xml().as_bytes())?;
        let deflated = enc.finish()?;
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("SAMLRequest", &STANDARD.encode(deflated));
        if !relay_state.is_empty() {
            query.append_pair("RelayState", relay_state);
        }
        let sep = if self.destination.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{}", self.destination, query.finish()))
    }
}
