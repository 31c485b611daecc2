//! What the app developer decides (settings, quiet hours) and the limits
//! every setting and record keeps to.

pub mod limits;
pub mod quiet;
pub mod settings;
