//! The demo identity provider: a minimal OpenID issuer inside rolegate for trying it out on one machine.
//! It issues ES256 ID tokens to anyone who asks, so configuration refuses it on a non-loopback address.
//! rolegate verifies its tokens exactly like any other provider's: discovery, JWKS, every check.

use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// Audience of demo tokens.
pub const DEMO_AUDIENCE: &str = "rolegate-demo";
/// Path under which the demo issuer lives.
pub const DEMO_PATH: &str = "/demo-idp";

/// A signing key and the issuer URL.
pub struct DemoIdp {
    issuer: String,
    kid: String,
    key: EncodingKey,
    jwk: Value,
}

impl DemoIdp {
    /// A demo issuer at `{public_url}/demo-idp` with a fresh P-256 key.
    pub fn new(public_url: &url::Url) -> anyhow::Result<Self> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?;
        let der = pair.to_pkcs8v1()?;
        let public = pair.public_key().as_ref();
        anyhow::ensure!(
            public.len() == 65 && public[0] == 4,
            "unexpected public key encoding"
        );
        let kid = hex::encode(
            &aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public).as_ref()[..8],
        );
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
        });
        Ok(Self {
            issuer: format!("{}{DEMO_PATH}", public_url.as_str().trim_end_matches('/')),
            kid,
            key: EncodingKey::from_ec_der(der.as_ref()),
            jwk,
        })
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/jwks", self.issuer),
            "id_token_signing_alg_values_supported": ["ES256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["id_token"],
        })
    }

    /// The public key set.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// An ID token for `sub` with extra claims, valid for an hour from `now`.
    pub fn token(
        &self,
        sub: &str,
        extra: &serde_json::Map<String, Value>,
        now: i64,
    ) -> anyhow::Result<String> {
        let mut claims = extra.clone();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(sub));
        claims.insert("aud".into(), json!(DEMO_AUDIENCE));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 3600));
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}
