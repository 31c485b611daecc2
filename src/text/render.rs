//! The SMS body: the tenant's template filled in, then fitted to its
//! segment budget (and Twilio's 1,600 characters) by shortening only the
//! preview, then the sender's name; never the link.
//!
//! Everything is cut by graphemes, never inside one. The mark that says
//! text was cut is chosen after the cut, by the encoding of what is sent:
//! `...` when the rest of the body is GSM-7, `…` when it is UCS-2 anyway.
//! The preview kept is the longest that fits (one more grapheme would not).
//! A sender's name that cannot fit whole keeps at least one grapheme and a
//! mark; if not even that fits (an emoji name making a long body UCS-2),
//! the name's GSM-7 characters are tried, then the uid.

use crate::prelude::*;

use crate::text::segments::{self, Encoding};
use crate::text::template::{Template, Values};

/// Longest sender name shown, in graphemes; longer names are cut with a
/// mark.
pub const MAX_SENDER_GRAPHEMES: usize = 40;

/// The shortest sender a body may show: settings validation makes sure the
/// template, the link and the largest count leave room for it.
pub const SHORTEST_SENDER: &str = "A...";

/// What the body tells about.
pub struct Notice<'a> {
    /// The display name of the other participant.
    pub sender_name: &'a str,
    /// Their uid: the last stand-in for a name that cannot fit.
    pub sender_uid: &'a str,
    pub unread: u32,
    /// The newest unread text.
    pub latest_text: &'a str,
    /// Whether `latest_text` is already a cut of a longer text: the preview
    /// then always ends with a mark.
    pub text_cut: bool,
}

/// How the tenant wants bodies written.
pub struct Style<'a> {
    pub template: &'a Template,
    pub link: Option<&'a str>,
    /// When false the preview is always empty (privacy).
    pub include_text: bool,
    pub max_segments: usize,
}

/// The body for `notice`, within `style.max_segments` and Twilio's 1,600
/// characters.
pub fn body(style: &Style<'_>, notice: &Notice<'_>) -> String {
    let preview = if style.include_text {
        crate::text::line::one_line(notice.latest_text).0
    } else {
        String::new()
    };
    let cut = style.include_text && notice.text_cut;
    let render = |sender: &str, preview: &str| {
        style.template.render(&Values {
            sender,
            count: notice.unread,
            preview,
            link: style.link.unwrap_or(""),
        })
    };
    let fits = |body: &str| segments::fits(body, style.max_segments);

    let name = crate::text::line::one_line(notice.sender_name).0;
    let gsm_name = gsm_only(&name);
    let gsm_preview = gsm_only(&preview);
    let senders = [name.as_str(), gsm_name.as_str(), notice.sender_uid, "?"];
    for candidate in senders.into_iter().filter(|c| !c.trim().is_empty()) {
        let sender = shorten(candidate, MAX_SENDER_GRAPHEMES);
        if !cut {
            let full = render(&sender, &preview);
            if fits(&full) {
                return full;
            }
        }
        // The preview shrinks, keeping at least one grapheme: as written,
        // else its GSM-7 characters (an emoji first would make the whole
        // body UCS-2, with less than half the room).
        let empty = render(&sender, "");
        for text in [&preview, &gsm_preview] {
            if let Some(body) =
                longest(text, true, |p| render(&sender, p), fits).filter(|body| *body != empty)
            {
                return body;
            }
        }
        if fits(&empty) {
            return empty;
        }
        // Then the name, keeping at least one grapheme.
        if let Some(body) =
            longest(&sender, false, |s| render(s, ""), fits).filter(|body| *body != render("", ""))
        {
            return body;
        }
    }
    // Settings validation keeps the template and link within the budget, so
    // this is only reached with hand-built settings: cut the body itself.
    let whole = render("", "");
    longest(&whole, false, str::to_owned, fits).unwrap_or_default()
}

/// `prefix` with the mark that costs least in the encoding of what `make`
/// renders with it: `...` where all of it is GSM-7, `…` where it is UCS-2.
fn marked(prefix: &str, make: &impl Fn(&str) -> String) -> String {
    let dots = make(&format!("{}...", prefix.trim_end()));
    if segments::encoding(&dots) == Encoding::Gsm7 {
        dots
    } else {
        make(&format!("{}…", prefix.trim_end()))
    }
}

/// The GSM-7 characters of `text`, on one line.
fn gsm_only(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|&c| segments::septets(c).is_some())
        .collect();
    crate::text::line::one_line(&kept).0
}

/// `text` cut to `max` graphemes, with the mark its own encoding makes
/// cheapest.
fn shorten(text: &str, max: usize) -> String {
    let mut end = 0;
    for (i, g) in segments::graphemes(text).enumerate() {
        if i == max {
            return marked(&text[..end], &|s: &str| s.to_owned());
        }
        end += g.len();
    }
    text.to_owned()
}

/// The body made from the longest grapheme prefix of `text` that `fits`,
/// with a mark when cut (and none for the empty prefix), by binary search:
/// a longer prefix never makes a shorter body. The whole text, uncut, was
/// tried by the caller; when `text` is itself a cut of a longer one
/// (`already_cut`), all of it with a mark is a candidate too. `None` if not
/// even the empty prefix fits.
fn longest(
    text: &str,
    already_cut: bool,
    make: impl Fn(&str) -> String,
    fits: impl Fn(&str) -> bool,
) -> Option<String> {
    let mut bounds = vec![0];
    for g in segments::graphemes(text).take(segments::MAX_CHARS) {
        bounds.push(bounds[bounds.len() - 1] + g.len());
    }
    let n = bounds.len() - 1;
    let complete = bounds[n] == text.len() && !already_cut;
    let body = |k: usize| match k {
        0 => make(""),
        k => marked(&text[..bounds[k]], &make),
    };
    // Candidates 0..top; `top` itself is known not to fit.
    let top = if complete { n } else { n + 1 };
    let (mut lo, mut hi) = (0, top);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fits(&body(mid)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let best = body(lo);
    fits(&best).then_some(best)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
