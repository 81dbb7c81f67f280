//! A software FIDO2 security key (one credential) plus the browser part that builds
//! clientDataJSON and the response JSON: "none" attestation, ES256 (P-256) credential, CTAP2
//! canonical CBOR. Shared by the WebAuthn tests (included with `#[path]`).
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sha::sha256;
use openssl::sign::Signer;
use serde_json::json;
use serde_json::Value;

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;

#[derive(Clone)]
pub struct SoftKey {
    key: EcKey<Private>,
    pub cred_id: Vec<u8>,
    /// Signature counter; incremented by `counter_step` before each assertion.
    pub counter: u32,
    /// 0 for a key without a counter.
    pub counter_step: u32,
    /// Whether the key reports user verification (PIN entered).
    pub uv: bool,
}

impl SoftKey {
    pub fn new() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let mut cred_id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut cred_id).unwrap();
        SoftKey {
            key,
            cred_id,
            counter: 0,
            counter_step: 1,
            uv: false,
        }
    }

    pub fn counterless() -> Self {
        SoftKey {
            counter_step: 0,
            ..SoftKey::new()
        }
    }

    pub fn id(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.cred_id)
    }

    fn flags(&self) -> u8 {
        if self.uv {
            FLAG_UP | FLAG_UV
        } else {
            FLAG_UP
        }
    }

    /// COSE_Key for the public key: {1: 2, 3: -7, -1: 1, -2: x, -3: y}.
    fn cose_public_key(&self) -> Vec<u8> {
        let mut ctx = BigNumContext::new().unwrap();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        self.key
            .public_key()
            .affine_coordinates(self.key.group(), &mut x, &mut y, &mut ctx)
            .unwrap();
        let mut out = Vec::new();
        cbor::map(&mut out, 5);
        cbor::int(&mut out, 1);
        cbor::int(&mut out, 2); // kty: EC2
        cbor::int(&mut out, 3);
        cbor::int(&mut out, -7); // alg: ES256
        cbor::int(&mut out, -1);
        cbor::int(&mut out, 1); // crv: P-256
        cbor::int(&mut out, -2);
        cbor::bytes(&mut out, &x.to_vec_padded(32).unwrap());
        cbor::int(&mut out, -3);
        cbor::bytes(&mut out, &y.to_vec_padded(32).unwrap());
        out
    }

    /// `navigator.credentials.create()` as seen from `origin`, with the
    /// authenticator scoping the credential to `rp_id`.
    pub fn make_credential(&self, challenge: &str, origin: &str, rp_id: &str) -> Value {
        let client_data = client_data("webauthn.create", challenge, origin);
        let mut auth_data = Vec::new();
        auth_data.extend_from_slice(&sha256(rp_id.as_bytes()));
        auth_data.push(self.flags() | FLAG_AT);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&u16::try_from(self.cred_id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&self.cred_id);
        auth_data.extend_from_slice(&self.cose_public_key());

        let mut attestation_object = Vec::new();
        cbor::map(&mut attestation_object, 3);
        cbor::text(&mut attestation_object, "fmt");
        cbor::text(&mut attestation_object, "none");
        cbor::text(&mut attestation_object, "attStmt");
        cbor::map(&mut attestation_object, 0);
        cbor::text(&mut attestation_object, "authData");
        cbor::bytes(&mut attestation_object, &auth_data);

        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
                "attestationObject": URL_SAFE_NO_PAD.encode(&attestation_object),
                "transports": ["usb"],
            },
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get()` as seen from `origin`; advances the counter.
    pub fn get_assertion(&mut self, challenge: &str, origin: &str, rp_id: &str) -> Value {
        self.counter += self.counter_step;
        let client_data = client_data("webauthn.get", challenge, origin);
        let mut auth_data = Vec::new();
        auth_data.extend_from_slice(&sha256(rp_id.as_bytes()));
        auth_data.push(self.flags());
        auth_data.extend_from_slice(&self.counter.to_be_bytes());

        let pkey = PKey::from_ec_key(self.key.clone()).unwrap();
        let mut signer = Signer::new(MessageDigest::sha256(), &pkey).unwrap();
        signer.update(&auth_data).unwrap();
        signer.update(&sha256(client_data.as_bytes())).unwrap();
        let signature = signer.sign_to_vec().unwrap(); // ASN.1 DER

        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
                "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
                "signature": URL_SAFE_NO_PAD.encode(&signature),
                "userHandle": null,
            },
            "clientExtensionResults": {},
        })
    }
}

/// clientDataJSON with the member order browsers use.
fn client_data(kind: &str, challenge: &str, origin: &str) -> String {
    format!(
        r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{origin}","crossOrigin":false}}"#
    )
}

/// Minimal CBOR encoder (RFC 8949) for the items an authenticator emits.
mod cbor {
    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        let m = major << 5;
        if n < 24 {
            out.push(m | n as u8);
        } else if n <= 0xff {
            out.push(m | 24);
            out.push(n as u8);
        } else if n <= 0xffff {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(m | 26);
            out.extend_from_slice(&u32::try_from(n).unwrap().to_be_bytes());
        }
    }
    pub fn int(out: &mut Vec<u8>, v: i64) {
        if v >= 0 {
            head(out, 0, v as u64);
        } else {
            head(out, 1, (-1 - v) as u64);
        }
    }
    pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        head(out, 2, b.len() as u64);
        out.extend_from_slice(b);
    }
    pub fn text(out: &mut Vec<u8>, s: &str) {
        head(out, 3, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    pub fn map(out: &mut Vec<u8>, entries: u64) {
        head(out, 5, entries);
    }
}
