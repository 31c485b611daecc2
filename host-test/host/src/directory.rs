//! Where the host finds users when the component asks (`find-user`): a
//! [`Directory`]. [`Stored`] answers from the users pushed into the store
//! (the scenario runner, `host`, and `serve` for tenants without a
//! CometChat app); `serve` plugs in one that reads CometChat's REST API.

use crate::storage::{Storage, User};
use async_trait::async_trait;
use std::sync::Arc;

#[async_trait]
pub trait Directory: Send + Sync {
    /// The user `uid` of `tenant` as they are now, or `None` when there is
    /// no such user. `fresh`: the answer is the last check before an SMS
    /// (a due timer's call), so it must come from the source now, not a
    /// cache. An error fails the call (a timer's fires again later): never
    /// an answer guessed.
    async fn find_user(&self, tenant: &str, uid: &str, fresh: bool)
    -> Result<Option<User>, String>;
}

/// The users pushed into the store.
pub struct Stored(pub Arc<dyn Storage>);

#[async_trait]
impl Directory for Stored {
    async fn find_user(
        &self,
        tenant: &str,
        uid: &str,
        _fresh: bool,
    ) -> Result<Option<User>, String> {
        self.0
            .find_user(tenant, uid)
            .await
            .map_err(|e| e.to_string())
    }
}
