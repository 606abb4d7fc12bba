//! The strict XML gate, and the small read-only tree the protocol readers work on.
//!
//! Every inbound document (AuthnRequest, LogoutRequest/Response, SP metadata) goes through
//! [`parse_strict`] before libxml2/xmlsec or any field reader sees it. It refuses what SAML never
//! needs and attackers love: DTDs (and with them entity declarations, XXE and "billion laughs"),
//! processing instructions, references to undeclared entities, oversize input and absurd nesting.
//!
//! The tree is namespace-resolved (elements and attributes carry their namespace URI, never a
//! prefix), so readers match `(urn:…:protocol, AuthnRequest)` whatever prefix the sender chose.
//!
//! Two parsers read every inbound protocol message: quick-xml here, and libxml2 inside xmlsec,
//! which verifies signatures. Whatever they read differently is a way to make the signature
//! checked and the message read be two different things (signature wrapping). So
//! [`parse_message`] builds the tree from libxml2's own document (the one xmlsec verifies) and
//! refuses the message unless quick-xml's tree is the same tree: every name, namespace,
//! attribute and text. The gate also refuses, with a specific error, the constructs known to be
//! read differently: namespace names written with character or entity references (libxml2
//! expands them, quick-xml keeps them raw), whitespace in namespace names, an attribute given
//! twice under two prefixes of one namespace, XML 1.1, characters XML forbids. Line ends and
//! attribute values are normalised here exactly as the XML specification (and libxml2) does.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Deeper nesting than this is not SAML; refusing it keeps every later recursive walk (ours,
/// libxml2's) far from stack limits.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("the XML document is {len} bytes, more than the {max}-byte limit")]
    Oversize { len: usize, max: usize },
    #[error("the XML document is not UTF-8 text")]
    NotUtf8,
    #[error("the XML document declares encoding {0:?}; only UTF-8 is accepted")]
    UnsupportedEncoding(String),
    #[error(
        "the XML document contains a DTD (<!DOCTYPE …>); DTDs and entity declarations are refused"
    )]
    Dtd,
    #[error("the XML document contains a processing instruction (<?{0} …?>); only the XML declaration is allowed")]
    ProcessingInstruction(String),
    #[error("the XML document has an XML declaration that is not at the very start")]
    MisplacedDeclaration,
    #[error("the XML document references an undeclared entity: {0}")]
    UndefinedEntity(String),
    #[error("the XML document nests elements deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the XML document uses an undeclared namespace prefix {0:?}")]
    UnboundPrefix(String),
    #[error("the XML document has no root element")]
    NoRoot,
    #[error("the XML document has content after its root element")]
    TrailingContent,
    #[error("the XML document declares version {0:?}; only XML 1.0 is accepted")]
    UnsupportedXmlVersion(String),
    #[error("the XML document contains character U+{0:04X}, which XML does not allow")]
    ForbiddenCharacter(u32),
    #[error(
        "the namespace declaration {declaration} is written with a character or entity \
         reference; namespace names must be written out literally"
    )]
    NamespaceReference { declaration: String },
    #[error("the namespace declaration {declaration} contains whitespace or is empty")]
    NamespaceWhitespace { declaration: String },
    #[error("the attribute {0} is given twice")]
    DuplicateAttribute(String),
    #[error("the XML parsers read this document differently ({0}); it is refused")]
    ParserDisagreement(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// An element with resolved names. Text children are kept in order with element children so
/// that readers concatenate all text of an element (a comment splitting a value must not
/// truncate it: the classic NameID comment attack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub ns: Option<String>,
    pub local: String,
    pub attrs: Vec<Attribute>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub ns: Option<String>,
    pub local: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// An attribute without namespace (all SAML attributes we read are unqualified).
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// Child elements, in document order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// All direct text of the element, concatenated.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.children {
            if let Node::Text(t) = c {
                out.push_str(t);
            }
        }
        out
    }

    /// Append text, merged with the text child before it (if any).
    pub(crate) fn push_text(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        match self.children.last_mut() {
            Some(Node::Text(text)) => text.push_str(value),
            _ => self.children.push(Node::Text(value.to_string())),
        }
    }

    /// This element with the child elements `drop` selects removed, and the text on both sides
    /// of each removed element merged (what an enveloped-signature transform leaves).
    pub fn without_children(&self, drop: &dyn Fn(&Element) -> bool) -> Element {
        let mut out = Element {
            ns: self.ns.clone(),
            local: self.local.clone(),
            attrs: self.attrs.clone(),
            children: Vec::with_capacity(self.children.len()),
        };
        for child in &self.children {
            match child {
                Node::Element(e) if drop(e) => {}
                Node::Element(e) => out.children.push(Node::Element(e.clone())),
                Node::Text(t) => out.push_text(t),
            }
        }
        out
    }

    /// Depth-first walk over this element and all descendants, with each one's depth
    /// (0 for `self`).
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Element, usize)) {
        fn go<'a>(e: &'a Element, depth: usize, visit: &mut dyn FnMut(&'a Element, usize)) {
            visit(e, depth);
            for child in e.elements() {
                go(child, depth + 1, visit);
            }
        }
        go(self, 0, visit)
    }
}

