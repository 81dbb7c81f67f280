//! The one accepted form of a `ds:Signature`: one Reference to its parent's `ID`, transforms exactly
//! enveloped-signature then exclusive c14n, and allowed signature and digest methods.

use super::tree::Tree;
use super::{Result, ShapeError, DIGEST_METHODS, ENVELOPED, EXC_C14N, NS_DSIG, SIGNATURE_METHODS};

pub(super) fn check_signature(
    tree: &Tree,
    sig: usize,
    parent_id: &str,
    element: &'static str,
) -> Result<()> {
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
