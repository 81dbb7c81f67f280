//! A SAML identity provider for the tests: an RSA key and its certificate, metadata naming it, and
//! assertions and Responses signed by xmlsec (samael's `sign_xml`) as an IdP signs them.

use crate::config::saml_metadata::IdpMetadata;
use crate::config::{MetadataSource, SamlProvider, SamlSettings, SpDecryption};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::DateTime;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use samael::crypto::{Crypto, CryptoProvider};

/// The test IdP's entity id.
pub const IDP: &str = "https://idp.example/saml";
/// The authentication context of a password sign-in.
pub const PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";

/// rolegate's SAML settings in the tests: the service provider at `https://sp.example`, 60 seconds
/// of clock skew, responses of up to 5 minutes, and `decryption`.
pub fn sp_settings(decryption: Option<SpDecryption>) -> SamlSettings {
    SamlSettings {
        entity_id: "https://sp.example/saml/metadata".into(),
        acs_url: "https://sp.example/saml/acs".into(),
        metadata_url: "https://sp.example/saml/metadata".into(),
        max_clock_skew_seconds: 60,
        max_response_age_seconds: 300,
        max_concurrent_verifications: 2,
        login_timeout_seconds: 600,
        signing: None,
        decryption,
    }
}

/// The provider `corp` with `metadata` (its source a file that is not read), whose
/// `mfa_authn_contexts` count as MFA.
pub fn provider(metadata: Option<IdpMetadata>, mfa_authn_contexts: &[&str]) -> SamlProvider {
    SamlProvider {
        name: "corp".into(),
        source: MetadataSource::File("/nonexistent".into()),
        metadata,
        refresh_seconds: 3600,
        accounts: None,
        allow_idp_initiated: false,
        mfa_authn_contexts: mfa_authn_contexts.iter().map(|c| c.to_string()).collect(),
        groups_attribute: "groups".into(),
        groups_delimiter: None,
        email_attribute: "email".into(),
        email_always_verified: false,
    }
}

/// A new 2048-bit RSA key.
pub fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
}

/// A self-signed certificate of `key`, valid for 30 days from now.
pub fn certificate(key: &PKey<Private>) -> Vec<u8> {
    use openssl::{asn1::Asn1Time, x509::X509};
    let mut b = X509::builder().unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

/// IdP metadata for [`IDP`] with `key`'s certificate for signing.
pub fn metadata_xml(key: &PKey<Private>) -> String {
    format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" "#,
            r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{idp}">"#,
            r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}"#,
            r#"</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/redirect"/>"#,
            r#"</md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
        idp = IDP,
        cert = STANDARD.encode(certificate(key)),
    )
}

/// A signature template (digest and value filled in by xmlsec) for the element with `id`.
pub fn template(id: &str) -> String {
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
            r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#,
            r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue></ds:Signature>"#
        ),
        id = id
    )
}

/// Fills in every signature template of `xml` with `key`.
pub fn sign(xml: &str, key: &PKey<Private>) -> String {
    Crypto::sign_xml(xml, &key.private_key_to_der().unwrap()).expect("xmlsec signs")
}

/// What a test assertion says.
#[derive(Debug, Clone)]
pub struct Claims<'a> {
    /// Its ID.
    pub id: &'a str,
    /// The Issuer, as written.
    pub issuer: &'a str,
    /// The NameID's text, as written.
    pub name_id: &'a str,
    /// The SP's entity id.
    pub audience: &'a str,
    /// The SP's ACS.
    pub recipient: &'a str,
    /// Issue time (epoch seconds); valid for five minutes from then.
    pub now: i64,
    /// Attributes: name and values.
    pub attributes: Vec<(&'a str, Vec<&'a str>)>,
    /// The AuthnStatement's `AuthnContextClassRef`, as written.
    pub authn_context: &'a str,
}

impl<'a> Claims<'a> {
    /// An assertion of [`IDP`] about `name_id` for the SP `audience` with ACS `recipient`.
    pub fn new(name_id: &'a str, audience: &'a str, recipient: &'a str, now: i64) -> Self {
        Self {
            id: "a1",
            issuer: IDP,
            name_id,
            audience,
            recipient,
            now,
            attributes: Vec::new(),
            authn_context: PASSWORD,
        }
    }

    /// Adds an attribute.
    pub fn attribute(mut self, name: &'a str, values: &[&'a str]) -> Self {
        self.attributes.push((name, values.to_vec()));
        self
    }
}

fn iso(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The assertion (self-contained namespaces), with a signature template when `signed`.
pub fn assertion(c: &Claims<'_>, signed: bool) -> String {
    let attributes: String = c
        .attributes
        .iter()
        .map(|(name, values)| {
            let values: String = values
                .iter()
                .map(|v| format!("<saml:AttributeValue>{}</saml:AttributeValue>", escape(v)))
                .collect();
            format!(
                r#"<saml:Attribute Name="{}">{values}</saml:Attribute>"#,
                escape(name)
            )
        })
        .collect();
    format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>{sig}"#,
            r#"<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{name_id}</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{later}" Recipient="{acs}"/></saml:SubjectConfirmation></saml:Subject>"#,
            r#"<saml:Conditions NotBefore="{now}" NotOnOrAfter="{later}"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{now}"><saml:AuthnContext><saml:AuthnContextClassRef>{context}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
            r#"<saml:AttributeStatement>{attributes}</saml:AttributeStatement>"#,
            r#"</saml:Assertion>"#
        ),
        id = c.id,
        now = iso(c.now),
        later = iso(c.now + 300),
        issuer = escape(c.issuer),
        name_id = escape(c.name_id),
        acs = escape(c.recipient),
        aud = escape(c.audience),
        attributes = attributes,
        context = escape(c.authn_context),
        sig = if signed {
            template(c.id)
        } else {
            String::new()
        },
    )
}

/// Which element of a Response carries the IdP's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// The Response (the Assertion inside is unsigned).
    Response,
    /// The Assertion (the Response is unsigned).
    Assertion,
}

/// A Response of [`IDP`] (ID: the assertion's, then `-response`) around the assertion of `c`,
/// signed by `key` where `signed` says.
pub fn response(c: &Claims<'_>, key: &PKey<Private>, signed: Signed) -> String {
    let inner = assertion(c, signed == Signed::Assertion);
    response_around(c, &inner, key, signed == Signed::Response)
}

/// A Response of [`IDP`], signed by `key`, around the assertion of `c` encrypted for `recipient`
/// (RSA-OAEP and AES-256-GCM).
pub fn encrypted_response(
    c: &Claims<'_>,
    key: &PKey<Private>,
    recipient: &PKey<Private>,
) -> String {
    let inner = super::decrypt::testing::encrypted_assertion(&assertion(c, false), recipient);
    response_around(c, &inner, key, true)
}

fn response_around(c: &Claims<'_>, inner: &str, key: &PKey<Private>, signed: bool) -> String {
    let xml = format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
            r#"ID="{id}-response" Version="2.0" IssueInstant="{now}" Destination="{acs}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>{sig}"#,
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            r#"{assertion}</samlp:Response>"#
        ),
        now = iso(c.now),
        acs = escape(c.recipient),
        issuer = escape(c.issuer),
        id = c.id,
        sig = if signed {
            template(&format!("{}-response", c.id))
        } else {
            String::new()
        },
        assertion = inner,
    );
    sign(&xml, key)
}
