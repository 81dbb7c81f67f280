//! The strict shape check a SAML `Response` must pass before any signature is looked at.
//!
//! samael verifies signatures and then *reduces* the document to what was signed; given a wrapped
//! document it repairs it instead of refusing it. So nothing reaches samael unless its shape is the
//! one an honest IdP produces: no DOCTYPE, processing instructions, comments or CDATA; a
//! `samlp:Response` root with exactly one direct-child `Assertion` (or `EncryptedAssertion`) and no
//! assertion anywhere else; `ds:Signature` only as a direct child of the Response or the Assertion,
//! each with exactly one Reference to `#` + its parent's `ID`, transforms exactly
//! enveloped-signature then exclusive c14n, and RSA/ECDSA with SHA-256 or stronger; encrypted
//! assertions only in one form (one `EncryptedData` of `Type` Element with AES-GCM and an inline
//! `CipherValue`, one to four `EncryptedKey`s with RSA-OAEP, nothing fetched). It also bounds size,
//! depth and counts, so that hostile input costs little.
//!
//! A decrypted assertion passes [`check_decrypted`], the same rules for a document whose root is
//! the `saml:Assertion`.
//!
//! This module is pure: it knows nothing of providers, time or the store.

mod document;
mod encryption;
mod signature;
mod tree;

pub use document::{check, check_decrypted, encrypted_parts};

/// Largest decoded Response, in bytes (the 100,000 base64 characters AWS allows).
pub const MAX_XML_BYTES: usize = 75_000;
/// Deepest element nesting.
pub const MAX_DEPTH: usize = 24;
/// Most elements in one document.
pub const MAX_ELEMENTS: usize = 4_000;
/// Most attributes on one element (namespace declarations included).
pub const MAX_ATTRIBUTES: usize = 32;

/// `urn:oasis:names:tc:SAML:2.0:protocol`.
pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// `urn:oasis:names:tc:SAML:2.0:assertion`.
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// XML-DSig.
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML-Enc.
pub const NS_XMLENC: &str = "http://www.w3.org/2001/04/xmlenc#";
/// XML-Enc 1.1.
pub const NS_XMLENC11: &str = "http://www.w3.org/2009/xmlenc11#";

const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// Signature methods accepted (SHA-256 or stronger, RSA or ECDSA).
pub const SIGNATURE_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
/// Digest methods accepted.
pub const DIGEST_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
/// Key transport for encrypted assertions: RSA-OAEP only.
pub const KEY_TRANSPORT_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep",
];
/// Content encryption for encrypted assertions: AES-GCM only (strongest first, as the SP metadata
/// lists them).
pub const DATA_ENCRYPTION_METHODS: &[&str] = &[
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2009/xmlenc11#aes192-gcm",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
];
/// Digests RSA-OAEP may use (its `ds:DigestMethod`; SHA-1 when absent, as XML-Enc says).
pub const OAEP_DIGEST_METHODS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
/// Mask generation functions of `xmlenc11#rsa-oaep` (MGF1 with SHA-1 when absent).
pub const OAEP_MGF_METHODS: &[&str] = &[
    "http://www.w3.org/2009/xmlenc11#mgf1sha1",
    "http://www.w3.org/2009/xmlenc11#mgf1sha224",
    "http://www.w3.org/2009/xmlenc11#mgf1sha256",
    "http://www.w3.org/2009/xmlenc11#mgf1sha384",
    "http://www.w3.org/2009/xmlenc11#mgf1sha512",
];
/// The only `Type` an `EncryptedData` may declare: a whole element (the Assertion).
pub const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";
/// Most `EncryptedKey` elements an encrypted assertion may carry (one per recipient key).
pub const MAX_ENCRYPTED_KEYS: usize = 4;

