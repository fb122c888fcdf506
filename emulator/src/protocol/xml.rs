//! XML in and out. Request bodies are parsed into a small element tree (bodies here are
//! bounded and small); responses are written with a tiny escaping writer.

use crate::protocol::error::{Result, StorageError};
use quick_xml::events::Event;
use quick_xml::Reader;

pub const DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

/// Deeper documents than this are refused before they cost anything.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Parses a whole document and returns its root element.
pub fn parse(body: &[u8]) -> Result<Element> {
    let text = std::str::from_utf8(body)
        .map_err(|_| StorageError::xml("The document is not valid UTF-8."))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let bad = |e: &dyn std::fmt::Display| StorageError::xml(format!("{e}"));
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(StorageError::xml("Content after the root element."));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(StorageError::xml("The document is nested too deeply."));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Element {
                    name,
                    ..Default::default()
                });
            }
            Event::Empty(e) => {
                let el = Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Default::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(StorageError::xml("Content after the root element.")),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| StorageError::xml("Unexpected end tag."))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| bad(&e))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(StorageError::xml("Text outside the root element.")),
                }
            }
            Event::CData(c) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&c.into_inner()));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(StorageError::xml(
            "The document ended before its root element was closed.",
        ));
    }
    root.ok_or_else(|| StorageError::xml("The document has no root element."))
}

pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// A minimal writer: `w.open("A").elem("B", "text").close("A")`.
#[derive(Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            out: String::from(DECL),
        }
    }

    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.out.push_str(s);
        self
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn open_attr(&mut self, name: &str, attr: &str, value: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(attr);
        self.out.push_str("=\"");
        self.out.push_str(&escape(value));
        self.out.push_str("\">");
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" />");
        self
    }

    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.out.push_str(&escape(text));
        self.close(name)
    }

    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.elem(name, t);
        }
        self
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips_text() {
        let text = "a < b & \"c\" 'd' \u{1F600}  spaces  \n";
        let mut w = Writer::new();
        let doc = w
            .open("QueueMessage")
            .elem("MessageText", text)
            .close("QueueMessage")
            .finish();
        let root = parse(doc.as_bytes()).expect("parse");
        assert_eq!(root.name, "QueueMessage");
        assert_eq!(root.child_text("MessageText"), Some(text));
    }

    #[test]
    fn empty_elements_and_cdata() {
        let root = parse(b"<A><B/><C><![CDATA[x<y]]></C></A>").expect("parse");
        assert_eq!(root.child_text("B"), Some(""));
        assert_eq!(root.child_text("C"), Some("x<y"));
    }

    #[test]
    fn rejects_bad_documents() {
        for bad in [
            &b""[..],
            b"<A>",
            b"<A></B>",
            b"<A/><B/>",
            b"not xml",
            b"<A>&bogus;</A>",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
