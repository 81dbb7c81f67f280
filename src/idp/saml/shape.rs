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

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

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

#[derive(Debug)]
struct Node {
    ns: String,
    name: String,
    /// (namespace, local name, value); namespace declarations are not kept.
    attrs: Vec<(String, String, String)>,
    children: Vec<usize>,
    parent: Option<usize>,
    text: String,
}

impl Node {
    fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, n, _)| ns.is_empty() && n == name)
            .map(|(_, _, v)| v.as_str())
    }
    fn qualified(&self) -> String {
        if self.ns.is_empty() {
            self.name.clone()
        } else {
            format!("{{{}}}{}", self.ns, self.name)
        }
    }
}

struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn children<'a>(&'a self, i: usize) -> impl Iterator<Item = (usize, &'a Node)> + 'a {
        self.nodes[i].children.iter().map(|&c| (c, &self.nodes[c]))
    }
    fn child(&self, i: usize, ns: &str, name: &str) -> Vec<usize> {
        self.children(i)
            .filter(|(_, n)| n.is(ns, name))
            .map(|(c, _)| c)
            .collect()
    }
    fn one_child(&self, i: usize, ns: &str, name: &str, what: &str) -> Result<usize> {
        match self.child(i, ns, name).as_slice() {
            [c] => Ok(*c),
            [] => Err(ShapeError::Missing(format!("{what} is missing"))),
            _ => Err(ShapeError::Missing(format!(
                "{what} appears more than once"
            ))),
        }
    }
}

fn ns_of(r: &ResolveResult<'_>, qname: &[u8]) -> Result<String> {
    match r {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(_) => Err(ShapeError::UnboundPrefix(
            String::from_utf8_lossy(qname).into_owned(),
        )),
    }
}

fn parse(xml: &str) -> Result<Tree> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().check_comments = true;
    reader.config_mut().check_end_names = true;
    let malformed = |e: quick_xml::Error| ShapeError::Malformed(e.to_string());
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut root_done = false;
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(malformed)?;
        let start = match event {
            Event::Start(e) => Some((e, false)),
            Event::Empty(e) => Some((e, true)),
            Event::End(_) => {
                stack.pop();
                if stack.is_empty() {
                    root_done = true;
                }
                None
            }
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|e| ShapeError::Malformed(e.to_string()))?;
                match stack.last() {
                    Some(&top) => nodes[top].text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(ShapeError::Malformed("text outside the root".into())),
                }
                None
            }
            Event::GeneralRef(r) => {
                let name = r
                    .decode()
                    .map_err(|e| ShapeError::Malformed(e.to_string()))?;
                let ch = match &*name {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "apos" => Some('\''),
                    "quot" => Some('"'),
                    _ => r
                        .resolve_char_ref()
                        .map_err(|e| ShapeError::Malformed(e.to_string()))?,
                };
                let Some(ch) = ch else {
                    return Err(ShapeError::Entity(name.chars().take(64).collect()));
                };
                match stack.last() {
                    Some(&top) => nodes[top].text.push(ch),
                    None => return Err(ShapeError::Malformed("reference outside the root".into())),
                }
                None
            }
            Event::CData(_) => return Err(ShapeError::Cdata),
            Event::Comment(_) => return Err(ShapeError::Comment),
            Event::PI(_) => return Err(ShapeError::ProcessingInstruction),
            Event::DocType(_) => return Err(ShapeError::Doctype),
            Event::Decl(_) => None,
            Event::Eof => break,
        };
        let Some((e, empty)) = start else { continue };
        if root_done {
            return Err(ShapeError::Malformed("more than one root element".into()));
        }
        if nodes.len() >= MAX_ELEMENTS {
            return Err(ShapeError::TooManyElements);
        }
        if stack.len() >= MAX_DEPTH {
            return Err(ShapeError::TooDeep);
        }
        let qname = e.name();
        let ns = ns_of(&resolved, qname.as_ref())?;
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let mut attrs = Vec::new();
        for (n, a) in e.attributes().enumerate() {
            if n >= MAX_ATTRIBUTES {
                return Err(ShapeError::TooManyAttributes);
            }
            let a = a.map_err(|e| ShapeError::Malformed(e.to_string()))?;
            let key = a.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let (ans, local) = reader.resolver().resolve_attribute(a.key);
            let ans = ns_of(&ans, key)?;
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| ShapeError::Malformed(e.to_string()))?;
            attrs.push((
                ans,
                String::from_utf8_lossy(local.as_ref()).into_owned(),
                value.into_owned(),
            ));
        }
        let parent = stack.last().copied();
        let idx = nodes.len();
        nodes.push(Node {
            ns,
            name,
            attrs,
            children: Vec::new(),
            parent,
            text: String::new(),
        });
        if let Some(p) = parent {
            nodes[p].children.push(idx);
        }
        if empty {
            if parent.is_none() {
                root_done = true;
            }
        } else {
            stack.push(idx);
        }
    }
    if !stack.is_empty() || nodes.is_empty() {
        return Err(ShapeError::Malformed("document is incomplete".into()));
    }
    Ok(Tree { nodes })
}

