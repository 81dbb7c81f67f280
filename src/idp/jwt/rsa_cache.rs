//! jsonwebtoken's crypto provider with RSA public keys parsed once. The default aws-lc provider
//! rebuilds the RSA key from its modulus and exponent for every signature it checks (a fresh key,
//! a fresh Montgomery context); this one keeps the parsed key of each (algorithm, n, e) it has seen
//! and verifies with it. Everything else — signing, ECDSA, EdDSA, keys given as DER, the checks of
//! algorithm against key family — is the default provider's. Verification stays
//! `jsonwebtoken::crypto::verify`; only the key object is reused.

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use jsonwebtoken::crypto::{aws_lc, CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use parking_lot::RwLock;
use std::sync::{Arc, Once};

/// Parsed keys kept at most; the set is emptied when full (providers publish a handful of keys).
const CAPACITY: usize = 64;

/// The provider rolegate installs for the process.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: aws_lc::DEFAULT_PROVIDER.signer_factory,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: DEFAULT_KEY_UTILS.rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key: DEFAULT_KEY_UTILS.rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key: DEFAULT_KEY_UTILS.ec_pub_components_from_private_key,
        ed_pub_components_from_private_key: DEFAULT_KEY_UTILS.ed_pub_components_from_private_key,
        compute_digest: DEFAULT_KEY_UTILS.compute_digest,
    },
};

const DEFAULT_KEY_UTILS: &KeyUtils = &aws_lc::DEFAULT_PROVIDER.key_utils;

struct Entry {
    alg: Algorithm,
    n: Vec<u8>,
    e: Vec<u8>,
    key: Arc<ParsedPublicKey>,
}

static PARSED: RwLock<Vec<Entry>> = RwLock::new(Vec::new());

/// Installs [`PROVIDER`] as jsonwebtoken's process default, once. If something used jsonwebtoken
/// before (and so fixed the default provider), that default stays: the results are the same,
/// only slower.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if CryptoProvider::install_default(&PROVIDER).is_err() {
            tracing::debug!(
                "jsonwebtoken's crypto provider was already chosen; RSA keys are parsed per token"
            );
        }
    });
}

fn rsa_parameters(alg: Algorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn new_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if let (Some(params), AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) =
        (rsa_parameters(*alg), key.family(), key.kind())
    {
        if let Some(parsed) = parsed_key(*alg, params, n, e) {
            return Ok(Box::new(CachedRsa {
                alg: *alg,
                key: parsed,
            }));
        }
    }
    (aws_lc::DEFAULT_PROVIDER.verifier_factory)(alg, key)
}

/// The parsed key for these components, parsing it the first time; `None` if they do not form a
/// key (the default provider then reports the error its own way).
fn parsed_key(
    alg: Algorithm,
    params: &'static RsaParameters,
    n: &[u8],
    e: &[u8],
) -> Option<Arc<ParsedPublicKey>> {
    let find = |entries: &[Entry]| {
        entries
            .iter()
            .find(|x| x.alg == alg && x.n == n && x.e == e)
            .map(|x| x.key.clone())
    };
    if let Some(k) = find(&PARSED.read()) {
        return Some(k);
    }
    let key = Arc::new(
        RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(params)
            .ok()?,
    );
    let mut entries = PARSED.write();
    if let Some(k) = find(&entries) {
        return Some(k);
    }
    if entries.len() >= CAPACITY {
        entries.clear();
    }
    entries.push(Entry {
        alg,
        n: n.to_vec(),
        e: e.to_vec(),
        key: key.clone(),
    });
    Some(key)
}

struct CachedRsa {
    alg: Algorithm,
    key: Arc<ParsedPublicKey>,
}

impl signature::Verifier<Vec<u8>> for CachedRsa {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        self.key
            .verify_sig(msg, signature)
            .map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for CachedRsa {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};

    fn rsa_key() -> (EncodingKey, DecodingKey) {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let pem = rsa.private_key_to_pem().unwrap();
        let enc = EncodingKey::from_rsa_pem(&pem).unwrap();
        let jwk = Jwk::from_encoding_key(&enc, Algorithm::RS256).unwrap();
        (enc, DecodingKey::from_jwk(&jwk).unwrap())
    }

    fn split(token: &str) -> (&str, &str) {
        let dot = token.rfind('.').unwrap();
        (&token[..dot], &token[dot + 1..])
    }

    fn verify_with(p: &CryptoProvider, alg: Algorithm, key: &DecodingKey, token: &str) -> bool {
        let (input, sig) = split(token);
        let sig =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        match (p.verifier_factory)(&alg, key) {
            Ok(v) => v.verify(input.as_bytes(), &sig).is_ok(),
            Err(_) => false,
        }
    }

    #[test]
    fn agrees_with_the_default_provider_on_good_and_tampered_signatures() {
        let (enc, dec) = rsa_key();
        for alg in [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::PS256,
            Algorithm::PS512,
        ] {
            let token =
                jsonwebtoken::encode(&Header::new(alg), &serde_json::json!({"sub": "a"}), &enc)
                    .unwrap();
            let mut tampered = token.clone().into_bytes();
            let mid = token.find('.').unwrap() + 3;
            tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            for t in [&token, &tampered] {
                // Twice: the second check uses the kept key.
                for _ in 0..2 {
                    assert_eq!(
                        verify_with(&PROVIDER, alg, &dec, t),
                        verify_with(&aws_lc::DEFAULT_PROVIDER, alg, &dec, t),
                        "{alg:?}"
                    );
                }
            }
            assert!(verify_with(&PROVIDER, alg, &dec, &token), "{alg:?}");
            assert!(!verify_with(&PROVIDER, alg, &dec, &tampered), "{alg:?}");
        }
    }

    #[test]
    fn a_key_is_used_only_for_the_algorithm_it_was_parsed_for() {
        let (enc, dec) = rsa_key();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &serde_json::json!({}), &enc)
                .unwrap();
        assert!(verify_with(&PROVIDER, Algorithm::RS256, &dec, &token));
        // The same key asked to check an RS256 signature as PS256 or RS512 must fail.
        assert!(!verify_with(&PROVIDER, Algorithm::PS256, &dec, &token));
        assert!(!verify_with(&PROVIDER, Algorithm::RS512, &dec, &token));
    }

    #[test]
    fn another_key_with_the_same_algorithm_does_not_verify() {
        let (enc, _) = rsa_key();
        let (_, other) = rsa_key();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &serde_json::json!({}), &enc)
                .unwrap();
        assert!(!verify_with(&PROVIDER, Algorithm::RS256, &other, &token));
    }

    #[test]
    fn hmac_and_ec_requests_go_to_the_default_provider() {
        let (_, dec) = rsa_key();
        // An RSA key asked for HS256 is refused by the default provider's family check.
        assert!((PROVIDER.verifier_factory)(&Algorithm::HS256, &dec).is_err());
        assert!((PROVIDER.verifier_factory)(&Algorithm::ES256, &dec).is_err());
    }
}
