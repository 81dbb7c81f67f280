//! The blocking part of SAML verification: xmlsec checks every signature with the provider's
//! certificates (allow-listed algorithms) and reduces the document to what they sign, which is then
//! parsed; for an encrypted assertion, the signed Response's `EncryptedAssertion` is decrypted and
//! checked like a plain one.
//!
//! **What is signed is what xmlsec digested.** The signed content is taken as xmlsec's pre-digest
//! buffer of the verified Reference: the signed element, enveloped signature removed, in exclusive
//! canonical form: the very bytes whose digest the signature covers (`ReduceMode::PreDigest`). Of a
//! Response whose Assertion is signed too it is the Response's (which holds the Assertion). Nothing
//! of the received document outside those bytes can reach the parser. It is also the cheapest
//! reduction: samael's others match the canonical form back onto the received document's tree
//! (parsing it twice more), prune that tree and serialise it again, which cost half again as much as
//! the verification itself. The xmlsec calls are `rolegate_xmlsec`'s: the steps of samael's
//! pre-digest reduction with each provider's public keys decoded once per metadata document rather
//! than on every call (with OpenSSL 3.0 that decoding cost about as much as the check).

use super::{decrypt, shape, Result, SamlError, ALLOWED_ALGORITHMS};
use openssl::pkey::{PKey, Private};
use rolegate_xmlsec::{verify_pre_digest, VerifyingKeys};
use samael::schema::{Assertion, Response};

/// xmlsec verification of every signature in `xml` with `keys` (allow-listed algorithms), and
/// the document reduced to what they sign: the verified Reference's pre-digest form (that of the
/// Response when several are signed).
fn reduce(xml: &str, keys: &VerifyingKeys) -> Result<String> {
    let refused = |e: String| {
        SamlError::Invalid(format!(
            "signature does not verify with the provider's certificates: {e}"
        ))
    };
    let mut signed = verify_pre_digest(xml, keys, ALLOWED_ALGORITHMS).map_err(refused)?;
    if signed.len() == 1 {
        return Ok(signed.remove(0));
    }
    let mut responses: Vec<String> = signed
        .into_iter()
        .filter(|s| {
            root_element(s).is_some_and(|(ns, n)| ns == shape::NS_PROTOCOL && n == "Response")
        })
        .collect();
    match responses.len() {
        1 => Ok(responses.remove(0)),
        n => Err(refused(format!(
            "of its signed References {n} are a Response: which one is meant is ambiguous"
        ))),
    }
}

/// The blocking part: xmlsec verification and reduction to the signed content, then parsing it.
pub fn verify_blocking(xml: &str, keys: &VerifyingKeys) -> Result<Assertion> {
    let reduced = reduce(xml, keys)?;
    // serde does not look at the root's name: decide on it first.
    match root_element(&reduced)
        .as_ref()
        .map(|(ns, n)| (ns.as_str(), n.as_str()))
    {
        Some((shape::NS_PROTOCOL, "Response")) => reduced
            .parse::<Response>()
            .map_err(|e| SamlError::Invalid(format!("the signed Response does not parse: {e}")))?
            .assertion
            .ok_or_else(|| SamlError::Invalid("the signed Response holds no assertion".into())),
        Some((shape::NS_ASSERTION, "Assertion")) => reduced
            .parse::<Assertion>()
            .map_err(|e| SamlError::Invalid(format!("the signed Assertion does not parse: {e}"))),
        other => Err(SamlError::Invalid(format!(
            "the signed content is {other:?}, not a Response or an Assertion"
        ))),
    }
}

/// The blocking part for an encrypted assertion: the Response's signature verified first; then
/// the `EncryptedAssertion` taken from the signed content (checked again), decrypted with the first
/// of `keys` that opens it, and the plaintext checked like a plain Assertion (a signature inside it
/// must verify with `certs` too) and parsed. Returns the Assertion and the decrypted document's
/// shape facts (ID, Issuer, NameID qualifiers, whether it is signed).
pub fn verify_encrypted_blocking(
    xml: &str,
    certs: &VerifyingKeys,
    keys: &[PKey<Private>],
) -> Result<(Assertion, shape::Shape)> {
    let reduced = reduce(xml, certs)?;
    match root_element(&reduced)
        .as_ref()
        .map(|(ns, n)| (ns.as_str(), n.as_str()))
    {
        Some((shape::NS_PROTOCOL, "Response")) => {}
        other => {
            return Err(SamlError::Invalid(format!(
                "the signed content is {other:?}, not the Response around the EncryptedAssertion"
            )))
        }
    }
    let parts = shape::encrypted_parts(&reduced)?;
    let plain = decrypt::decrypt(&parts, keys)
        .map_err(|e| SamlError::Invalid(format!("decryption: {e}")))?;
    let mut facts = shape::Shape::default();
    shape::check_decrypted(&plain, &mut facts)?;
    let text = if facts.assertion_signed {
        let inner = reduce(&plain, certs)
            .map_err(|e| SamlError::Invalid(format!("the decrypted Assertion's signature: {e}")))?;
        match root_element(&inner)
            .as_ref()
            .map(|(ns, n)| (ns.as_str(), n.as_str()))
        {
            Some((shape::NS_ASSERTION, "Assertion")) => inner,
            other => {
                return Err(SamlError::Invalid(format!(
                    "the decrypted assertion's signed content is {other:?}, not the Assertion"
                )))
            }
        }
    } else {
        plain
    };
    let assertion = text
        .parse::<Assertion>()
        .map_err(|e| SamlError::Invalid(format!("the decrypted Assertion does not parse: {e}")))?;
    Ok((assertion, facts))
}

fn root_element(xml: &str) -> Option<(String, String)> {
    let mut reader = quick_xml::NsReader::from_str(xml);
    loop {
        match reader.read_resolved_event().ok()? {
            (ns, quick_xml::events::Event::Start(e)) | (ns, quick_xml::events::Event::Empty(e)) => {
                let ns = match ns {
                    quick_xml::name::ResolveResult::Bound(n) => {
                        String::from_utf8_lossy(n.as_ref()).into_owned()
                    }
                    _ => String::new(),
                };
                return Some((
                    ns,
                    String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                ));
            }
            (_, quick_xml::events::Event::Eof) => return None,
            _ => {}
        }
    }
}
