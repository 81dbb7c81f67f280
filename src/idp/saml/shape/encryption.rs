//! The one accepted form of an `EncryptedAssertion`: its `EncryptedData`, its `EncryptedKey`s and
//! their algorithms, within the allow-lists; nothing fetched.

use super::tree::Tree;
use super::{
    EncryptedKey, Encryption, Result, ShapeError, DATA_ENCRYPTION_METHODS, KEY_TRANSPORT_METHODS,
    MAX_ENCRYPTED_KEYS, NS_DSIG, NS_XMLENC, NS_XMLENC11, OAEP_DIGEST_METHODS, OAEP_MGF_METHODS,
    TYPE_ELEMENT,
};

/// The one accepted form of an `EncryptedAssertion`: one `EncryptedData` (`Type` Element, AES-GCM,
/// an inline `CipherValue`) and one to [`MAX_ENCRYPTED_KEYS`] `EncryptedKey`s (RSA-OAEP with an
/// allowed digest and MGF, an inline `CipherValue`) in its `KeyInfo` or beside it. Nothing is
/// fetched: a `CipherReference` is refused.
pub(super) fn check_encryption(tree: &Tree, assertion: usize) -> Result<Encryption> {
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
