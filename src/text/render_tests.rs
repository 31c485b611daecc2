use super::*;
use crate::text::segments::count;
use crate::text::template::{DEFAULT, DEFAULT_PRIVATE};

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
        sender_uid: "alice",
        unread: 1,
        latest_text: text,
        text_cut: false,
    }
}

fn default() -> Template {
    Template::parse(DEFAULT).unwrap()
}

#[test]
fn short_bodies_are_untouched() {
    let t = default();
    assert_eq!(
        body(&style(&t, 1), &notice("see you\n at 8?")),
        "1 new message from Alice: see you at 8?"
    );
}

#[test]
fn the_mark_follows_the_cut_not_the_uncut_text() {
    // The repro: a GSM preview cut before a later ’ keeps GSM-7.
    let t = default();
    let text = "Hi Bob, the meeting moved to 3pm in room B. Bring the slides and the budget sheet, and call me if you are running late. I’ll wait.";
    let b = body(&style(&t, 1), &notice(text));
    assert!(b.ends_with("late. I..."), "{b}");
    assert_eq!(count(&b).encoding, Encoding::Gsm7);
    assert_eq!(count(&b).units, 150);
}

#[test]
fn whitespace_never_costs_text() {
    let t = default();
    let spaced = ("a".to_owned() + &" ".repeat(40)).repeat(60);
    let b = body(&style(&t, 1), &notice(&spaced));
    assert_eq!(
        b,
        format!("1 new message from Alice: {}", vec!["a"; 60].join(" "))
    );
}

#[test]
fn a_stored_cut_always_shows_a_mark() {
    let t = Template::parse("{preview}").unwrap();
    let text = "x".repeat(150);
    let n = Notice {
        text_cut: true,
        ..notice(&text)
    };
    let b = body(&style(&t, 1), &n);
    assert!(b.ends_with("..."), "{b}");
    assert!(b.len() <= 160);
}

#[test]
fn emoji_previews_are_cut_between_graphemes() {
    let t = default();
    let b = body(&style(&t, 1), &notice(&"👍🏽".repeat(40)));
    assert!(b.ends_with('…'), "{b}");
    assert_eq!(count(&b).segments, 1);
    // Never a skin-tone modifier without its emoji.
    assert!(
        !b.contains("…🏽") && b.trim_end_matches('…').ends_with("👍🏽"),
        "{b}"
    );
    let flags = body(&style(&t, 1), &notice(&"🇩🇪".repeat(40)));
    let preview = flags
        .trim_start_matches("1 new message from Alice: ")
        .trim_end_matches('…');
    assert_eq!(
        preview.chars().count() % 2,
        0,
        "a flag is never halved: {flags}"
    );
}

#[test]
fn a_combining_accent_is_never_cut_off_its_letter() {
    let t = default();
    let text = "e\u{301}".repeat(100);
    let b = body(&style(&t, 1), &notice(&text));
    assert!(b.trim_end_matches('…').ends_with("e\u{301}"), "{b:?}");
}

#[test]
fn the_link_is_never_cut() {
    let t = default();
    let s = Style {
        link: Some("https://chat.example.com/open"),
        ..style(&t, 2)
    };
    let b = body(&s, &notice(&"x".repeat(1000)));
    assert!(b.ends_with("\nhttps://chat.example.com/open"), "{b}");
    assert_eq!(count(&b).segments, 2);
    // With thousands unread, too.
    let text = "x".repeat(1000);
    let n = Notice {
        unread: 123_456,
        ..notice(&text)
    };
    assert!(body(&s, &n).ends_with("\nhttps://chat.example.com/open"));
}

#[test]
fn emoji_names_shrink_but_never_vanish() {
    let t = default();
    let link = format!("https://chat.example.com/{}", "x".repeat(100));
    let s = Style {
        link: Some(&link),
        ..style(&t, 1)
    };
    let n = Notice {
        sender_name: "🦄 Alice",
        ..notice("🎉 hello")
    };
    let b = body(&s, &n);
    assert!(fits(&b, 1), "{b}");
    assert!(b.ends_with(&link), "{b}");
    assert!(b.contains("from Alice"), "{b}");
    assert!(!b.contains("from :"), "{b}");
}

fn fits(b: &str, max: usize) -> bool {
    crate::text::segments::fits(b, max)
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
        "1 new message from Alice"
    );
    let with_preview = default();
    let s = Style {
        include_text: false,
        ..style(&with_preview, 1)
    };
    assert!(!body(&s, &notice("secret plans")).contains("secret"));
}

#[test]
fn huge_names_and_texts_still_fit() {
    let t = default();
    let n = Notice {
        sender_name: &"N".repeat(70_000),
        latest_text: &"€".repeat(1 << 20),
        ..notice("")
    };
    let b = body(&style(&t, 1), &n);
    assert_eq!(count(&b).segments, 1);
    assert!(
        b.contains(&format!("{}...", "N".repeat(MAX_SENDER_GRAPHEMES))),
        "{b}"
    );
}

