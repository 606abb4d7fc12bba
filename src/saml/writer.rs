//! The XML we send, written directly in Exclusive XML Canonicalization form (exc-c14n 1.0,
//! without comments, no InclusiveNamespaces).
//!
//! Why: an enveloped signature digests the canonical form of the signed element. Because we
//! generate the XML, we can emit it already canonical, digest the exact text we emit and skip a
//! canonicalizer altogether ([`super::dsig`]). What makes the output canonical:
//! - every element is prefixed, and declares its namespace exactly where exc-c14n renders it:
//!   on the element that uses the prefix, unless an ancestor *in the output* already did. Apex
//!   serialisation ([`El::to_canonical`]) and in-document serialisation therefore agree for every
//!   subtree;
//! - attributes are all unqualified and written sorted by name;
//! - no self-closing tags, no whitespace we did not put there on purpose;
//! - text and attribute values escaped with the C14N rules (see [`escape_text`], [`escape_attr`]).
//!
//! Values are escaped here and only here; callers pass plain strings. Characters XML 1.0 cannot
//! carry at all (most C0 controls, U+FFFE/U+FFFF) become U+FFFD instead of making the document
//! ill-formed.

/// The namespaces we write, each with one fixed prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    Protocol,
    Assertion,
    Metadata,
    Dsig,
    Xenc,
}

impl Ns {
    pub fn prefix(self) -> &'static str {
        match self {
            Ns::Protocol => "samlp",
            Ns::Assertion => "saml",
            Ns::Metadata => "md",
            Ns::Dsig => "ds",
            Ns::Xenc => "xenc",
        }
    }

    pub fn uri(self) -> &'static str {
        match self {
            Ns::Protocol => super::ns::PROTOCOL,
            Ns::Assertion => super::ns::ASSERTION,
            Ns::Metadata => super::ns::METADATA,
            Ns::Dsig => super::ns::DSIG,
            Ns::Xenc => super::ns::XENC,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Ns::Protocol => 1,
            Ns::Assertion => 2,
            Ns::Metadata => 4,
            Ns::Dsig => 8,
            Ns::Xenc => 16,
        }
    }
}

/// An element to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct El {
    ns: Ns,
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
    children: Vec<Child>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Child {
    El(El),
    Text(String),
}

impl El {
    pub fn new(ns: Ns, name: &'static str) -> Self {
        El {
            ns,
            name,
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Add an (unqualified) attribute. Order does not matter: output is sorted.
    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        debug_assert!(
            !self.attrs.iter().any(|(n, _)| *n == name),
            "duplicate attribute {name}"
        );
        self.attrs.push((name, value.into()));
        self
    }

    /// Replace (or add) an attribute's value.
    pub fn set_attr(&mut self, name: &'static str, value: impl Into<String>) {
        match self.attrs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value.into(),
            None => self.attrs.push((name, value.into())),
        }
    }

