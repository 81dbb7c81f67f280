//! XML signature verification with xmlsec, with the signer's public keys decoded once.
//!
//! Every signature of a document is checked by xmlsec with one of the given keys, after its
//! algorithms are checked against an allow-list, and what each signs is returned as xmlsec's
//! pre-digest buffer of its verified References: the very bytes whose digest the signature covers.
//! The steps are samael's `reduce_xml_to_signed_with_allowed_algorithms` in its `PreDigest` mode,
//! but each key is handed to xmlsec from a public key decoded once (when the signer's metadata is
//! read): decoding a certificate with OpenSSL 3.0 costs about as much as checking the signature,
//! and samael decodes every certificate on every call.
//!
//! This crate is the only code of rolegate with `unsafe` (xmlsec and libxml2 calls); rolegate
//! itself forbids it. xmlsec's process-wide initialisation (and its shutdown) stay samael's:
//! [`ensure_init`] has samael run it once, before the first key is made here.

#![deny(missing_docs)]

use foreign_types::ForeignTypeRef;
use libxml::parser::Parser;
use libxml::tree::{Document, Node};
use openssl::pkey::{PKey, Public};
use openssl::x509::X509;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider};
use std::collections::HashSet;
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Once;

/// Declarations generated from the installed xmlsec headers by `build.rs`.
#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]
mod ffi {
    include!(concat!(env!("OUT_DIR"), "/xmlsec_ffi.rs"));
}

const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Why a document's signature is refused (the reason for the audit event).
pub type Refusal = String;

/// The public keys of a signer's certificates, decoded once.
#[derive(Clone, Default)]
pub struct VerifyingKeys {
    keys: Vec<PKey<Public>>,
    skipped: Vec<String>,
    /// The first certificate that decodes, for samael's initialisation of xmlsec.
    first: Option<CertificateDer>,
}

impl VerifyingKeys {
    /// The public keys of `certificates` (DER X.509). A certificate that does not decode is left
    /// out, and why is in [`Self::skipped`]; with none left every signature is refused.
    pub fn from_certificates(certificates: &[Vec<u8>]) -> Self {
        let mut out = Self::default();
        for (i, der) in certificates.iter().enumerate() {
            match X509::from_der(der).and_then(|c| c.public_key()) {
                Ok(k) => {
                    out.keys.push(k);
                    out.first
                        .get_or_insert_with(|| CertificateDer::from(der.clone()));
                }
                Err(e) => out.skipped.push(format!("certificate {}: {e}", i + 1)),
            }
        }
        out
    }

    /// Why certificates were left out, one line each.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Has samael initialise libxml2, xmlsec and its OpenSSL backend (once per process): its first
/// key load does. The document holds no signature, so nothing is verified (nor logged by xmlsec).
fn ensure_init(cert: &CertificateDer) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = Crypto::verify_signed_xml("<i/>", cert, None);
    });
}

/// An xmlsec key owned here until it is given to a signature context.
struct Key(NonNull<ffi::_xmlSecKey>);