/// An inbound protocol message (AuthnRequest, LogoutRequest, LogoutResponse): the strict gate,
/// then the tree libxml2 builds from `input`, which must be the tree the gate built. The tree
/// returned is libxml2's, i.e. the document xmlsec verifies signatures in.
pub fn parse_message(input: &str, max_bytes: usize) -> Result<Element, XmlError> {
    let ours = parse_strict(input, max_bytes)?;
    let theirs = super::libxml2::parse(input)?;
    if let Some(difference) = first_difference(&ours, &theirs) {
        return Err(XmlError::ParserDisagreement(difference));
    }
    Ok(theirs)
}

/// Refuse what SAML messages never contain, building the tree in the same pass; `Ok` means any
/// XML parser may now read `input`.
pub fn parse_strict(input: &str, max_bytes: usize) -> Result<Element, XmlError> {
    if input.len() > max_bytes {
        return Err(XmlError::Oversize {
            len: input.len(),
            max: max_bytes,
        });
    }
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    // Raw characters XML forbids anywhere (in names, comments, text alike); references to
    // them are checked once expanded.
    if let Some(c) = input.chars().find(|c| !is_xml_char(*c)) {
        return Err(XmlError::ForbiddenCharacter(c as u32));
    }
    let mut reader = NsReader::from_str(input);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut first_event = true;
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(quick_xml_error)?;
        // Owned now: the resolution borrows the reader, which attribute resolution needs too.
        let element_ns = owned_ns(resolved);
        let was_first = std::mem::replace(&mut first_event, false);
        match event {
            Event::Decl(decl) => {
                if !was_first {
                    return Err(XmlError::MisplacedDeclaration);
                }
                let version = decl
                    .version()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                if version.as_ref() != b"1.0" {
                    return Err(XmlError::UnsupportedXmlVersion(
                        String::from_utf8_lossy(&version).to_string(),
                    ));
                }
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| XmlError::Malformed(e.to_string()))?;
                    let encoding = String::from_utf8_lossy(&encoding).to_string();
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(XmlError::UnsupportedEncoding(encoding));
                    }
                }
            }
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::PI(pi) => {
                let target = String::from_utf8_lossy(pi.target()).to_string();
                return Err(XmlError::ProcessingInstruction(target));
            }
            Event::Comment(_) => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err(XmlError::TrailingContent);
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let element = open_element(&reader, element_ns, &start)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let element = open_element(&reader, element_ns, &start)?;
                close_element(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches the open one.
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unmatched end tag".into()))?;
                close_element(element, &mut stack, &mut root);
            }
            Event::Text(text) => {
                let raw = std::str::from_utf8(&text).map_err(|_| XmlError::NotUtf8)?;
                let value = unescape_checked(&normalize_line_ends(raw))?;
                push_text(&mut stack, &value)?;
            }
            Event::CData(cdata) => {
                let raw = std::str::from_utf8(&cdata).map_err(|_| XmlError::NotUtf8)?;
                push_text(&mut stack, &normalize_line_ends(raw))?;
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "unclosed element at end of input".into(),
        ));
    }
    root.ok_or(XmlError::NoRoot)
}

