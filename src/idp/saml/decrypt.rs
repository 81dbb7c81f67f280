//! Decrypting an `EncryptedAssertion` with rolegate's own keys, directly with OpenSSL: the content
//! key unwrapped with RSA-OAEP (each of our keys tried, for rotation), the assertion decrypted with
//! AES-GCM, whose tag authenticates it. Only the algorithms the shape check allows are known here
//! at all; lengths are checked before any slice is taken, so that no input panics; the plaintext
//! is bounded and must be UTF-8.
//!
//! samael's own decryption is not used: it accepts RSA 1.5 and AES-CBC, knows only AES-128-GCM,
//! ignores the OAEP digest, slices the ciphertext before checking its length (a short one panics)
//! and cuts invalid UTF-8 down to a guessed element instead of refusing it.
//!
//! Runs on the blocking pool (the RSA private-key operation costs about as much as a signature
//! verification), after the Response's signature has been verified.

use super::shape::{self, EncryptedKey, Encryption};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::symm::Cipher;

/// Largest decrypted assertion, in bytes (as large as a whole Response may be).
pub const MAX_PLAINTEXT_BYTES: usize = shape::MAX_XML_BYTES;
/// AES-GCM's IV, as XML-Enc 1.1 prefixes it to the ciphertext.
const GCM_IV_BYTES: usize = 12;
/// AES-GCM's tag, as XML-Enc 1.1 appends it.
const GCM_TAG_BYTES: usize = 16;

/// Why an encrypted assertion does not decrypt. Each variant is a precise audit reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// An algorithm outside the allow-list (the shape check refuses these first).
    #[error("{0} is not an allowed algorithm here")]
    Algorithm(String),
    /// A `CipherValue` that is not base64.
    #[error("{0} is not base64")]
    Base64(&'static str),
    /// The ciphertext is too short or too long.
    #[error("the ciphertext is {0} bytes; AES-GCM needs 12 (IV) + 16 (tag) and at most {max} in all", max = MAX_PLAINTEXT_BYTES + GCM_IV_BYTES + GCM_TAG_BYTES)]
    CiphertextLength(usize),
    /// No `EncryptedKey` opens with any of our keys.
    #[error(
        "no EncryptedKey opens with rolegate's decryption key(s) (encrypted for another key?)"
    )]
    NoKey,
    /// The unwrapped key has the wrong length for the content algorithm.
    #[error("the unwrapped content key is {got} bytes; {data} needs {want}")]
    KeyLength {
        /// Its length.
        got: usize,
        /// What the algorithm needs.
        want: usize,
        /// The algorithm.
        data: String,
    },
    /// The AES-GCM tag does not verify: the ciphertext, IV or tag was changed.
    #[error("the AES-GCM tag does not verify (ciphertext altered)")]
    Tag,
    /// The plaintext is not UTF-8.
    #[error("the decrypted assertion is not UTF-8")]
    Utf8,
    /// An OpenSSL failure outside the data's control.
    #[error("openssl: {0}")]
    Openssl(String),
}

fn b64(value: &str, what: &'static str) -> Result<Vec<u8>, DecryptError> {
    let compact: Vec<u8> = value.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| DecryptError::Base64(what))
}

fn content_cipher(alg: &str) -> Result<Cipher, DecryptError> {
    match alg {
        "http://www.w3.org/2009/xmlenc11#aes128-gcm" => Ok(Cipher::aes_128_gcm()),
        "http://www.w3.org/2009/xmlenc11#aes192-gcm" => Ok(Cipher::aes_192_gcm()),
        "http://www.w3.org/2009/xmlenc11#aes256-gcm" => Ok(Cipher::aes_256_gcm()),
        other => Err(DecryptError::Algorithm(other.chars().take(80).collect())),
    }
}

fn digest(alg: Option<&str>) -> Result<MessageDigest, DecryptError> {
    match alg {
        None | Some("http://www.w3.org/2000/09/xmldsig#sha1") => Ok(MessageDigest::sha1()),
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => Ok(MessageDigest::sha256()),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha384") => Ok(MessageDigest::sha384()),
        Some("http://www.w3.org/2001/04/xmlenc#sha512") => Ok(MessageDigest::sha512()),
        Some(other) => Err(DecryptError::Algorithm(other.chars().take(80).collect())),
    }
}

