//! The SMS body: who wrote, how many messages, a preview of the latest.

/// Longest preview of the latest text, in characters, so one SMS stays short.
pub const MAX_PREVIEW_CHARS: usize = 100;

/// What the body tells about.
pub struct Notice<'a> {
    pub sender_name: &'a str,
    pub unread: u32,
    pub latest_text: &'a str,
    pub website_url: Option<&'a str>,
}

/// "New message from Alice: see you at 8?" or "3 new messages from Alice: …",
/// with the website link on its own line when set.
pub fn body(notice: &Notice<'_>) -> String {
    let mut out = match notice.unread {
        0 | 1 => format!("New message from {}", notice.sender_name),
        n => format!("{n} new messages from {}", notice.sender_name),
    };
    let preview = preview(notice.latest_text);
    if !preview.is_empty() {
        out.push_str(": ");
        out.push_str(&preview);
    }
    if let Some(url) = notice.website_url {
        out.push('\n');
        out.push_str(url);
    }
    out
}

/// The text on one line, cut at a character boundary with an ellipsis.
fn preview(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX_PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", flat[..cut].trim_end()),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(unread: u32, text: &str) -> Notice<'_> {
        Notice {
            sender_name: "Alice",
            unread,
            latest_text: text,
            website_url: None,
        }
    }

    #[test]
    fn one_and_many() {
        assert_eq!(body(&notice(1, "hi")), "New message from Alice: hi");
        assert_eq!(
            body(&notice(3, "see you\n at 8?")),
            "3 new messages from Alice: see you at 8?"
        );
    }

    #[test]
    fn link_goes_last() {
        let n = Notice {
            website_url: Some("https://chat.example.com"),
            ..notice(1, "hi")
        };
        assert_eq!(
            body(&n),
            "New message from Alice: hi\nhttps://chat.example.com"
        );
    }

    #[test]
    fn long_previews_are_cut_on_a_character() {
        let text = "é".repeat(300);
        let b = body(&notice(1, &text));
        assert!(b.ends_with('…'));
        assert_eq!(b.chars().filter(|&c| c == 'é').count(), MAX_PREVIEW_CHARS);
    }
}