/// Why a document failed the shape check. Each variant is a precise audit reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Too large.
    #[error("document is {0} bytes, more than {MAX_XML_BYTES}")]
    TooLarge(usize),
    /// Not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Malformed(String),
    /// A DOCTYPE (entities, external references).
    #[error("DOCTYPE is not allowed")]
    Doctype,
    /// A processing instruction.
    #[error("processing instructions are not allowed")]
    ProcessingInstruction,
    /// A comment (signed text could be read as its prefix).
    #[error("comments are not allowed")]
    Comment,
    /// A CDATA section.
    #[error("CDATA sections are not allowed")]
    Cdata,
    /// An entity reference other than the five predefined ones or a character reference.
    #[error("entity reference &{0}; is not allowed")]
    Entity(String),
    /// Nested too deeply.
    #[error("elements nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Too many elements.
    #[error("more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    /// Too many attributes on one element.
    #[error("an element has more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
    /// An unbound namespace prefix.
    #[error("unbound namespace prefix on <{0}>")]
    UnboundPrefix(String),
    /// The root is not a protocol Response.
    #[error("root element is {0}, not samlp:Response")]
    Root(String),
    /// No assertion.
    #[error("the Response has no Assertion")]
    NoAssertion,
    /// More than one assertion or one in the wrong place.
    #[error("{0}")]
    Assertions(String),
    /// A Signature where none may be.
    #[error("{0}")]
    SignaturePlacement(String),
    /// Nothing is signed.
    #[error("neither the Response nor the Assertion is signed")]
    Unsigned,
    /// An encrypted assertion without a signature on the Response around it.
    #[error("an EncryptedAssertion must be inside a signed Response")]
    EncryptedUnsigned,
    /// A signature not of the one accepted form.
    #[error("signature on {element}: {why}")]
    Signature {
        /// `Response` or `Assertion`.
        element: &'static str,
        /// What is wrong.
        why: String,
    },
    /// An encryption algorithm outside the allow-list, or an encrypted assertion not of the one
    /// accepted form.
    #[error("encrypted assertion: {0}")]
    Encryption(String),
    /// A decrypted assertion not of the accepted form.
    #[error("decrypted assertion: {0}")]
    Decrypted(String),
    /// Two elements share an ID.
    #[error("ID '{0}' appears more than once")]
    DuplicateId(String),
    /// A required element or attribute is missing or empty.
    #[error("{0}")]
    Missing(String),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, ShapeError>;

/// What the shape check learned about a document that passed it. Values come from the raw document:
/// those inside a signed element are covered by its signature once samael has verified it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// The Response's `ID`.
    pub response_id: String,
    /// The Response's `Issuer` exactly as written (untrimmed), if it has one.
    pub response_issuer: Option<String>,
    /// `Destination`.
    pub destination: Option<String>,
    /// The Response's `InResponseTo`.
    pub in_response_to: Option<String>,
    /// The top-level status code.
    pub status: Option<String>,
    /// Whether the Response carries a signature.
    pub response_signed: bool,
    /// Whether the Assertion carries a signature (unknown, `false`, when encrypted).
    pub assertion_signed: bool,
    /// Whether the assertion is encrypted.
    pub encrypted: bool,
    /// The Assertion's `ID` (`None` when encrypted).
    pub assertion_id: Option<String>,
    /// The Assertion's `Issuer` exactly as written (`None` when encrypted).
    pub assertion_issuer: Option<String>,
    /// `NameQualifier` of the Subject's NameID.
    pub name_qualifier: Option<String>,
    /// `SPNameQualifier` of the Subject's NameID.
    pub sp_name_qualifier: Option<String>,
    /// What an encrypted assertion is made of (`None` when not encrypted).
    pub encryption: Option<Encryption>,
}

/// An `EncryptedAssertion` as the document gives it, its algorithms within the allow-lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encryption {
    /// The content encryption (one of [`DATA_ENCRYPTION_METHODS`]).
    pub data_algorithm: String,
    /// The `EncryptedData`'s `CipherValue`, base64 as written.
    pub cipher_value: String,
    /// Every `EncryptedKey`, from the `EncryptedData`'s `KeyInfo` and beside it.
    pub keys: Vec<EncryptedKey>,
}

/// One `EncryptedKey`: the content key wrapped with RSA-OAEP for one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptedKey {
    /// The key transport (one of [`KEY_TRANSPORT_METHODS`]).
    pub algorithm: String,
    /// OAEP's digest (one of [`OAEP_DIGEST_METHODS`]), if given.
    pub digest: Option<String>,
    /// OAEP's mask generation function (one of [`OAEP_MGF_METHODS`]), if given.
    pub mgf: Option<String>,
    /// `OAEPparams` (the OAEP label), base64 as written, if given.
    pub oaep_params: Option<String>,
    /// The wrapped key, base64 as written.
    pub cipher_value: String,
}
