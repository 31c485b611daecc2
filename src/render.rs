//! The SMS body: the tenant's template filled in, then fitted to its
//! segment budget by shortening only the preview (and, for absurdly long
//! names, the sender), never the link, never inside a character.

use crate::prelude::*;

use crate::segments::{self, Encoding};
use crate::template::{Template, Values};

/// Longest sender name shown; longer names are cut with an ellipsis.
pub const MAX_SENDER_CHARS: usize = 40;

/// What the body tells about.
pub struct Notice<'a> {
    pub sender_name: &'a str,
    pub unread: u32,
    pub latest_text: &'a str,
}

/// How the tenant wants bodies written.
pub struct Style<'a> {
    pub template: &'a Template,
    pub link: Option<&'a str>,
    /// When false the preview is always empty (privacy).
    pub include_text: bool,
    pub max_segments: usize,
}

/// The body for `notice`, within `style.max_segments` and Twilio's 1600
/// characters.
pub fn body(style: &Style<'_>, notice: &Notice<'_>) -> String {
    let preview = if style.include_text {
        flatten(notice.latest_text)
    } else {
        String::new()
    };
    let sender = flatten(notice.sender_name);
    let sender = cut(&sender, MAX_SENDER_CHARS, ellipsis(&sender));
    let render = |sender: &str, preview: &str| {
        style.template.render(&Values {
            sender,
            count: notice.unread,
            preview,
            link: style.link.unwrap_or(""),
        })
    };
    let fits = |body: &str| segments::fits(body, style.max_segments);

    let full = render(&sender, &preview);
    if fits(&full) {
        return full;
    }
    let mark = ellipsis(&full);
    if let Some(body) = longest(&preview, |p| render(&sender, &with_mark(p, mark)), fits) {
        return body;
    }
    // Even an empty preview does not fit: the sender's name goes too.
    let mark = ellipsis(&render(&sender, ""));
    if let Some(body) = longest(&sender, |s| render(&with_mark(s, mark), ""), fits) {
        return body;
    }
    // Settings validation keeps the template and link within the budget, so
    // this is only reached with hand-built settings: cut the body itself.
    let whole = render("", "");
    longest(&whole, str::to_owned, fits).unwrap_or_default()
}

/// The ellipsis that costs least in the body's encoding: `…` only where the
/// body is UCS-2 anyway, three dots where GSM-7 can carry them.
fn ellipsis(body: &str) -> &'static str {
    match segments::encoding(body) {
        Encoding::Gsm7 => "...",
        Encoding::Ucs2 => "…",
    }
}

fn with_mark(prefix: &str, mark: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{}{mark}", prefix.trim_end())
    }
}

/// Whitespace runs (newlines included) become one space.
fn flatten(text: &str) -> String {
    // No body is longer than Twilio's limit: more text is never needed.
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.len() > segments::MAX_CHARS * 4 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `text` cut to `max` characters with `mark`, at a character boundary.
fn cut(text: &str, max: usize, mark: &str) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}{mark}", text[..at].trim_end()),
        None => text.to_owned(),
    }
}

/// The body made from the longest prefix of `text` (cut at a character
/// boundary) that `fits`, by binary search: a shorter prefix never makes a
/// longer body. `None` if not even the empty prefix fits.
fn longest(
    text: &str,
    make: impl Fn(&str) -> String,
    fits: impl Fn(&str) -> bool,
) -> Option<String> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .take(segments::MAX_CHARS + 1)
        .collect();
    // Invariant: bounds[lo] fits (or lo = 0), bounds[hi] does not.
    let (mut lo, mut hi) = (0, bounds.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fits(&make(&text[..bounds[mid]])) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let body = make(&text[..bounds[lo]]);
    fits(&body).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::count;
    use crate::template::{DEFAULT, DEFAULT_PRIVATE};

    fn style(template: &Template, max_segments: usize) -> Style<'_> {
        Style {
            template,
            link: None,
            include_text: true,
            max_segments,
        }
    }

    fn notice(text: &str) -> Notice<'_> {
        Notice {
            sender_name: "Alice",
            unread: 3,
            latest_text: text,
        }
    }

    #[test]
    fn short_bodies_are_untouched() {
        let t = Template::parse(DEFAULT).unwrap();
        assert_eq!(
            body(&style(&t, 1), &notice("see you\n at 8?")),
            "3 new messages from Alice: see you at 8?"
        );
    }

    #[test]
    fn long_gsm_previews_are_cut_with_three_dots_to_one_segment() {
        let t = Template::parse(DEFAULT).unwrap();
        let b = body(&style(&t, 1), &notice(&"word ".repeat(100)));
        assert!(b.ends_with("..."), "{b}");
        assert_eq!(count(&b), 1);
        assert!(
            b.len() > 150,
            "{} chars: the preview should fill the segment",
            b.len()
        );
    }

    #[test]
    fn emoji_previews_are_cut_between_characters() {
        let t = Template::parse(DEFAULT).unwrap();
        let b = body(&style(&t, 1), &notice(&"🙂".repeat(100)));
        assert!(b.ends_with('…'), "{b}");
        assert_eq!(count(&b), 1);
        assert!(b.encode_utf16().count() <= 70);
    }

    #[test]
    fn the_link_is_never_cut() {
        let t = Template::parse(DEFAULT).unwrap();
        let s = Style {
            link: Some("https://chat.example.com/open"),
            ..style(&t, 2)
        };
        let b = body(&s, &notice(&"x".repeat(1000)));
        assert!(b.ends_with("\nhttps://chat.example.com/open"), "{b}");
        assert_eq!(count(&b), 2);
    }

    #[test]
    fn privacy_leaves_the_text_out() {
        let t = Template::parse(DEFAULT_PRIVATE).unwrap();
        let s = Style {
            include_text: false,
            ..style(&t, 1)
        };
        assert_eq!(
            body(&s, &notice("secret plans")),
            "3 new messages from Alice"
        );
        let with_preview = Template::parse(DEFAULT).unwrap();
        let s = Style {
            include_text: false,
            ..style(&with_preview, 1)
        };
        assert!(!body(&s, &notice("secret plans")).contains("secret"));
    }

    #[test]
    fn huge_names_and_texts_still_fit() {
        let t = Template::parse(DEFAULT).unwrap();
        let n = Notice {
            sender_name: &"N".repeat(70_000),
            unread: 1,
            latest_text: &"€".repeat(1 << 20),
        };
        let b = body(&style(&t, 1), &n);
        assert_eq!(count(&b), 1);
        assert!(
            b.contains(&format!("{}...", "N".repeat(MAX_SENDER_CHARS))),
            "{b}"
        );
    }
}
