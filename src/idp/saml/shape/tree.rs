//! The XML walker: a document read into a flat tree of elements (namespace, local name, attributes,
//! text), refusing on the way what no honest IdP sends (DOCTYPE, processing instructions, comments,
//! CDATA, entity references other than the predefined and character ones, unbound prefixes) and
//! bounding depth, element and attribute counts.

use super::{Result, ShapeError, MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENTS};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

#[derive(Debug)]
pub(super) struct Node {
    pub(super) ns: String,
    pub(super) name: String,
    /// (namespace, local name, value); namespace declarations are not kept.
    pub(super) attrs: Vec<(String, String, String)>,
    pub(super) children: Vec<usize>,
    pub(super) parent: Option<usize>,
    pub(super) text: String,
}

impl Node {
    pub(super) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, n, _)| ns.is_empty() && n == name)
            .map(|(_, _, v)| v.as_str())
    }
    pub(super) fn qualified(&self) -> String {
        if self.ns.is_empty() {
            self.name.clone()
        } else {
            format!("{{{}}}{}", self.ns, self.name)
        }
    }
}

pub(super) struct Tree {
    pub(super) nodes: Vec<Node>,
}

impl Tree {
    pub(super) fn children<'a>(&'a self, i: usize) -> impl Iterator<Item = (usize, &'a Node)> + 'a {
        self.nodes[i].children.iter().map(|&c| (c, &self.nodes[c]))
    }
    pub(super) fn child(&self, i: usize, ns: &str, name: &str) -> Vec<usize> {
        self.children(i)
            .filter(|(_, n)| n.is(ns, name))
            .map(|(c, _)| c)
            .collect()
    }
    pub(super) fn one_child(&self, i: usize, ns: &str, name: &str, what: &str) -> Result<usize> {
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

pub(super) fn parse(xml: &str) -> Result<Tree> {
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