/// The UTF-8 text of `input`, after the size check (so a huge body is refused before any work).
pub fn utf8_within(input: &[u8], max_bytes: usize) -> Result<&str, XmlError> {
    if input.len() > max_bytes {
        return Err(XmlError::Oversize {
            len: input.len(),
            max: max_bytes,
        });
    }
    std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)
}

/// The first place where two trees differ (names, namespaces, attributes as a set, text), as a
/// path a person can follow; `None` when they are the same tree.
pub fn first_difference(a: &Element, b: &Element) -> Option<String> {
    fn go(a: &Element, b: &Element, path: &mut String) -> Option<String> {
        let here = path.len();
        path.push('/');
        path.push_str(&a.local);
        if a.local != b.local || a.ns != b.ns {
            return Some(format!(
                "{path}: element {{{}}}{} against {{{}}}{}",
                a.ns.as_deref().unwrap_or(""),
                a.local,
                b.ns.as_deref().unwrap_or(""),
                b.local
            ));
        }
        let key = |x: &Attribute| (x.ns.clone(), x.local.clone(), x.value.clone());
        let mut attrs_a: Vec<_> = a.attrs.iter().map(key).collect();
        let mut attrs_b: Vec<_> = b.attrs.iter().map(key).collect();
        attrs_a.sort();
        attrs_b.sort();
        if attrs_a != attrs_b {
            return Some(format!("{path}: attributes differ"));
        }
        if a.children.len() != b.children.len() {
            return Some(format!("{path}: children differ"));
        }
        for (x, y) in a.children.iter().zip(&b.children) {
            match (x, y) {
                (Node::Text(x), Node::Text(y)) if x == y => {}
                (Node::Element(x), Node::Element(y)) => {
                    if let Some(found) = go(x, y, path) {
                        return Some(found);
                    }
                }
                _ => return Some(format!("{path}: text differs")),
            }
        }
        path.truncate(here);
        None
    }
    go(a, b, &mut String::new())
}

/// XML 1.0 `Char`: what a document may contain, literally or by reference.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML 1.0 §2.11: a parser reads CR LF and lone CR as LF (before references are expanded, so
/// `&#13;` stays a CR).
fn normalize_line_ends(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.contains('\r') {
        std::borrow::Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

/// Expand references, refusing those that name a character XML forbids (`&#0;`, `&#x1b;`…).
fn unescape_checked(raw: &str) -> Result<String, XmlError> {
    let value = quick_xml::escape::unescape(raw)
        .map_err(|e| quick_xml_error(quick_xml::Error::Escape(e)))?;
    if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
        return Err(XmlError::ForbiddenCharacter(c as u32));
    }
    Ok(value.into_owned())
}

/// `Ok(namespace)`, or `Err(())` for a prefix bound nowhere.
fn owned_ns(resolved: ResolveResult) -> Result<Option<String>, ()> {
    match resolved {
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.as_ref()).to_string())),
        ResolveResult::Unknown(_) => Err(()),
    }
}