#[test]
fn the_preview_is_the_longest_that_fits() {
    let t = default();
    for max in 1..=3 {
        for text in ["word ".repeat(100), "😀 ".repeat(100), "a{b}c€".repeat(100)] {
            let b = body(&style(&t, max), &notice(&text));
            assert!(fits(&b, max));
            let preview = b.trim_start_matches("1 new message from Alice: ");
            let kept = preview.trim_end_matches("...").trim_end_matches('…');
            let n = segments::graphemes(kept).count();
            // One more grapheme that shows (a space alone is trimmed).
            let mut k = n + 1;
            let longer = loop {
                let longer: String = segments::graphemes(&text).take(k).collect();
                if longer.trim_end() != kept {
                    break longer;
                }
                k += 1;
            };
            let one_more = marked(&longer, &|p: &str| format!("1 new message from Alice: {p}"));
            assert!(!fits(&one_more, max), "cut too soon: {b:?} vs {one_more:?}");
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// For a body whose preview (of `text`) was cut as written, the body
    /// with one more visible grapheme, marked as the fitter would mark it.
    fn one_more_grapheme(
        b: &str,
        text: &str,
        link: &str,
        render: &impl Fn(&str) -> String,
    ) -> Option<String> {
        let whole = crate::text::line::one_line(text).0;
        let head = render("");
        let head = head
            .strip_suffix(&format!("\n{link}"))
            .unwrap_or(&head)
            .trim_end();
        let tail = if link.is_empty() {
            String::new()
        } else {
            format!("\n{link}")
        };
        let part = b.strip_prefix(&format!("{head} "))?.strip_suffix(&tail)?;
        if part == whole {
            return None;
        }
        let kept = part
            .strip_suffix("...")
            .or_else(|| part.strip_suffix('…'))
            .unwrap_or(part);
        // The GSM-7 fallback changed the text: not a cut as written.
        if !whole.starts_with(kept) {
            return None;
        }
        let mut more = segments::graphemes(kept).count() + 1;
        let longer = loop {
            let l: String = segments::graphemes(&whole).take(more).collect();
            if l.trim_end() != kept || more > whole.len() {
                break l;
            }
            more += 1;
        };
        (longer.trim_end() != whole).then(|| marked(&longer, render))
    }

    /// Pieces people write with: GSM letters and escapes, typographic
    /// quotes, emoji with modifiers, flags, combining accents, CJK,
    /// whitespace runs. No `…`: any in a body is then the fitter's mark.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a", "word ", "Hello", "{", "€", "[x]", "~", "’", "👍🏽", "🇩🇪", "e\u{301}", "漢字",
            "   \n\t ", "🎉", "ñ", "Ω", "\r\n",
        ])
    }

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 0..400).prop_map(|p| p.concat())
    }

    const TEMPLATES: [&str; 4] = [
        DEFAULT,
        "{messages} from {sender}: {preview}\n{link}",
        "Nouveau: {sender} ({count}) — {preview} {link}",
        "{sender}: {preview}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn bodies_fit_keep_the_link_and_never_waste_the_budget(
            template in 0..TEMPLATES.len(),
            name in prop::collection::vec(piece(), 1..12).prop_map(|p| p.concat()),
            text in text(),
            link in prop::option::of("https://chat\\.example\\.com/[a-z0-9]{0,40}"),
            unread in 1u32..100_000,
            max_segments in 1usize..=10,
        ) {
            let t = Template::parse(TEMPLATES[template]).unwrap();
            let link_str = link.as_deref().unwrap_or("");
            // Settings validation refuses a template that leaves no room.
            let bare = t.render(&crate::text::template::Values { sender: SHORTEST_SENDER, count: u32::MAX, preview: "", link: link_str });
            prop_assume!(segments::fits(&bare, max_segments));
            let s = Style { template: &t, link: link.as_deref(), include_text: true, max_segments };
            let n = Notice { sender_name: &name, sender_uid: "uid", unread, latest_text: &text, text_cut: false };
            let b = body(&s, &n);
            // Fits by the packing rule and Twilio's 1,600 characters.
            prop_assert!(segments::fits(&b, max_segments), "{:?}: {b:?}", count(&b));
            // The link is whole.
            if t.uses(crate::text::template::Field::Link) && !link_str.is_empty() {
                prop_assert!(b.contains(link_str), "link cut: {b:?}");
            }
            // A mark never makes the body UCS-2 on its own.
            if count(&b).encoding == Encoding::Ucs2 {
                prop_assert_eq!(segments::encoding(&b.replace('…', "...")), Encoding::Ucs2, "{:?}", b);
            }
            // Maximal: with the default template and a name that fits whole,
            // one more grapheme of the preview would not fit.
            if template == 0 && !name.trim().is_empty() {
                let sender = crate::text::line::one_line(&name).0;
                let render = |p: &str| t.render(&crate::text::template::Values { sender: &sender, count: unread, preview: p, link: link_str });
                if let Some(one_more) = one_more_grapheme(&b, &text, link_str, &render) {
                    prop_assert!(!segments::fits(&one_more, max_segments), "cut too soon: {b:?}, {one_more:?} fits");
                }
            }
        }
    }
}