/// Checks a decoded SAML Response document and returns what it says about itself.
pub fn check(xml: &str) -> Result<Shape> {
    if xml.len() > MAX_XML_BYTES {
        return Err(ShapeError::TooLarge(xml.len()));
    }
    let tree = parse(xml)?;
    let root = &tree.nodes[0];
    if !root.is(NS_PROTOCOL, "Response") {
        return Err(ShapeError::Root(root.qualified()));
    }

    // IDs are unique across the whole document: a Reference must find exactly one element.
    unique_ids(&tree)?;

    // Exactly one assertion, a direct child of the root; none anywhere else.
    let is_assertion = |n: &Node| {
        n.name == "Assertion" || n.name == "EncryptedAssertion" || n.name == "EncryptedData"
    };
    let direct: Vec<usize> = tree
        .children(0)
        .filter(|(_, n)| {
            n.is(NS_ASSERTION, "Assertion") || n.is(NS_ASSERTION, "EncryptedAssertion")
        })
        .map(|(i, _)| i)
        .collect();
    let assertion = match direct.as_slice() {
        [a] => *a,
        [] => {
            if tree.nodes.iter().any(is_assertion) {
                return Err(ShapeError::Assertions(
                    "an Assertion is present but not as a direct child of the Response".into(),
                ));
            }
            return Err(ShapeError::NoAssertion);
        }
        _ => {
            return Err(ShapeError::Assertions(format!(
                "the Response has {} assertions; exactly one is allowed",
                direct.len()
            )))
        }
    };
    let encrypted = tree.nodes[assertion].name == "EncryptedAssertion";
    for (i, n) in tree.nodes.iter().enumerate() {
        if i == assertion {
            continue;
        }
        let inside_encrypted =
            encrypted && n.name == "EncryptedData" && n.parent == Some(assertion);
        if is_assertion(n) && !inside_encrypted {
            return Err(ShapeError::Assertions(format!(
                "a second {} element is nested in the document",
                n.qualified()
            )));
        }
    }

    // Signatures: only as direct children of the Response or the Assertion, one each at most.
    let mut response_sig = None;
    let mut assertion_sig = None;
    for (i, n) in tree.nodes.iter().enumerate() {
        if n.name != "Signature" {
            continue;
        }
        if n.ns != NS_DSIG {
            return Err(ShapeError::SignaturePlacement(format!(
                "a Signature element in namespace '{}'",
                n.ns
            )));
        }
        let slot = match n.parent {
            Some(0) => &mut response_sig,
            Some(p) if p == assertion && !encrypted => &mut assertion_sig,
            _ => {
                let at = n
                    .parent
                    .map(|p| tree.nodes[p].qualified())
                    .unwrap_or_default();
                return Err(ShapeError::SignaturePlacement(format!(
                    "a Signature inside {at}; signatures may only be direct children of the Response or the Assertion"
                )));
            }
        };
        if slot.replace(i).is_some() {
            return Err(ShapeError::SignaturePlacement(
                "two Signatures on one element".into(),
            ));
        }
    }
    if encrypted && response_sig.is_none() {
        return Err(ShapeError::EncryptedUnsigned);
    }
    if response_sig.is_none() && assertion_sig.is_none() {
        return Err(ShapeError::Unsigned);
    }
    let response_id = root
        .attr("ID")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ShapeError::Missing("the Response has no ID".into()))?
        .to_string();
    if let Some(s) = response_sig {
        check_signature(&tree, s, &response_id, "Response")?;
    }
    let mut shape = Shape {
        response_id,
        response_signed: response_sig.is_some(),
        assertion_signed: assertion_sig.is_some(),
        encrypted,
        destination: root.attr("Destination").map(String::from),
        in_response_to: root.attr("InResponseTo").map(String::from),
        ..Shape::default()
    };
    shape.response_issuer = tree
        .child(0, NS_ASSERTION, "Issuer")
        .first()
        .map(|&i| tree.nodes[i].text.clone());
    if let Some(&status) = tree.child(0, NS_PROTOCOL, "Status").first() {
        if let Some(&code) = tree.child(status, NS_PROTOCOL, "StatusCode").first() {
            shape.status = tree.nodes[code].attr("Value").map(String::from);
        }
    }

    if encrypted {
        shape.encryption = Some(check_encryption(&tree, assertion)?);
        return Ok(shape);
    }
    assertion_facts(&tree, assertion, assertion_sig, &mut shape)?;
    Ok(shape)
}

