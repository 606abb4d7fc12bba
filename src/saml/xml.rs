//! The strict XML gate, and the small read-only tree the protocol readers work on.
//!
//! Every inbound document (AuthnRequest, LogoutRequest/Response, SP metadata) goes through
//! [`parse_strict`] before libxml2/xmlsec or any field reader sees it. It refuses what SAML never
//! needs and attackers love: DTDs (and with them entity declarations, XXE and "billion laughs"),
//! processing instructions, references to undeclared entities, oversize input and absurd nesting.
//!
//! The tree is namespace-resolved (elements and attributes carry their namespace URI, never a
//! prefix), so readers match `(urn:…:protocol, AuthnRequest)` whatever prefix the sender chose.

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

/// Refuse what SAML messages never contain; `Ok` means any XML parser may now read `input`.
pub fn check_strict_xml(input: &[u8], max_bytes: usize) -> Result<(), XmlError> {
    let text = utf8_within(input, max_bytes)?;
    parse_strict(text, max_bytes).map(|_| ())
}

/// [`check_strict_xml`] and build the tree in the same pass.
pub fn parse_strict(input: &str, max_bytes: usize) -> Result<Element, XmlError> {
    if input.len() > max_bytes {
        return Err(XmlError::Oversize {
            len: input.len(),
            max: max_bytes,
        });
    }
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
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
                let value = text.unescape().map_err(quick_xml_error)?;
                push_text(&mut stack, &value)?;
            }
            Event::CData(cdata) => {
                let value = cdata
                    .decode()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                push_text(&mut stack, &value)?;
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
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = attr.key.as_ref();
        // Namespace declarations are already applied by the reader; they are not data.
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(attr.key);
        let ns = owned_ns(resolved)
            .map_err(|()| XmlError::UnboundPrefix(String::from_utf8_lossy(key).to_string()))?;
        let value = attr.unescape_value().map_err(quick_xml_error)?.to_string();
        attrs.push(Attribute {
            ns,
            local: String::from_utf8_lossy(local.as_ref()).to_string(),
            value,
        });
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

fn push_text(stack: &mut [Element], value: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(Node::Text(value.to_string()));
            Ok(())
        }
        // Outside the root only whitespace is allowed.
        None if value.trim().is_empty() => Ok(()),
        None => Err(XmlError::TrailingContent),
    }
}

fn quick_xml_error(error: quick_xml::Error) -> XmlError {
    match error {
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
        assert_eq!(
            check_strict_xml(b"<r>\xff</r>", MAX),
            Err(XmlError::NotUtf8)
        );
        assert_eq!(check_strict_xml(b"<r/>", MAX), Ok(()));
    }
}
