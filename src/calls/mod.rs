//! What each call of the contract decides: pure functions from the event
//! and the records it concerns to a [`crate::model::Decision`].

pub mod deliver;
pub mod expiry;
pub mod inspect;
pub mod notify;
pub mod preview;
pub mod status;