/// The Assertion's ID (its signature's reference checked against it), Issuer and NameID
/// qualifiers, into `shape`.
fn assertion_facts(
    tree: &Tree,
    assertion: usize,
    sig: Option<usize>,
    shape: &mut Shape,
) -> Result<()> {
    let a = &tree.nodes[assertion];
    let assertion_id = a
        .attr("ID")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ShapeError::Missing("the Assertion has no ID".into()))?
        .to_string();
    if let Some(s) = sig {
        check_signature(tree, s, &assertion_id, "Assertion")?;
    }
    shape.assertion_signed = sig.is_some();
    shape.assertion_id = Some(assertion_id);
    shape.assertion_issuer = tree
        .child(assertion, NS_ASSERTION, "Issuer")
        .first()
        .map(|&i| tree.nodes[i].text.clone());
    if let Some(&subject) = tree.child(assertion, NS_ASSERTION, "Subject").first() {
        if let Some(&name_id) = tree.child(subject, NS_ASSERTION, "NameID").first() {
            let n = &tree.nodes[name_id];
            shape.name_qualifier = n.attr("NameQualifier").map(String::from);
            shape.sp_name_qualifier = n.attr("SPNameQualifier").map(String::from);
        }
    }
    Ok(())
}

fn unique_ids(tree: &Tree) -> Result<()> {
    let mut ids: Vec<&str> = Vec::new();
    for n in &tree.nodes {
        for (ns, name, v) in &n.attrs {
            if ns.is_empty() && (name == "ID" || name == "Id" || name == "id") {
                if ids.contains(&v.as_str()) {
                    return Err(ShapeError::DuplicateId(v.chars().take(64).collect()));
                }
                ids.push(v);
            }
        }
    }
    Ok(())
}

/// The `EncryptedAssertion` of a Response whose signature has been verified (the signed content
/// samael hands back), checked as strictly as [`check`] does: its parts, for decryption.
pub fn encrypted_parts(xml: &str) -> Result<Encryption> {
    if xml.len() > MAX_XML_BYTES {
        return Err(ShapeError::TooLarge(xml.len()));
    }
    let tree = parse(xml)?;
    if !tree.nodes[0].is(NS_PROTOCOL, "Response") {
        return Err(ShapeError::Root(tree.nodes[0].qualified()));
    }
    let encrypted = tree.child(0, NS_ASSERTION, "EncryptedAssertion");
    let plain = tree.child(0, NS_ASSERTION, "Assertion");
    match (encrypted.as_slice(), plain.len()) {
        ([a], 0) => check_encryption(&tree, *a),
        _ => Err(ShapeError::Assertions(format!(
            "the signed Response holds {} EncryptedAssertion(s) and {} Assertion(s); exactly one EncryptedAssertion was expected",
            encrypted.len(),
            plain.len()
        ))),
    }
}

/// Checks a decrypted assertion as strictly as a plain one (within the size limit; no DOCTYPE,
/// entities, processing instructions, comments or CDATA; a `saml:Assertion` root with an ID and an
/// Issuer; no assertion nested anywhere in it; a signature only as the root's direct child, of the
/// one accepted form) and puts its ID, Issuer, NameID qualifiers and whether it is signed into
/// `shape`. Every refusal is [`ShapeError::Decrypted`].
pub fn check_decrypted(xml: &str, shape: &mut Shape) -> Result<()> {
    check_decrypted_inner(xml, shape).map_err(|e| match e {
        ShapeError::Decrypted(_) => e,
        other => ShapeError::Decrypted(other.to_string()),
    })
}