fn mgf(key: &EncryptedKey) -> Result<MessageDigest, DecryptError> {
    match (key.algorithm.as_str(), key.mgf.as_deref()) {
        // rsa-oaep-mgf1p: MGF1 with SHA-1, always.
        ("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", None) => Ok(MessageDigest::sha1()),
        (
            "http://www.w3.org/2009/xmlenc11#rsa-oaep",
            None | Some("http://www.w3.org/2009/xmlenc11#mgf1sha1"),
        ) => Ok(MessageDigest::sha1()),
        (
            "http://www.w3.org/2009/xmlenc11#rsa-oaep",
            Some("http://www.w3.org/2009/xmlenc11#mgf1sha224"),
        ) => Ok(MessageDigest::sha224()),
        (
            "http://www.w3.org/2009/xmlenc11#rsa-oaep",
            Some("http://www.w3.org/2009/xmlenc11#mgf1sha256"),
        ) => Ok(MessageDigest::sha256()),
        (
            "http://www.w3.org/2009/xmlenc11#rsa-oaep",
            Some("http://www.w3.org/2009/xmlenc11#mgf1sha384"),
        ) => Ok(MessageDigest::sha384()),
        (
            "http://www.w3.org/2009/xmlenc11#rsa-oaep",
            Some("http://www.w3.org/2009/xmlenc11#mgf1sha512"),
        ) => Ok(MessageDigest::sha512()),
        (alg, m) => Err(DecryptError::Algorithm(
            format!("{alg} with MGF {m:?}").chars().take(160).collect(),
        )),
    }
}

/// RSA-OAEP decryption of one wrapped key with one private key; `None` when it does not open.
fn unwrap_with(
    key: &EncryptedKey,
    wrapped: &[u8],
    label: Option<&[u8]>,
    private: &PKey<Private>,
) -> Result<Option<Vec<u8>>, DecryptError> {
    if wrapped.len() != private.size() {
        return Ok(None);
    }
    let md = digest(key.digest.as_deref())?;
    let mgf1 = mgf(key)?;
    let ossl = |e: openssl::error::ErrorStack| DecryptError::Openssl(e.to_string());
    let mut d = openssl::encrypt::Decrypter::new(private).map_err(ossl)?;
    d.set_rsa_padding(Padding::PKCS1_OAEP).map_err(ossl)?;
    d.set_rsa_oaep_md(md).map_err(ossl)?;
    d.set_rsa_mgf1_md(mgf1).map_err(ossl)?;
    if let Some(l) = label {
        d.set_rsa_oaep_label(l).map_err(ossl)?;
    }
    let mut out = vec![0u8; d.decrypt_len(wrapped).map_err(ossl)?];
    match d.decrypt(wrapped, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Ok(Some(out))
        }
        Err(_) => Ok(None),
    }
}

/// The content key: the first `EncryptedKey` that opens with one of `keys`.
fn content_key(enc: &Encryption, keys: &[PKey<Private>]) -> Result<Vec<u8>, DecryptError> {
    for k in &enc.keys {
        if !shape::KEY_TRANSPORT_METHODS.contains(&k.algorithm.as_str()) {
            return Err(DecryptError::Algorithm(
                k.algorithm.chars().take(80).collect(),
            ));
        }
        let wrapped = b64(&k.cipher_value, "the EncryptedKey's CipherValue")?;
        let label = k
            .oaep_params
            .as_deref()
            .map(|p| b64(p, "OAEPparams"))
            .transpose()?;
        for private in keys {
            if let Some(key) = unwrap_with(k, &wrapped, label.as_deref(), private)? {
                return Ok(key);
            }
        }
    }
    Err(DecryptError::NoKey)
}

