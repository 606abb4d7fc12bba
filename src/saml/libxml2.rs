//! The tree of a document as libxml2 reads it: the reader xmlsec verifies signatures with.
//!
//! [`parse`] makes the very call samael's verifier makes (`libxml::parser::Parser::default()
//! .parse_string`, same options), so the tree built here is the tree xmlsec works on, and
//! [`super::xml::parse_message`] can refuse any document the strict gate reads differently.
//! libxml2's default options here include *recovery*: a document it had to repair (not
//! well-formed, or not namespace-well-formed) is refused rather than read as repaired.

use std::ffi::CStr;
use std::sync::Once;

use libxml::bindings as ffi;

use super::xml::{Attribute, Element, Node, XmlError, MAX_DEPTH};

/// `input` as libxml2 reads it. Run the strict gate first: this only mirrors its tree.
pub(crate) fn parse(input: &str) -> Result<Element, XmlError> {
    // libxml2 asks for one initialisation before threads share it; later calls are no-ops.
    static INIT: Once = Once::new();
    INIT.call_once(|| unsafe { ffi::xmlInitParser() });

    let document = libxml::parser::Parser::default()
        .parse_string(input)
        .map_err(|e| XmlError::Malformed(format!("libxml2 cannot read it: {e}")))?;
    // SAFETY: `document` owns a parsed xmlDoc for the whole function; the tree is only read,
    // through the pointers libxml2 itself maintains.
    unsafe {
        let doc = document.doc_ptr();
        if doc.is_null() {
            return Err(XmlError::Malformed("libxml2 returned no document".into()));
        }
        let wanted = (ffi::xmlDocProperties_XML_DOC_WELLFORMED
            | ffi::xmlDocProperties_XML_DOC_NSVALID) as i32;
        if (*doc).properties & wanted != wanted {
            return Err(XmlError::ParserDisagreement(
                "libxml2 finds it not well-formed and would repair it".into(),
            ));
        }
        if !(*doc).intSubset.is_null() || !(*doc).extSubset.is_null() {
            return Err(XmlError::Dtd);
        }
        let root = ffi::xmlDocGetRootElement(doc);
        if root.is_null() {
            return Err(XmlError::NoRoot);
        }
        element(root, 0)
    }
}

/// # Safety
/// `node` is an element node of a live document.
unsafe fn element(node: *mut ffi::xmlNode, depth: usize) -> Result<Element, XmlError> {
    if depth >= MAX_DEPTH {
        return Err(XmlError::TooDeep);
    }
    let mut out = Element {
        ns: namespace((*node).ns),
        local: string((*node).name),
        attrs: Vec::new(),
        children: Vec::new(),
    };
    let mut attr = (*node).properties;
    while !attr.is_null() {
        let mut value = String::new();
        let mut part = (*attr).children;
        while !part.is_null() {
            match (*part).type_ {
                ffi::xmlElementType_XML_TEXT_NODE => value.push_str(&string((*part).content)),
                _ => {
                    return Err(XmlError::UndefinedEntity(format!(
                        "in attribute {}",
                        string((*attr).name)
                    )))
                }
            }
            part = (*part).next;
        }
        out.attrs.push(Attribute {
            ns: namespace((*attr).ns),
            local: string((*attr).name),
            value,
        });
        attr = (*attr).next;
    }
    let mut child = (*node).children;
    while !child.is_null() {
        match (*child).type_ {
            ffi::xmlElementType_XML_ELEMENT_NODE => {
                out.children.push(Node::Element(element(child, depth + 1)?));
            }
            ffi::xmlElementType_XML_TEXT_NODE | ffi::xmlElementType_XML_CDATA_SECTION_NODE => {
                out.push_text(&string((*child).content));
            }
            ffi::xmlElementType_XML_COMMENT_NODE => {}
            ffi::xmlElementType_XML_PI_NODE => {
                return Err(XmlError::ProcessingInstruction(string((*child).name)));
            }
            ffi::xmlElementType_XML_ENTITY_REF_NODE => {
                return Err(XmlError::UndefinedEntity(string((*child).name)));
            }
            other => {
                return Err(XmlError::Malformed(format!(
                    "unexpected libxml2 node type {other}"
                )))
            }
        }
        child = (*child).next;
    }
    Ok(out)
}

/// # Safety
/// `ns` is null or a live namespace of the document.
unsafe fn namespace(ns: *mut ffi::xmlNs) -> Option<String> {
    if ns.is_null() || (*ns).href.is_null() {
        None
    } else {
        Some(string((*ns).href))
    }
}

/// # Safety
/// `s` is null or a NUL-terminated string owned by the document.
unsafe fn string(s: *const ffi::xmlChar) -> String {
    if s.is_null() {
        String::new()
    } else {
        CStr::from_ptr(s as *const std::ffi::c_char)
            .to_string_lossy()
            .into_owned()
    }
}
