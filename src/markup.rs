//! Text put into HTML or XML that the service writes itself (emails,
//! podcast feeds): escaped so that no name or title a user chose can
//! become markup.

/// `text` made safe inside HTML or XML, attribute values too. Control
/// characters but line breaks and tabs are dropped: XML 1.0 has no place
/// for them.
pub fn escape(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => safe.push_str("&amp;"),
            '<' => safe.push_str("&lt;"),
            '>' => safe.push_str("&gt;"),
            '"' => safe.push_str("&quot;"),
            '\'' => safe.push_str("&#39;"),
            c if c.is_control() && !matches!(c, '\n' | '\t') => {}
            c => safe.push(c),
        }
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_become_markup() {
        assert_eq!(
            escape("<img src=x onerror=\"a&b\">'\u{1}"),
            "&lt;img src=x onerror=&quot;a&amp;b&quot;&gt;&#39;"
        );
    }
}