fn open_element(
    reader: &NsReader<&[u8]>,
    element_ns: Result<Option<String>, ()>,
    start: &quick_xml::events::BytesStart,
) -> Result<Element, XmlError> {
    let ns = element_ns.map_err(|()| {
        XmlError::UnboundPrefix(String::from_utf8_lossy(start.name().as_ref()).to_string())
    })?;
    let local = String::from_utf8_lossy(start.local_name().as_ref()).to_string();
    let mut attrs: Vec<Attribute> = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = attr.key.as_ref();
        let raw = std::str::from_utf8(&attr.value).map_err(|_| XmlError::NotUtf8)?;
        if raw.contains('<') {
            return Err(XmlError::Malformed(format!(
                "the value of attribute {} contains `<`",
                String::from_utf8_lossy(key)
            )));
        }
        // Namespace declarations are already applied by the reader; they are not data. But
        // the reader keeps their value raw where libxml2 expands references: refuse what
        // the two would bind differently.
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            let declaration = format!("{}=\"{raw}\"", String::from_utf8_lossy(key));
            if raw.contains('&') {
                return Err(XmlError::NamespaceReference { declaration });
            }
            let prefixed = key != b"xmlns";
            if raw.chars().any(char::is_whitespace) || (prefixed && raw.is_empty()) {
                return Err(XmlError::NamespaceWhitespace { declaration });
            }
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(attr.key);
        let ns = owned_ns(resolved)
            .map_err(|()| XmlError::UnboundPrefix(String::from_utf8_lossy(key).to_string()))?;
        let local = String::from_utf8_lossy(local.as_ref()).to_string();
        // quick-xml compares attribute names as written; two prefixes of one namespace
        // name the same attribute (libxml2 keeps only one of them).
        if attrs.iter().any(|a| a.ns == ns && a.local == local) {
            return Err(XmlError::DuplicateAttribute(
                String::from_utf8_lossy(key).to_string(),
            ));
        }
        // §3.3.3: line ends, then each literal TAB/LF becomes a space (references stay).
        let normalized = normalize_line_ends(raw).replace(['\t', '\n'], " ");
        let value = unescape_checked(&normalized)?;
        attrs.push(Attribute { ns, local, value });
    }
    Ok(Element {
        ns,
        local,
        attrs,
        children: Vec::new(),
    })
}

fn close_element(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None => *root = Some(element),
    }
}

/// Adjacent text (split by a comment, a CDATA section or a reference) is one text node, as in
/// libxml2's tree once comments are left out.
fn push_text(stack: &mut [Element], value: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.push_text(value);
            Ok(())
        }
        // Outside the root only whitespace is allowed.
        None if value.trim().is_empty() => Ok(()),
        None => Err(XmlError::TrailingContent),
    }
}

