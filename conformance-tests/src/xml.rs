//! Just enough XML reading for tests that look at raw answers: the texts of an element,
//! in document order (the answers' values are never nested in the elements asked for).

/// Every `<tag>text</tag>` of `xml`, in order.
pub fn texts<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(&rest[..j]);
        rest = &rest[j + close.len()..];
    }
    out
}

/// The first `<tag>text</tag>` of `xml`.
pub fn text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    texts(xml, tag).into_iter().next()
}

#[cfg(test)]
mod tests {
    #[test]
    fn texts_in_order() {
        let x = "<A><Name>a</Name><B><Name>b</Name></B><Name></Name></A>";
        assert_eq!(super::texts(x, "Name"), vec!["a", "b", ""]);
        assert_eq!(super::text(x, "Missing"), None);
    }
}
