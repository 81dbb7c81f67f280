//! A small writer for the STS response documents: elements, escaped text, the STS namespace on the root.

/// The STS XML namespace.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Builds an XML document element by element.
pub struct XmlWriter {
    out: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    /// An empty document.
    pub fn new() -> Self {
        Self {
            out: String::with_capacity(2048),
        }
    }
    /// Opens the root element with the STS namespace.
    pub fn open_ns(&mut self, name: &str) {
        self.open_in(name, NAMESPACE);
    }
    /// Opens the root element in `namespace`.
    pub fn open_in(&mut self, name: &str, namespace: &str) {
        self.open_root(name, "", namespace);
    }
    /// Opens the root element `{name}{suffix}` with the STS namespace (no name is formatted first).
    pub fn open_ns_suffixed(&mut self, name: &str, suffix: &str) {
        self.open_root(name, suffix, NAMESPACE);
    }
    fn open_root(&mut self, name: &str, suffix: &str, namespace: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(suffix);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(namespace);
        self.out.push_str("\">\n");
    }
    /// Opens element `{name}{suffix}`.
    pub fn open_suffixed(&mut self, name: &str, suffix: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(suffix);
        self.out.push_str(">\n");
    }
    /// Closes element `{name}{suffix}`.
    pub fn close_suffixed(&mut self, name: &str, suffix: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(suffix);
        self.out.push_str(">\n");
    }
    /// Opens an element.
    pub fn open(&mut self, name: &str) {
        self.open_suffixed(name, "");
    }
    /// Closes an element.
    pub fn close(&mut self, name: &str) {
        self.close_suffixed(name, "");
    }
    /// An element with escaped text.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }
    /// An element only when there is text.
    pub fn leaf_opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.leaf(name, t);
        }
    }
    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Bytes that element content and attribute values cannot carry as they are: markup, and the
/// control characters other than tab, newline and carriage return.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = !matches!(b as u8, b'\t' | b'\n' | b'\r');
        b += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t
};

/// Escapes text for element content and attribute values.
pub fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut clean_from = 0;
    // Tokens and keys (most of a response) have nothing to escape: one table scan, one copy.
    while let Some(off) = bytes[clean_from..]
        .iter()
        .position(|&b| NEEDS_ESCAPE[usize::from(b)])
    {
        let i = clean_from + off;
        // Every byte that needs escaping is ASCII, so `i` is a character boundary.
        out.push_str(&s[clean_from..i]);
        out.push_str(match bytes[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            // Characters XML 1.0 cannot carry are replaced rather than emitted.
            _ => "\u{FFFD}",
        });
        clean_from = i + 1;
    }
    out.push_str(&s[clean_from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixed_names_write_what_the_formatted_names_wrote() {
        let mut a = XmlWriter::new();
        a.open_ns_suffixed("GetCallerIdentity", "Response");
        a.open_suffixed("GetCallerIdentity", "Result");
        a.close_suffixed("GetCallerIdentity", "Result");
        a.close_suffixed("GetCallerIdentity", "Response");
        let mut b = XmlWriter::new();
        b.open_ns("GetCallerIdentityResponse");
        b.open("GetCallerIdentityResult");
        b.close("GetCallerIdentityResult");
        b.close("GetCallerIdentityResponse");
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn escapes_markup_and_control_characters() {
        let mut w = XmlWriter::new();
        w.leaf("A", "<b>&\"x'\u{1}");
        assert_eq!(w.finish(), "<A>&lt;b&gt;&amp;&quot;x&apos;\u{FFFD}</A>\n");
    }

    #[test]
    fn escapes_every_byte_exactly_as_the_rules_say() {
        // Each ASCII character alone and between clean text, against the rule written out.
        for b in 0u8..0x80 {
            let c = char::from(b);
            let want = match c {
                '&' => "&amp;".to_string(),
                '<' => "&lt;".to_string(),
                '>' => "&gt;".to_string(),
                '"' => "&quot;".to_string(),
                '\'' => "&apos;".to_string(),
                '\t' | '\n' | '\r' => c.to_string(),
                c if (c as u32) < 0x20 => "\u{FFFD}".to_string(),
                c => c.to_string(),
            };
            let mut out = String::new();
            escape_into(&mut out, &format!("ab{c}é{c}"));
            assert_eq!(out, format!("ab{want}é{want}"), "byte {b:#x}");
        }
        let mut out = String::new();
        escape_into(&mut out, "plain-token_0123=");
        assert_eq!(out, "plain-token_0123=");
    }
}
