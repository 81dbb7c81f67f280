//! The document rules: a `samlp:Response` with exactly one direct-child assertion and signatures
//! only where they belong ([`check`]); the `EncryptedAssertion` of a verified Response
//! ([`encrypted_parts`]); a decrypted `saml:Assertion` ([`check_decrypted`]).

use super::encryption::check_encryption;
use super::signature::check_signature;
use super::tree::{parse, Node, Tree};
use super::{
    Encryption, Result, Shape, ShapeError, MAX_XML_BYTES, NS_ASSERTION, NS_DSIG, NS_PROTOCOL,
};

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
