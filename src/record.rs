//! How records are stored in the tenant's state: compact JSON (short field
//! names), readable in a host's store. Bytes that do not decode count as no
//! record, never as a trap.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A record kept in the host's state.
pub trait Record: Serialize + DeserializeOwned {
    fn encode(&self) -> Vec<u8> {
        // Plain structs of strings, numbers and lists always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The record in `bytes`, or `None` for bytes that are not one.
    fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}
