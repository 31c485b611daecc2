//! `preview`: the exact SMS the settings would send for a sample, with how
//! it travels, for a settings page. The same [`crate::text::render::body`] the
//! delivery uses writes it, so the page never shows a body the extension
//! would not send.

use crate::prelude::*;

use crate::policy::settings::Settings;
use crate::text::line::one_line;
use crate::text::render::{self, Notice, Style};
use crate::text::segments::{self, Encoding};
use crate::text::template::Values;

/// A sample notification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub sender_name: String,
    pub text: String,
    /// At least 1 is shown.
    pub unread: u32,
}

/// The body and how it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    pub body: String,
    pub encoding: Encoding,
    pub segments: u32,
    pub max_segments: u32,
    /// Units still free in the last segment.
    pub chars_left: u32,
    /// The body is not the template filled in whole: the text, the name
    /// (or both) were cut to fit.
    pub shortened: bool,
}

/// Stands in for the sender's uid, the body's last resort for a name that
/// cannot fit (a real SMS shows the uid there).
const SAMPLE_UID: &str = "user";

pub fn preview(settings: &Settings, sample: &Sample) -> Preview {
    let (latest, cut) = one_line(&sample.text);
    let unread = sample.unread.max(1);
    let name = if sample.sender_name.trim().is_empty() {
        SAMPLE_UID
    } else {
        sample.sender_name.as_str()
    };
    // The same template a real SMS with this text would use.
    let template = settings.template_for(&latest);
    let style = Style {
        template,
        link: settings.website_url.as_deref(),
        include_text: settings.include_text,
        max_segments: settings.max_segments as usize,
    };
    let body = render::body(
        &style,
        &Notice {
            sender_name: name,
            sender_uid: SAMPLE_UID,
            unread,
            latest_text: &latest,
            text_cut: cut,
        },
    );
    let whole = template.render(&Values {
        sender: &one_line(name).0,
        count: unread,
        preview: if settings.include_text { &latest } else { "" },
        link: settings.website_url.as_deref().unwrap_or(""),
    });
    let count = segments::count(&body);
    Preview {
        shortened: cut || body != whole,
        encoding: count.encoding,
        segments: count.segments as u32,
        max_segments: settings.max_segments as u32,
        chars_left: count.left as u32,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::settings::parse;

    fn settings(extra: &str) -> Settings {
        parse(&format!(
            r#"{{"twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"t","fromMobileNo":"+14155552671"{extra}}}"#
        ))
        .unwrap()
    }

    fn sample(name: &str, text: &str) -> Sample {
        Sample {
            sender_name: name.into(),
            text: text.into(),
            unread: 1,
        }
    }

    #[test]
    fn with_no_text_to_quote_the_default_template_leaves_the_preview_out() {
        let p = preview(&settings(""), &sample("Alice", "  "));
        assert_eq!(p.body, "1 new message from Alice");
        assert!(!p.shortened);
        // A template of the tenant's own is used as written.
        let own = settings(r#","template":"{sender}: {preview}""#);
        assert_eq!(preview(&own, &sample("Alice", "")).body, "Alice:");
    }

    #[test]
    fn gsm7_fits_one_segment() {
        let p = preview(&settings(""), &sample("Alice", "see you at 6"));
        assert_eq!(p.body, "1 new message from Alice: see you at 6");
        assert_eq!(p.encoding, Encoding::Gsm7);
        assert_eq!((p.segments, p.max_segments), (1, 1));
        assert_eq!(p.chars_left, 160 - 38);
        assert!(!p.shortened);
    }

    #[test]
    fn an_emoji_makes_it_ucs2() {
        let p = preview(&settings(""), &sample("Alice", "see you 🙂"));
        assert_eq!(p.encoding, Encoding::Ucs2);
        assert_eq!(p.segments, 1);
        assert_eq!(p.chars_left as usize, 70 - p.body.encode_utf16().count());
    }

    #[test]
    fn a_long_text_is_shortened_to_the_budget() {
        let long = "word ".repeat(100);
        let p = preview(&settings(""), &sample("Alice", &long));
        assert!(p.shortened);
        assert_eq!(p.segments, 1);
        assert!(p.body.ends_with("..."), "{}", p.body);
        let two = preview(&settings(r#","maxSegments":2"#), &sample("Alice", &long));
        assert_eq!((two.segments, two.max_segments), (2, 2));
        assert!(two.body.len() > p.body.len());
    }
}
