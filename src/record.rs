//! How records are stored in the tenant's state: compact JSON (short field
//! names), readable in a host's store. Bytes that do not decode count as no
//! record, never as a trap.

use miniserde::{Deserialize, Serialize, json};

/// A record kept in the host's state.
pub trait Record: Serialize + Deserialize {
    fn encode(&self) -> Vec<u8> {
        json::to_string(self).into_bytes()
    }

    /// The record in `bytes`, or `None` for bytes that are not one.
    fn decode(bytes: &[u8]) -> Option<Self> {
        json::from_str(std::str::from_utf8(bytes).ok()?).ok()
    }
}