fn quick_xml_error(error: quick_xml::Error) -> XmlError {
    use quick_xml::escape::{EscapeError, ParseCharRefError};
    match error {
        quick_xml::Error::Escape(EscapeError::InvalidCharRef(
            ParseCharRefError::IllegalCharacter(c),
        )) => XmlError::ForbiddenCharacter(c),
        quick_xml::Error::Escape(EscapeError::InvalidCharRef(e)) => {
            XmlError::Malformed(format!("invalid character reference: {e}"))
        }
        quick_xml::Error::Escape(escape) => {
            // Unknown `&name;` references would need a DTD to mean anything.
            XmlError::UndefinedEntity(escape.to_string())
        }
        other => XmlError::Malformed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64 * 1024;

    #[test]
    fn parses_namespaces_attributes_and_text() {
        let doc = parse_strict(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<p:Root xmlns:p="urn:p" xmlns="urn:d" a="1 &amp; 2"><Child>x<!-- c -->y<![CDATA[<z>]]></Child><p:Other/></p:Root>"#,
            MAX,
        )
        .unwrap();
        assert!(doc.is("urn:p", "Root"));
        assert_eq!(doc.attr("a"), Some("1 & 2"));
        let child = doc.child("urn:d", "Child").unwrap();
        assert_eq!(child.text(), "xy<z>");
        assert!(doc.child("urn:p", "Other").is_some());
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, XmlError)] = &[
            (
                r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"#,
                XmlError::Dtd,
            ),
            (r#"<!DOCTYPE r><r/>"#, XmlError::Dtd),
            (
                r#"<?xml version="1.0"?><?xml-stylesheet href="x"?><r/>"#,
                XmlError::ProcessingInstruction("xml-stylesheet".into()),
            ),
            (
                r#"<r><?php x?></r>"#,
                XmlError::ProcessingInstruction("php".into()),
            ),
            (r#"<r/><r/>"#, XmlError::TrailingContent),
            (r#"<r/>junk"#, XmlError::TrailingContent),
            (r#"  "#, XmlError::NoRoot),
            (r#"<p:r/>"#, XmlError::UnboundPrefix("p:r".into())),
            (
                r#"<?xml version="1.0" encoding="ISO-8859-1"?><r/>"#,
                XmlError::UnsupportedEncoding("ISO-8859-1".into()),
            ),
            (
                r#"<r> <?xml version="1.0"?></r>"#,
                XmlError::MisplacedDeclaration,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_strict(input, MAX).as_ref(), Err(expected), "{input}");
        }
        assert!(matches!(
            parse_strict("<r>&lol;</r>", MAX),
            Err(XmlError::UndefinedEntity(_))
        ));
        assert!(matches!(
            parse_strict("<r><a></b></r>", MAX),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_strict(r#"<r a="1" a="2"/>"#, MAX),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn size_and_depth_caps() {
        let big = format!("<r>{}</r>", "x".repeat(100));
        assert_eq!(
            parse_strict(&big, 50),
            Err(XmlError::Oversize { len: 107, max: 50 })
        );
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse_strict(&deep, MAX), Err(XmlError::TooDeep));
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse_strict(&ok, MAX).is_ok());
        assert_eq!(utf8_within(b"<r>\xff</r>", MAX), Err(XmlError::NotUtf8));
        assert_eq!(utf8_within(b"<r/>", MAX), Ok("<r/>"));
    }

    #[test]
    fn namespace_names_written_with_references_are_refused() {
        for value in crate::saml::testkit::DSIG_NS_SPELLINGS
            .iter()
            .copied()
            .chain(["urn:a&amp;b", "urn:&lt;x", "urn:&quot;"])
        {
            for decl in [
                format!("xmlns:ds=\"{value}\""),
                format!("xmlns=\"{value}\""),
            ] {
                let doc = format!("<r {decl}/>");
                let err = parse_strict(&doc, MAX).unwrap_err();
                assert!(
                    matches!(&err, XmlError::NamespaceReference { declaration } if declaration == &decl),
                    "{doc}: {err:?}"
                );
                assert!(err.to_string().contains("character or entity reference"));
            }
        }
        for doc in [
            r#"<r xmlns:p=" urn:x"/>"#,
            "<r xmlns:p=\"urn:x\t\"/>",
            "<r xmlns=\"urn:x\ny\"/>",
            r#"<r xmlns:p=""/>"#,
        ] {
            assert!(
                matches!(
                    parse_strict(doc, MAX),
                    Err(XmlError::NamespaceWhitespace { .. })
                ),
                "{doc}"
            );
        }
        // Undeclaring the default namespace is ordinary XML.
        assert!(parse_strict(r#"<r xmlns="urn:x"><a xmlns=""/></r>"#, MAX).is_ok());
    }

    #[test]
    fn same_attribute_under_two_prefixes_is_refused() {
        let doc = r#"<r xmlns:a="urn:x" xmlns:b="urn:x" a:ID="_1" b:ID="_2"/>"#;
        assert_eq!(
            parse_strict(doc, MAX),
            Err(XmlError::DuplicateAttribute("b:ID".into()))
        );
        // The unqualified attribute and a qualified one of the same local name are two.
        assert!(parse_strict(r#"<r xmlns:a="urn:x" ID="_1" a:ID="_2"/>"#, MAX).is_ok());
    }

    #[test]
    fn xml_1_1_and_forbidden_characters_are_refused() {
        assert_eq!(
            parse_strict(r#"<?xml version="1.1"?><r/>"#, MAX),
            Err(XmlError::UnsupportedXmlVersion("1.1".into()))
        );
        for (doc, c) in [
            ("<r>\u{1}</r>", 1),
            ("<r a=\"\u{1b}\"/>", 0x1b),
            ("<r>&#0;</r>", 0),
            ("<r>&#x1b;</r>", 0x1b),
            ("<r a=\"&#xFFFE;\"/>", 0xfffe),
            ("<r><!-- \u{8} --></r>", 8),
        ] {
            assert_eq!(
                parse_strict(doc, MAX),
                Err(XmlError::ForbiddenCharacter(c)),
                "{doc:?}"
            );
        }
    }

    /// What the XML specification says a parser reads, and so what libxml2 reads: both trees
    /// agree, and `parse_message` accepts.
    #[test]
    fn line_ends_and_attribute_whitespace_are_normalised_like_libxml2() {
        let doc = "<r a=\"x\ty\r\nz\" b=\"&#9;&#13;&#10;\">a\r\nb\rc&#13;<![CDATA[d\r\ne]]></r>";
        let ours = parse_strict(doc, MAX).unwrap();
        assert_eq!(ours.attr("a"), Some("x y z"));
        assert_eq!(ours.attr("b"), Some("\t\r\n"));
        assert_eq!(ours.text(), "a\nb\nc\rd\ne");
        assert_eq!(parse_message(doc, MAX), Ok(ours));
    }

    /// Comments split text for a parser that stops at the first text node; here, as in
    /// libxml2's tree once comments are dropped, the text is one.
    #[test]
    fn comments_and_cdata_do_not_split_text() {
        let doc = "<r>alice@acme.test<!-- x -->.evil.test<![CDATA[!]]></r>";
        let tree = parse_message(doc, MAX).unwrap();
        assert_eq!(
            tree.children,
            vec![Node::Text("alice@acme.test.evil.test!".into())]
        );
    }

    /// Inputs quick-xml reads but libxml2 would only repair: the two would not read the same
    /// document, so it is refused.
    #[test]
    fn documents_the_parsers_read_differently_are_refused() {
        for doc in [
            "<r>]]></r>",
            r#"<r a="1"b="2"/>"#,
            r#"<r 1a="x"/>"#,
            "<r:a:b xmlns:r='u'/>",
            "<r\u{2028}/>",
        ] {
            assert!(parse_strict(doc, MAX).is_ok(), "{doc:?}");
            assert!(
                matches!(
                    parse_message(doc, MAX),
                    Err(XmlError::ParserDisagreement(_))
                ),
                "{doc:?}"
            );
        }
    }

    #[test]
    fn first_difference_names_the_place() {
        let a = parse_strict(r#"<r xmlns:p="urn:x"><p:a k="1">t</p:a></r>"#, MAX).unwrap();
        let same = parse_strict(r#"<r xmlns:q="urn:x"><q:a k="1">t</q:a></r>"#, MAX).unwrap();
        assert_eq!(first_difference(&a, &same), None);
        let other_ns = parse_strict(r#"<r xmlns:p="urn:y"><p:a k="1">t</p:a></r>"#, MAX).unwrap();
        assert!(first_difference(&a, &other_ns)
            .unwrap()
            .starts_with("/r/a: element"));
        let other_attr = parse_strict(r#"<r xmlns:p="urn:x"><p:a k="2">t</p:a></r>"#, MAX).unwrap();
        assert_eq!(
            first_difference(&a, &other_attr).as_deref(),
            Some("/r/a: attributes differ")
        );
        let other_text = parse_strict(r#"<r xmlns:p="urn:x"><p:a k="1">u</p:a></r>"#, MAX).unwrap();
        assert_eq!(
            first_difference(&a, &other_text).as_deref(),
            Some("/r/a: text differs")
        );
    }

    #[test]
    fn byte_order_mark_is_read_alike() {
        let tree = parse_message("\u{feff}<r a=\"1\"/>", MAX).unwrap();
        assert_eq!(tree.attr("a"), Some("1"));
        assert!(matches!(
            parse_message("\u{feff}\u{feff}<r/>", MAX),
            Err(XmlError::TrailingContent
                | XmlError::Malformed(_)
                | XmlError::ParserDisagreement(_))
        ));
    }
}
