//! Untrusted bytes (names, arguments, paths) made safe for a terminal.

use std::fmt::Write as _;

/// Untrusted bytes made safe and visible for a terminal: no control
/// character (C0, DEL, C1) or invisible direction/line-separator character
/// survives, invalid UTF-8 shows as `\xNN`, and `\` itself is doubled so
/// the escapes are unambiguous.
pub fn escape_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\x1b' => out.push_str("\\e"),
                c if u32::from(c) < 0x20 || c == '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c if c.is_control() || is_invisible_format(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Characters that reorder or hide text (Trojan Source) or break lines in
/// some terminals.
pub(super) fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// An escaped word, in double quotes when it would otherwise not read as
/// one word (empty, spaces, quotes, brackets, our `|` separator).
pub(super) fn word(bytes: &[u8]) -> String {
    let escaped = escape_text(bytes);
    let plain = !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '[' | ']' | '|'));
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('"', "\\\""))
    }
}
