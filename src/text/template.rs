//! SMS templates: text with named placeholders.
//!
//! `{sender}`, `{count}`, `{messages}` ("1 new message", "3 new messages"),
//! `{preview}` (the latest text) and `{link}` (the `websiteURL`, or nothing).
//! `{{` and `}}` write literal braces. A template is parsed once into parts;
//! values are inserted, never parsed again, so no input can make a
//! placeholder expand into another.

use crate::prelude::*;

/// A placeholder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Sender,
    Count,
    Messages,
    Preview,
    Link,
}

const FIELDS: [(&str, Field); 5] = [
    ("sender", Field::Sender),
    ("count", Field::Count),
    ("messages", Field::Messages),
    ("preview", Field::Preview),
    ("link", Field::Link),
];

/// [`FIELDS`] as a problem lists them (a constant: joining at run time
/// costs the component more bytes than the text).
const LIST: &str = "{sender}, {count}, {messages}, {preview}, {link}";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Field(Field),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The default with the message text: "3 new messages from Alice: see you
/// at 8?" and the link on its own line.
pub const DEFAULT: &str = "{messages} from {sender}: {preview}\n{link}";
/// The default without it (`includeMessageText: false`).
pub const DEFAULT_PRIVATE: &str = "{messages} from {sender}\n{link}";

/// The values a template is rendered with.
pub struct Values<'a> {
    pub sender: &'a str,
    pub count: u32,
    pub preview: &'a str,
    pub link: &'a str,
}

impl Template {
    /// Parses `source`; the error says where and what is wrong.
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &source[at + 1..];
                    let Some(end) = rest
                        .find(['}', '{'])
                        .filter(|&end| rest[end..].starts_with('}'))
                    else {
                        return Err(format!(
                            "unbalanced '{{' at character {}; write {{{{ for a literal brace",
                            char_position(source, at)
                        ));
                    };
                    let name = &rest[..end];
                    let Some(&(_, field)) = FIELDS.iter().find(|(n, _)| *n == name) else {
                        return Err(format!(
                            "unknown placeholder {{{}}} at character {}; the placeholders are {}",
                            shorten(name),
                            char_position(source, at),
                            LIST
                        ));
                    };
                    if !text.is_empty() {
                        parts.push(Part::Text(core::mem::take(&mut text)));
                    }
                    parts.push(Part::Field(field));
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "unbalanced '}}' at character {}; write }}}} for a literal brace",
                        char_position(source, at)
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { parts })
    }

    /// Whether the template shows `field` at all.
    pub fn uses(&self, field: Field) -> bool {
        self.parts.contains(&Part::Field(field))
    }

    /// The template with `values`, trailing whitespace trimmed (an empty
    /// `{link}` on the last line leaves nothing behind).
    pub fn render(&self, values: &Values<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(Field::Sender) => out.push_str(values.sender),
                Part::Field(Field::Count) => out.push_str(&values.count.to_string()),
                Part::Field(Field::Messages) => match values.count {
                    1 => out.push_str("1 new message"),
                    n => out.push_str(&format!("{n} new messages")),
                },
                Part::Field(Field::Preview) => out.push_str(values.preview),
                Part::Field(Field::Link) => out.push_str(values.link),
            }
        }
        out.truncate(out.trim_end().len());
        out
    }
}

fn char_position(source: &str, byte: usize) -> usize {
    source[..byte].chars().count() + 1
}

fn shorten(name: &str) -> String {
    match name.char_indices().nth(20) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_of_placeholders_names_every_field() {
        assert_eq!(LIST, FIELDS.map(|(n, _)| format!("{{{n}}}")).join(", "));
    }

    fn values() -> Values<'static> {
        Values {
            sender: "Alice",
            count: 3,
            preview: "see you at 8?",
            link: "",
        }
    }

    #[test]
    fn the_defaults_render() {
        let t = Template::parse(DEFAULT).unwrap();
        assert_eq!(
            t.render(&values()),
            "3 new messages from Alice: see you at 8?"
        );
        let with_link = Values {
            link: "https://x.example",
            count: 1,
            ..values()
        };
        assert_eq!(
            t.render(&with_link),
            "1 new message from Alice: see you at 8?\nhttps://x.example"
        );
        let private = Template::parse(DEFAULT_PRIVATE).unwrap();
        assert_eq!(private.render(&values()), "3 new messages from Alice");
        assert!(!private.uses(Field::Preview));
    }

    #[test]
    fn braces_escape_and_values_are_never_reparsed() {
        let t = Template::parse("{{{sender}}} said {preview}").unwrap();
        let v = Values {
            sender: "{count}",
            preview: "{{link}}",
            ..values()
        };
        assert_eq!(t.render(&v), "{{count}} said {{link}}");
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = Template::parse("Hi {name}").unwrap_err();
        assert!(
            e.contains("unknown placeholder {name} at character 4"),
            "{e}"
        );
        assert!(
            e.contains("{sender}, {count}, {messages}, {preview}, {link}"),
            "{e}"
        );
        let e = Template::parse("Hi {sender").unwrap_err();
        assert!(e.contains("unbalanced '{' at character 4"), "{e}");
        let e = Template::parse("Hi }").unwrap_err();
        assert!(e.contains("unbalanced '}' at character 4"), "{e}");
        let e = Template::parse("{sen{der}}").unwrap_err();
        assert!(e.contains("unbalanced '{' at character 1"), "{e}");
    }

    #[test]
    fn explosive_templates_are_linear() {
        let t = Template::parse(&"{{".repeat(10_000)).unwrap();
        assert_eq!(t.render(&values()).len(), 10_000);
        assert!(Template::parse(&"{".repeat(10_001)).is_err());
        assert!(Template::parse(&"{sender".repeat(1000)).is_err());
    }
}