impl Key {
    /// A verification key holding `pkey` (one more reference to it, released with the key).
    fn new(pkey: &PKey<Public>) -> Result<Self, Refusal> {
        let raw = pkey.as_ref().as_ptr();
        // SAFETY: `raw` is a live EVP_PKEY; the reference taken here is given to xmlsec, which
        // releases it when the key data is destroyed (or below on failure).
        unsafe {
            if openssl_sys::EVP_PKEY_up_ref(raw) != 1 {
                return Err("xmlsec: the key could not be referenced".into());
            }
            let data = ffi::xmlSecOpenSSLEvpKeyAdopt(raw.cast());
            if data.is_null() {
                openssl_sys::EVP_PKEY_free(raw);
                return Err("xmlsec: the key's type is not supported".into());
            }
            let Some(key) = NonNull::new(ffi::xmlSecKeyCreate()) else {
                ffi::xmlSecKeyDataDestroy(data);
                return Err("xmlsec: no key could be created".into());
            };
            if ffi::xmlSecKeySetValue(key.as_ptr(), data) < 0 {
                ffi::xmlSecKeyDataDestroy(data);
                ffi::xmlSecKeyDestroy(key.as_ptr());
                return Err("xmlsec: the key's value could not be set".into());
            }
            Ok(Self(key))
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the key is owned here (a key given to a context is forgotten).
        unsafe { ffi::xmlSecKeyDestroy(self.0.as_ptr()) }
    }
}

/// A signature context that keeps the verified References' pre-digest buffers.
struct Context(NonNull<ffi::xmlSecDSigCtx>);

impl Context {
    fn new(key: Key) -> Result<Self, Refusal> {
        // SAFETY: a context without a keys manager; it takes ownership of the key, destroyed with
        // the context.
        unsafe {
            let ctx = NonNull::new(ffi::xmlSecDSigCtxCreate(std::ptr::null_mut()))
                .ok_or("xmlsec: no signature context could be created")?;
            (*ctx.as_ptr()).flags |= ffi::XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
            (*ctx.as_ptr()).signKey = key.0.as_ptr();
            std::mem::forget(key);
            Ok(Self(ctx))
        }
    }