/// Decrypts `enc` with the first of `keys` that opens one of its `EncryptedKey`s: the assertion's
/// XML text, at most [`MAX_PLAINTEXT_BYTES`].
pub fn decrypt(enc: &Encryption, keys: &[PKey<Private>]) -> Result<String, DecryptError> {
    let cipher = content_cipher(&enc.data_algorithm)?;
    let data = b64(&enc.cipher_value, "the EncryptedData's CipherValue")?;
    if data.len() <= GCM_IV_BYTES + GCM_TAG_BYTES
        || data.len() > MAX_PLAINTEXT_BYTES + GCM_IV_BYTES + GCM_TAG_BYTES
    {
        return Err(DecryptError::CiphertextLength(data.len()));
    }
    let key = content_key(enc, keys)?;
    if key.len() != cipher.key_len() {
        return Err(DecryptError::KeyLength {
            got: key.len(),
            want: cipher.key_len(),
            data: enc.data_algorithm.clone(),
        });
    }
    let (iv, rest) = data.split_at(GCM_IV_BYTES);
    let (body, tag) = rest.split_at(rest.len() - GCM_TAG_BYTES);
    let plain = openssl::symm::decrypt_aead(cipher, &key, Some(iv), &[], body, tag)
        .map_err(|_| DecryptError::Tag)?;
    if plain.len() > MAX_PLAINTEXT_BYTES {
        return Err(DecryptError::CiphertextLength(data.len()));
    }
    String::from_utf8(plain).map_err(|_| DecryptError::Utf8)
}

/// Encryption as an IdP does it, for the tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// AES-GCM with a new key and IV: (key, IV ‖ ciphertext ‖ tag).
    pub fn gcm(cipher: Cipher, plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut key = vec![0u8; cipher.key_len()];
        let mut iv = [0u8; GCM_IV_BYTES];
        openssl::rand::rand_bytes(&mut key).unwrap();
        openssl::rand::rand_bytes(&mut iv).unwrap();
        let mut tag = [0u8; GCM_TAG_BYTES];
        let body =
            openssl::symm::encrypt_aead(cipher, &key, Some(&iv), &[], plaintext, &mut tag).unwrap();
        let mut data = iv.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&tag);
        (key, data)
    }

    /// RSA-OAEP of `key` for `recipient` with the given digest, MGF1 digest and label.
    pub fn oaep(
        recipient: &PKey<Private>,
        key: &[u8],
        md: MessageDigest,
        mgf1: MessageDigest,
        label: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut e = openssl::encrypt::Encrypter::new(recipient).unwrap();
        e.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        e.set_rsa_oaep_md(md).unwrap();
        e.set_rsa_mgf1_md(mgf1).unwrap();
        if let Some(l) = label {
            e.set_rsa_oaep_label(l).unwrap();
        }
        let mut out = vec![0u8; e.encrypt_len(key).unwrap()];
        let n = e.encrypt(key, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// `plaintext` as an `EncryptedAssertion` for `recipient`: AES-256-GCM, rsa-oaep-mgf1p (SHA-1).
    pub fn encrypted_assertion(plaintext: &str, recipient: &PKey<Private>) -> String {
        let (key, data) = gcm(Cipher::aes_256_gcm(), plaintext.as_bytes());
        let wrapped = oaep(
            recipient,
            &key,
            MessageDigest::sha1(),
            MessageDigest::sha1(),
            None,
        );
        element(
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            &STANDARD.encode(data),
            &key_element(
                r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#,
                &STANDARD.encode(wrapped),
            ),
        )
    }

    /// An `EncryptedKey` with this `EncryptionMethod` element and wrapped key.
    pub fn key_element(method: &str, wrapped_b64: &str) -> String {
        format!(
            concat!(
                r#"<xenc:EncryptedKey>{method}"#,
                r#"<xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData>"#,
                r#"</xenc:EncryptedKey>"#
            ),
            method = method,
            wrapped = wrapped_b64
        )
    }

    /// An `EncryptedAssertion` with this content algorithm and ciphertext, its keys in the
    /// `EncryptedData`'s `KeyInfo`.
    pub fn element(data_alg: &str, data_b64: &str, keys: &str) -> String {
        format!(
            concat!(
                r#"<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">"#,
                r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
                r#"<xenc:EncryptionMethod Algorithm="{data_alg}"/>"#,
                r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">{keys}</ds:KeyInfo>"#,
                r#"<xenc:CipherData><xenc:CipherValue>{data}</xenc:CipherValue></xenc:CipherData>"#,
                r#"</xenc:EncryptedData></saml:EncryptedAssertion>"#
            ),
            data_alg = data_alg,
            keys = keys,
            data = data_b64,
        )
    }
}