fn check_decrypted_inner(xml: &str, shape: &mut Shape) -> Result<()> {
    if xml.len() > MAX_XML_BYTES {
        return Err(ShapeError::TooLarge(xml.len()));
    }
    let tree = parse(xml)?;
    let root = &tree.nodes[0];
    if !root.is(NS_ASSERTION, "Assertion") {
        return Err(ShapeError::Decrypted(format!(
            "root element is {}, not saml:Assertion",
            root.qualified()
        )));
    }
    unique_ids(&tree)?;
    let mut sig = None;
    for (i, n) in tree.nodes.iter().enumerate().skip(1) {
        if matches!(
            n.name.as_str(),
            "Assertion" | "EncryptedAssertion" | "EncryptedData"
        ) {
            return Err(ShapeError::Decrypted(format!(
                "a {} element is nested in it",
                n.qualified()
            )));
        }
        if n.name == "Signature" {
            if n.ns != NS_DSIG || n.parent != Some(0) {
                return Err(ShapeError::SignaturePlacement(
                    "a Signature that is not a direct ds:Signature child of the Assertion".into(),
                ));
            }
            if sig.replace(i).is_some() {
                return Err(ShapeError::SignaturePlacement(
                    "two Signatures on one element".into(),
                ));
            }
        }
    }
    assertion_facts(&tree, 0, sig, shape)?;
    if shape.assertion_issuer.as_deref().is_none_or(str::is_empty) {
        return Err(ShapeError::Missing("the Assertion has no Issuer".into()));
    }
    Ok(())
}

