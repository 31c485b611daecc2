//! A message's text as the core keeps it: on one line, cut to what an SMS
//! could ever quote.

use crate::prelude::*;

/// Most characters of a text kept for the preview: no SMS body is longer.
pub const MAX_TEXT_CHARS: usize = crate::text::segments::MAX_CHARS;

/// `text` on one line (whitespace runs, newlines included, become one
/// space) and cut to [`MAX_TEXT_CHARS`] characters; whether it was cut.
/// Flattening comes first, so whitespace never costs kept text.
pub fn one_line(text: &str) -> (String, bool) {
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if !out.is_empty() {
            if chars == MAX_TEXT_CHARS {
                return (out, true);
            }
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars == MAX_TEXT_CHARS {
                return (out, true);
            }
            out.push(c);
            chars += 1;
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_flattened_before_it_is_cut() {
        let spaced = "a ".to_owned() + &" ".repeat(40);
        let (line, cut) = one_line(&spaced.repeat(60));
        assert_eq!(line, vec!["a"; 60].join(" "));
        assert!(!cut);
        let (line, cut) = one_line(&"ok\r\n".repeat(500));
        assert_eq!(line.len(), 500 * 3 - 1);
        assert!(!cut);
        let (line, cut) = one_line(&"x".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(line.chars().count(), MAX_TEXT_CHARS);
        assert!(cut);
        let (line, cut) = one_line(&format!("{} y", "x".repeat(MAX_TEXT_CHARS)));
        assert_eq!(line.chars().count(), MAX_TEXT_CHARS);
        assert!(cut);
    }
}