    /// Verifies the signature `node` (a `ds:Signature` of a document that outlives the call):
    /// the pre-digest buffers of its References, or `None` when it does not verify with the key.
    fn verify(&self, node: &Node) -> Result<Option<Vec<String>>, Refusal> {
        let ctx = self.0.as_ptr();
        // SAFETY: `node` belongs to a live document; the context and the reference contexts it
        // stores are read only while it lives.
        unsafe {
            if ffi::xmlSecDSigCtxVerify(ctx, node.node_ptr().cast()) < 0
                || (*ctx).status != ffi::xmlSecDSigStatus_xmlSecDSigStatusSucceeded
            {
                return Ok(None);
            }
            let list = std::ptr::addr_of_mut!((*ctx).signedInfoReferences);
            let mut out = Vec::new();
            for i in 0..ffi::xmlSecPtrListGetSize(list) {
                let r = ffi::xmlSecPtrListGetItem(list, i).cast::<ffi::xmlSecDSigReferenceCtx>();
                if r.is_null() || (*r).status != ffi::xmlSecDSigStatus_xmlSecDSigStatusSucceeded {
                    return Err("a Reference of the signature did not verify".into());
                }
                let buf = ffi::xmlSecDSigReferenceCtxGetPreDigestBuffer(r);
                if buf.is_null() {
                    return Err("a verified Reference has no pre-digest content".into());
                }
                let (data, size) = (ffi::xmlSecBufferGetData(buf), ffi::xmlSecBufferGetSize(buf));
                let bytes = if size == 0 || data.is_null() {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(data, size as usize)
                };
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| "a Reference's signed content is not UTF-8".to_string())?;
                out.push(text.to_string());
            }
            Ok(Some(out))
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: created by xmlSecDSigCtxCreate and destroyed once, with the key it owns.
        unsafe { ffi::xmlSecDSigCtxDestroy(self.0.as_ptr()) }
    }
}

/// Every signature of `xml` verified with one of `keys`, its signature and digest methods in
/// `allowed`: the pre-digest content of every verified Reference, in document order. Any
/// signature that does not verify, or uses a method not allowed, refuses the whole document.
pub fn verify_pre_digest(
    xml: &str,
    keys: &VerifyingKeys,
    allowed: &[AllowedSignatureAlgorithm],
) -> Result<Vec<String>, Refusal> {
    let Some(first) = &keys.first else {
        return Err("none of the signer's certificates decodes".into());
    };
    ensure_init(first);
    let mut doc = Parser::default()
        .parse_string(xml)
        .map_err(|e| format!("the document does not parse: {e:?}"))?;
    register_ids(&mut doc)?;
    let root = doc
        .get_root_element()
        .ok_or("the document has no root element")?;
    let mut signatures = Vec::new();
    find_signatures(&root, &mut signatures);
    if signatures.is_empty() {
        return Err("the document is not signed".into());
    }
    let mut signed = Vec::new();
    for sig in &signatures {
        check_algorithms(sig, allowed)?;
        let mut verified = None;
        for key in &keys.keys {
            if let Some(refs) = Context::new(Key::new(key)?)?.verify(sig)? {
                verified = Some(refs);
                break;
            }
        }
        signed.extend(verified.ok_or("a signature does not verify with the signer's keys")?);
    }
    Ok(signed)
}

/// Declares every `ID` attribute to libxml2 as an ID, so that a Reference's `#id` finds its
/// element; a value that is not an NCName, or one that occurs twice, refuses the document.
fn register_ids(doc: &mut Document) -> Result<(), Refusal> {
    let name = c"ID";
    let mut seen = HashSet::new();
    let mut todo: Vec<Node> = doc.get_root_element().into_iter().collect();
    while let Some(node) = todo.pop() {
        if let Some(id) = node.get_attribute("ID") {
            let value = CString::new(id.clone()).map_err(|_| format!("ID {id:?} holds a NUL"))?;
            // SAFETY: plain libxml2 calls on a live document and one of its nodes.
            unsafe {
                if libxml::bindings::xmlValidateNCName(value.as_ptr().cast(), 0) != 0 {
                    return Err(format!("ID {id:?} is not a valid XML ID"));
                }
                if !seen.insert(id.clone()) {
                    return Err(format!("ID {id:?} occurs more than once"));
                }
                let attr = libxml::bindings::xmlHasProp(node.node_ptr(), name.as_ptr().cast());
                if attr.is_null()
                    || libxml::bindings::xmlAddID(
                        std::ptr::null_mut(),
                        doc.doc_ptr(),
                        value.as_ptr().cast(),
                        attr,
                    )
                    .is_null()
                {
                    return Err(format!("ID {id:?} could not be registered"));
                }
            }
        }
        todo.extend(node.get_child_elements());
    }
    Ok(())
}

fn is_dsig(node: &Node, name: &str) -> bool {
    node.get_name() == name
        && node
            .get_namespace()
            .is_some_and(|ns| ns.get_href() == DSIG_NS)
}

fn find_signatures(node: &Node, out: &mut Vec<Node>) {
    if is_dsig(node, "Signature") {
        out.push(node.clone());
    }
    for child in node.get_child_elements() {
        find_signatures(&child, out);
    }
}

fn dsig_child(node: &Node, name: &str) -> Option<Node> {
    node.get_child_elements()
        .into_iter()
        .find(|c| is_dsig(c, name))
}

/// The signature's method and every Reference's digest method must be allow-listed.
fn check_algorithms(sig: &Node, allowed: &[AllowedSignatureAlgorithm]) -> Result<(), Refusal> {
    let info = dsig_child(sig, "SignedInfo").ok_or("a signature has no SignedInfo")?;
    let method = dsig_child(&info, "SignatureMethod")
        .and_then(|m| m.get_attribute("Algorithm"))
        .ok_or("a signature names no SignatureMethod")?;
    if !allowed.iter().any(|a| a.signature_uri() == method) {
        return Err(format!("signature method {method} is not allowed"));
    }
    let references: Vec<Node> = info
        .get_child_elements()
        .into_iter()
        .filter(|c| is_dsig(c, "Reference"))
        .collect();
    if references.is_empty() {
        return Err("a signature has no Reference".into());
    }
    for r in &references {
        let digest = dsig_child(r, "DigestMethod")
            .and_then(|m| m.get_attribute("Algorithm"))
            .ok_or("a Reference names no DigestMethod")?;
        if !allowed.iter().any(|a| a.digest_uri() == digest) {
            return Err(format!("digest method {digest} is not allowed"));
        }
    }
    Ok(())
}