    pub fn attr_opt(self, name: &'static str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.attr(name, value),
            None => self,
        }
    }

    pub fn child(mut self, child: El) -> Self {
        self.children.push(Child::El(child));
        self
    }

    pub fn children(mut self, children: impl IntoIterator<Item = El>) -> Self {
        self.children.extend(children.into_iter().map(Child::El));
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Child::Text(text.into()));
        self
    }

    /// Insert a child element at `index` among all children (text included).
    pub fn insert(&mut self, index: usize, child: El) {
        let index = index.min(self.children.len());
        self.children.insert(index, Child::El(child));
    }

    /// The value of one of our own attributes (used to find the ID to reference).
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The exc-c14n form of this element as the apex of the canonicalised node set.
    pub fn to_canonical(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.write(&mut out, 0);
        out
    }

    /// A full document: the XML declaration, then the canonical element.
    pub fn to_document(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        out.push('\n');
        self.write(&mut out, 0);
        out
    }

    /// Pretty-print by adding whitespace text between child elements (for documents people read,
    /// such as metadata). Done before signing, the whitespace is simply part of what is signed.
    pub fn indent(&mut self, level: usize) {
        let element_only =
            !self.children.is_empty() && self.children.iter().all(|c| matches!(c, Child::El(_)));
        if !element_only {
            return;
        }
        let inner = format!("\n{}", "  ".repeat(level + 1));
        let outer = format!("\n{}", "  ".repeat(level));
        let mut children = Vec::with_capacity(self.children.len() * 2 + 1);
        for child in std::mem::take(&mut self.children) {
            children.push(Child::Text(inner.clone()));
            if let Child::El(mut el) = child {
                el.indent(level + 1);
                children.push(Child::El(el));
            }
        }
        children.push(Child::Text(outer));
        self.children = children;
    }

    /// `rendered`: the namespaces an output ancestor already declared (bit set of [`Ns::bit`]).
    fn write(&self, out: &mut String, rendered: u8) {
        let prefix = self.ns.prefix();
        out.push('<');
        out.push_str(prefix);
        out.push(':');
        out.push_str(self.name);
        let mut in_scope = rendered;
        if rendered & self.ns.bit() == 0 {
            out.push_str(" xmlns:");
            out.push_str(prefix);
            out.push_str("=\"");
            out.push_str(self.ns.uri());
            out.push('"');
            in_scope |= self.ns.bit();
        }
        let mut attrs: Vec<&(&'static str, String)> = self.attrs.iter().collect();
        attrs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (name, value) in attrs {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_attr(value, out);
            out.push('"');
        }
        out.push('>');
        for child in &self.children {
            match child {
                Child::El(el) => el.write(out, in_scope),
                Child::Text(text) => escape_text(text, out),
            }
        }
        out.push_str("</");
        out.push_str(prefix);
        out.push(':');
        out.push_str(self.name);
        out.push('>');
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Most values need no escaping at all: copy them in one go. All escaped characters are ASCII,
/// and U+FFFE/U+FFFF both start with the byte 0xEF, so a byte scan decides.
fn needs_escaping(value: &str, attr: bool) -> bool {
    value.bytes().any(|b| match b {
        b'&' | b'<' | b'\r' | 0xEF => true,
        b'>' => !attr,
        b'"' | b'\t' | b'\n' => attr,
        b => b < 0x20 && b != b'\t' && b != b'\n',
    })
}

/// C14N text escaping: `&`, `<`, `>` and CR.
pub fn escape_text(value: &str, out: &mut String) {
    if !needs_escaping(value, false) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// C14N attribute escaping: `&`, `<`, `"`, TAB, LF, CR (`>` and `'` stay literal).
pub fn escape_attr(value: &str, out: &mut String) {
    if !needs_escaping(value, true) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::testkit;

    fn sample() -> El {
        El::new(Ns::Protocol, "Response")
            .attr("Version", "2.0")
            .attr("ID", "_1")
            .attr("Destination", "https://sp.test/acs?a=1&b=\"2\"\t<x>")
            .child(El::new(Ns::Assertion, "Issuer").text("Dupont & <Fils> \"q\" 'a'\r\n"))
            .child(
                El::new(Ns::Assertion, "Assertion")
                    .attr("ID", "_2")
                    .child(El::new(Ns::Assertion, "Issuer").text("Élodie 🦀"))
                    .child(El::new(Ns::Dsig, "Signature")),
            )
    }

    #[test]
    fn namespaces_go_where_exc_c14n_puts_them() {
        let xml = sample().to_canonical();
        assert_eq!(
            xml,
            concat!(
                r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" Destination="https://sp.test/acs?a=1&amp;b=&quot;2&quot;&#x9;&lt;x>" ID="_1" Version="2.0">"#,
                r#"<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">Dupont &amp; &lt;Fils&gt; "q" 'a'&#xD;"#,
                "\n",
                r#"</saml:Issuer><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_2"><saml:Issuer>Élodie 🦀</saml:Issuer>"#,
                r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"></ds:Signature></saml:Assertion></samlp:Response>"#
            )
        );
    }

    #[test]
    fn control_characters_cannot_break_the_document() {
        let mut out = String::new();
        escape_text("a\u{1}b\u{FFFF}c\u{FFFE}", &mut out);
        assert_eq!(out, "a\u{FFFD}b\u{FFFD}c\u{FFFD}");
        let mut out = String::new();
        escape_attr("a\u{1f}b\u{FFFF}>'", &mut out);
        assert_eq!(out, "a\u{FFFD}b\u{FFFD}>'");
        // The fast path leaves ordinary text (including U+FFFD itself and other 0xEF.. chars).
        let mut out = String::new();
        escape_text("plain \u{FFFD} \u{FF01} Élodie", &mut out);
        assert_eq!(out, "plain \u{FFFD} \u{FF01} Élodie");
    }

    /// The judge: libxml2's own exclusive canonicalisation of our output is our output.
    #[test]
    fn xmllint_exc_c14n_is_identity() {
        let Some(dir) = testkit::tool_dir("xmllint") else {
            return;
        };
        let mut el = sample();
        el.indent(0);
        let canonical = el.to_canonical();
        let path = dir.path().join("doc.xml");
        std::fs::write(&path, el.to_document()).unwrap();
        let out = std::process::Command::new("xmllint")
            .arg("--exc-c14n")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap(), canonical);
    }
}
