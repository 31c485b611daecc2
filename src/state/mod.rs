//! The records a tenant's state holds, where they live, how they are
//! encoded, and the timers that name them.

pub mod conversation;
pub mod history;
pub mod keys;
pub mod pause;
pub mod record;
pub mod suppression;
pub mod timer;
pub mod v020;
