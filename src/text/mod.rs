//! The SMS body: templates, GSM-7 / UCS-2 segments, and fitting a body to
//! its segments.

pub mod line;
pub mod render;
pub mod segments;
pub mod template;
