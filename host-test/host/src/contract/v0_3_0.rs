//! Contract 0.3.0: its bindings and its host interface answered by the
//! newest one's. Frozen: the WIT is `host-test/host/wit/v0.3.0/`, as released.
//!
//! 0.4.0 only added exports (`on-edit`, `on-delete`) and a record
//! (`deletion`) to 0.3.0: every type 0.3.0 uses is the newest one, field
//! for field, so its `types` interface is bound to the newest module
//! (`with`) and nothing is converted. What 0.3.0 lacks is answered in
//! `contract/mod.rs`.

use crate::bindings::sms_notification::extension::host as new_host;
use crate::sandbox::Sandbox;

wasmtime::component::bindgen!({
    path: "wit/v0.3.0",
    world: "sms-notification",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "sms-notification:extension/types@0.3.0": crate::bindings::sms_notification::extension::types,
    },
});

use self::sms_notification::extension::host;
use crate::bindings::sms_notification::extension::types::{Level, User};

/// The 0.3.0 host interface is the newest one.
impl host::Host for Sandbox {
    async fn settings(&mut self) -> wasmtime::Result<Option<String>> {
        new_host::Host::settings(self).await
    }

    async fn settings_revision(&mut self) -> wasmtime::Result<u64> {
        new_host::Host::settings_revision(self).await
    }

    async fn find_user(&mut self, uid: String) -> wasmtime::Result<Option<User>> {
        new_host::Host::find_user(self, uid).await
    }

    async fn state_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        new_host::Host::state_get(self, key).await
    }

    async fn commit(&mut self, changes: Vec<host::Change>) -> wasmtime::Result<Result<(), String>> {
        let changes = changes
            .into_iter()
            .map(|c| match c {
                host::Change::Put(e) => new_host::Change::Put(new_host::Entry {
                    key: e.key,
                    value: e.value,
                }),
                host::Change::Delete(key) => new_host::Change::Delete(key),
                host::Change::SetTimer(t) => new_host::Change::SetTimer(new_host::Timer {
                    key: t.key,
                    due_at: t.due_at,
                }),
                host::Change::CancelTimer(key) => new_host::Change::CancelTimer(key),
            })
            .collect();
        new_host::Host::commit(self, changes).await
    }

    async fn log(&mut self, level: Level, line: String) -> wasmtime::Result<()> {
        new_host::Host::log(self, level, line).await
    }

    async fn utc_offset(&mut self, zone: String, at: u64) -> wasmtime::Result<Option<i32>> {
        new_host::Host::utc_offset(self, zone, at).await
    }
}

/// The state entries handed to 0.3.0's `inspect`.
pub fn entries(state: &[new_host::Entry]) -> Vec<host::Entry> {
    state
        .iter()
        .map(|e| host::Entry {
            key: e.key.clone(),
            value: e.value.clone(),
        })
        .collect()
}