fn check_signature(tree: &Tree, sig: usize, parent_id: &str, element: &'static str) -> Result<()> {
    let bad = |why: String| ShapeError::Signature { element, why };
    for (_, c) in tree.children(sig) {
        let allowed = c.ns == NS_DSIG
            && matches!(c.name.as_str(), "SignedInfo" | "SignatureValue" | "KeyInfo");
        if !allowed {
            return Err(bad(format!("unexpected {} in Signature", c.qualified())));
        }
    }
    let one = |i: usize, name: &str, what: &str| {
        tree.one_child(i, NS_DSIG, name, what)
            .map_err(|e| bad(e.to_string()))
    };
    let signed_info = one(sig, "SignedInfo", "SignedInfo")?;
    one(sig, "SignatureValue", "SignatureValue")?;
    let c14n = one(
        signed_info,
        "CanonicalizationMethod",
        "CanonicalizationMethod",
    )?;
    let alg = |i: usize| tree.nodes[i].attr("Algorithm").unwrap_or("").to_string();
    if alg(c14n) != EXC_C14N {
        return Err(bad(format!(
            "canonicalization {} is not exclusive c14n without comments",
            alg(c14n)
        )));
    }
    let method = one(signed_info, "SignatureMethod", "SignatureMethod")?;
    if !SIGNATURE_METHODS.contains(&alg(method).as_str()) {
        return Err(bad(format!(
            "signature method {} is not allowed",
            alg(method)
        )));
    }
    if tree.children(method).next().is_some() {
        return Err(bad(
            "SignatureMethod has parameters (HMAC output length?)".into()
        ));
    }
    for (_, c) in tree.children(signed_info) {
        let ok = c.ns == NS_DSIG
            && matches!(
                c.name.as_str(),
                "CanonicalizationMethod" | "SignatureMethod" | "Reference"
            );
        if !ok {
            return Err(bad(format!("unexpected {} in SignedInfo", c.qualified())));
        }
    }
    let references = tree.child(signed_info, NS_DSIG, "Reference");
    let reference = match references.as_slice() {
        [r] => *r,
        [] => return Err(bad("no Reference".into())),
        _ => {
            return Err(bad(format!(
                "{} References; exactly one is allowed",
                references.len()
            )))
        }
    };
    let uri = tree.nodes[reference].attr("URI").unwrap_or("");
    if uri != format!("#{parent_id}") {
        let shown: String = uri.chars().take(80).collect();
        return Err(bad(format!(
            "Reference URI '{shown}' is not '#' + the {element}'s ID"
        )));
    }
    let transforms = one(reference, "Transforms", "Transforms")?;
    let list: Vec<usize> = tree.children(transforms).map(|(i, _)| i).collect();
    let algs: Vec<String> = list.iter().map(|&i| alg(i)).collect();
    if list.len() != 2
        || list
            .iter()
            .any(|&i| !tree.nodes[i].is(NS_DSIG, "Transform"))
        || algs[0] != ENVELOPED
        || algs[1] != EXC_C14N
    {
        return Err(bad(format!(
            "transforms must be exactly enveloped-signature then exclusive c14n, not [{}]",
            algs.iter()
                .map(|a| a.chars().take(80).collect::<String>())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Only an InclusiveNamespaces prefix list may parameterise the c14n transform.
    for &t in &list {
        for (_, c) in tree.children(t) {
            if c.name != "InclusiveNamespaces" || c.ns != EXC_C14N {
                return Err(bad(format!("unexpected {} in a Transform", c.qualified())));
            }
        }
    }
    let digest = one(reference, "DigestMethod", "DigestMethod")?;
    if !DIGEST_METHODS.contains(&alg(digest).as_str()) {
        return Err(bad(format!("digest method {} is not allowed", alg(digest))));
    }
    one(reference, "DigestValue", "DigestValue")?;
    Ok(())
}

/// The one accepted form of an `EncryptedAssertion`: one `EncryptedData` (`Type` Element, AES-GCM,
/// an inline `CipherValue`) and one to [`MAX_ENCRYPTED_KEYS`] `EncryptedKey`s (RSA-OAEP with an
/// allowed digest and MGF, an inline `CipherValue`) in its `KeyInfo` or beside it. Nothing is
/// fetched: a `CipherReference` is refused.
fn check_encryption(tree: &Tree, assertion: usize) -> Result<Encryption> {
    let bad = |why: String| ShapeError::Encryption(why);
    // Every EncryptionMethod anywhere inside, in the allow-list of its place.
    let mut walk = vec![assertion];
    while let Some(i) = walk.pop() {
        let n = &tree.nodes[i];
        if n.name == "EncryptionMethod" {
            let alg = n.attr("Algorithm").unwrap_or("");
            let parent = n.parent.map(|p| &tree.nodes[p]);
            match parent {
                Some(p) if p.is(NS_XMLENC, "EncryptedData") => {
                    if !DATA_ENCRYPTION_METHODS.contains(&alg) {
                        return Err(bad(format!(
                            "content encryption {alg} is not allowed (AES-GCM only)"
                        )));
                    }
                }
                Some(p) if p.is(NS_XMLENC, "EncryptedKey") => {
                    if !KEY_TRANSPORT_METHODS.contains(&alg) {
                        return Err(bad(format!(
                            "key transport {alg} is not allowed (RSA-OAEP only)"
                        )));
                    }
                }
                _ => return Err(bad("EncryptionMethod in an unexpected place".into())),
            }
        }
        walk.extend(n.children.iter().copied());
    }

    let mut data = None;
    let mut keys = Vec::new();
    for (i, c) in tree.children(assertion) {
        if c.is(NS_XMLENC, "EncryptedData") {
            if data.replace(i).is_some() {
                return Err(bad("EncryptedData appears more than once".into()));
            }
        } else if c.is(NS_XMLENC, "EncryptedKey") {
            keys.push(encrypted_key(tree, i)?);
        } else {
            return Err(bad(format!(
                "unexpected {} in EncryptedAssertion",
                c.qualified()
            )));
        }
    }
    let data = data.ok_or_else(|| bad("EncryptedData is missing".into()))?;
    if let Some(t) = tree.nodes[data].attr("Type") {
        if t != TYPE_ELEMENT {
            return Err(bad(format!(
                "EncryptedData Type {} is not {TYPE_ELEMENT}",
                t.chars().take(80).collect::<String>()
            )));
        }
    }
    let mut method = None;
    let mut cipher = None;
    for (i, c) in tree.children(data) {
        match (c.ns.as_str(), c.name.as_str()) {
            (NS_XMLENC, "EncryptionMethod") => {
                if method.replace(i).is_some() {
                    return Err(bad(
                        "EncryptedData has more than one EncryptionMethod".into()
                    ));
                }
            }
            (NS_DSIG, "KeyInfo") => {
                for (k, kc) in tree.children(i) {
                    if kc.is(NS_XMLENC, "EncryptedKey") {
                        keys.push(encrypted_key(tree, k)?);
                    } else if !(kc.ns == NS_DSIG
                        && matches!(kc.name.as_str(), "KeyName" | "RetrievalMethod"))
                    {
                        return Err(bad(format!(
                            "unexpected {} in the EncryptedData's KeyInfo",
                            kc.qualified()
                        )));
                    }
                }
            }
            (NS_XMLENC, "CipherData") => {
                if cipher.replace(cipher_value(tree, i)?).is_some() {
                    return Err(bad("EncryptedData has more than one CipherData".into()));
                }
            }
            _ => {
                return Err(bad(format!(
                    "unexpected {} in EncryptedData",
                    c.qualified()
                )))
            }
        }
    }
    let method = method.ok_or_else(|| bad("EncryptedData names no EncryptionMethod".into()))?;
    if tree.children(method).next().is_some() {
        return Err(bad(
            "the content EncryptionMethod has parameters (AES-GCM takes none)".into(),
        ));
    }
    let cipher_value = cipher.ok_or_else(|| bad("EncryptedData has no CipherData".into()))?;
    if keys.is_empty() {
        return Err(bad("no EncryptedKey with an EncryptionMethod".into()));
    }
    if keys.len() > MAX_ENCRYPTED_KEYS {
        return Err(bad(format!(
            "{} EncryptedKeys; at most {MAX_ENCRYPTED_KEYS} are allowed",
            keys.len()
        )));
    }
    Ok(Encryption {
        data_algorithm: tree.nodes[method]
            .attr("Algorithm")
            .unwrap_or("")
            .to_string(),
        cipher_value,
        keys,
    })
}

fn encrypted_key(tree: &Tree, key: usize) -> Result<EncryptedKey> {
    let bad = |why: String| ShapeError::Encryption(why);
    let mut method = None;
    let mut cipher = None;
    for (i, c) in tree.children(key) {
        match (c.ns.as_str(), c.name.as_str()) {
            (NS_XMLENC, "EncryptionMethod") => {
                if method.replace(i).is_some() {
                    return Err(bad("EncryptedKey has more than one EncryptionMethod".into()));
                }
            }
            (NS_XMLENC, "CipherData") => {
                if cipher.replace(cipher_value(tree, i)?).is_some() {
                    return Err(bad("EncryptedKey has more than one CipherData".into()));
                }
            }
            // Which key it is for (never fetched), and what it says it encrypts.
            (NS_DSIG, "KeyInfo") | (NS_XMLENC, "ReferenceList" | "CarriedKeyName") => {}
            _ => return Err(bad(format!("unexpected {} in EncryptedKey", c.qualified()))),
        }
    }
    let method = method.ok_or_else(|| bad("EncryptedKey names no EncryptionMethod".into()))?;
    let algorithm = tree.nodes[method]
        .attr("Algorithm")
        .unwrap_or("")
        .to_string();
    let mut k = EncryptedKey {
        algorithm,
        cipher_value: cipher.ok_or_else(|| bad("EncryptedKey has no CipherData".into()))?,
        ..EncryptedKey::default()
    };
    for (_, p) in tree.children(method) {
        let alg = p.attr("Algorithm").unwrap_or("").to_string();
        let slot = match (p.ns.as_str(), p.name.as_str()) {
            (NS_DSIG, "DigestMethod") => {
                if !OAEP_DIGEST_METHODS.contains(&alg.as_str()) {
                    return Err(bad(format!("RSA-OAEP digest {alg} is not allowed")));
                }
                &mut k.digest
            }
            (NS_XMLENC11, "MGF") if k.algorithm == "http://www.w3.org/2009/xmlenc11#rsa-oaep" => {
                if !OAEP_MGF_METHODS.contains(&alg.as_str()) {
                    return Err(bad(format!(
                        "RSA-OAEP mask generation {alg} is not allowed"
                    )));
                }
                &mut k.mgf
            }
            (NS_XMLENC, "OAEPparams") => {
                if p.text.trim().is_empty() {
                    continue;
                }
                if k.oaep_params.replace(p.text.trim().to_string()).is_some() {
                    return Err(bad("OAEPparams appears more than once".into()));
                }
                continue;
            }
            _ => {
                return Err(bad(format!(
                    "unexpected {} in the key EncryptionMethod",
                    p.qualified()
                )))
            }
        };
        if slot.replace(alg).is_some() {
            return Err(bad(format!(
                "{} appears more than once in the key EncryptionMethod",
                p.name
            )));
        }
    }
    Ok(k)
}

/// The text of a `CipherData`'s one `CipherValue`; a `CipherReference` (external data) is refused.
fn cipher_value(tree: &Tree, cipher_data: usize) -> Result<String> {
    let bad = |why: String| ShapeError::Encryption(why);
    let mut value = None;
    for (_, c) in tree.children(cipher_data) {
        if c.is(NS_XMLENC, "CipherValue") {
            if value.replace(c.text.trim().to_string()).is_some() {
                return Err(bad("CipherData has more than one CipherValue".into()));
            }
        } else if c.is(NS_XMLENC, "CipherReference") {
            return Err(bad(
                "CipherReference is not allowed (no external data)".into()
            ));
        } else {
            return Err(bad(format!("unexpected {} in CipherData", c.qualified())));
        }
    }
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("CipherData has no CipherValue".into()))
}
