//! The contracts this host loads, and the one place older ones are
//! converted to the newest (as Zed's extension host keeps a module per
//! released API version). Everything else in the host speaks only the
//! newest contract's types ([`crate::bindings`]).
//!
//! A component is tried against the newest contract first, then each older
//! one; whichever its exports and imports match is the one it gets. An
//! older component lacks the newer exports: calling one is answered with a
//! typed error, never a trap.

pub mod v0_2_0;
pub mod v0_3_0;

use crate::bindings::sms_notification::extension::host::Entry;
use crate::bindings::sms_notification::extension::types::{
    Deletion, DeliveryReport, Error, Inspection, Message, Outcome, Preview, Problem, Receipt,
    Sample,
};
use crate::bindings::{SmsNotification, SmsNotificationPre};
use crate::sandbox::Sandbox;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Result, Store, format_err};

/// The newest contract's version.
pub const LATEST: &str = "0.4.0";

/// A compiled component, pre-instantiated against the contract it
/// implements.
#[derive(Clone)]
pub enum Pre {
    Latest(SmsNotificationPre<Sandbox>),
    V0_3_0(v0_3_0::SmsNotificationPre<Sandbox>),
    V0_2_0(v0_2_0::SmsNotificationPre<Sandbox>),
}

/// One sandbox's instance of the component.
pub enum Extension {
    Latest(SmsNotification),
    V0_3_0(v0_3_0::SmsNotification),
    V0_2_0(v0_2_0::SmsNotification),
}

/// Registers every contract's host interfaces (each version's is its own
/// WIT interface, so they live side by side).
pub fn add_to_linker(linker: &mut Linker<Sandbox>) -> Result<()> {
    use wasmtime::component::HasSelf;
    SmsNotification::add_to_linker::<Sandbox, HasSelf<Sandbox>>(linker, |s| s)?;
    v0_3_0::SmsNotification::add_to_linker::<Sandbox, HasSelf<Sandbox>>(linker, |s| s)?;
    v0_2_0::SmsNotification::add_to_linker::<Sandbox, HasSelf<Sandbox>>(linker, |s| s)?;
    Ok(())
}

impl Pre {
    /// `component` against the newest contract it implements.
    pub fn new(linker: &Linker<Sandbox>, component: &Component) -> Result<Self> {
        let pre: InstancePre<Sandbox> = linker.instantiate_pre(component)?;
        let latest = match SmsNotificationPre::new(pre.clone()) {
            Ok(p) => return Ok(Self::Latest(p)),
            Err(e) => e,
        };
        let v0_3_0 = match v0_3_0::SmsNotificationPre::new(pre.clone()) {
            Ok(p) => return Ok(Self::V0_3_0(p)),
            Err(e) => e,
        };
        match v0_2_0::SmsNotificationPre::new(pre) {
            Ok(p) => Ok(Self::V0_2_0(p)),
            Err(old) => Err(format_err!(
                "the component implements no contract this host knows: not {LATEST} ({latest:#}), \
                 not 0.3.0 ({v0_3_0:#}), not 0.2.0 ({old:#})"
            )),
        }
    }

    /// The contract version the component implements.
    pub fn version(&self) -> &'static str {
        match self {
            Self::Latest(_) => LATEST,
            Self::V0_3_0(_) => "0.3.0",
            Self::V0_2_0(_) => "0.2.0",
        }
    }

    pub fn engine(&self) -> &Engine {
        match self {
            Self::Latest(p) => p.engine(),
            Self::V0_3_0(p) => p.engine(),
            Self::V0_2_0(p) => p.engine(),
        }
    }

    pub async fn instantiate_async(&self, store: &mut Store<Sandbox>) -> Result<Extension> {
        Ok(match self {
            Self::Latest(p) => Extension::Latest(p.instantiate_async(store).await?),
            Self::V0_3_0(p) => Extension::V0_3_0(p.instantiate_async(store).await?),
            Self::V0_2_0(p) => Extension::V0_2_0(p.instantiate_async(store).await?),
        })
    }
}

/// What a component of an older contract answers to a call it lacks.
fn missing(call: &str, version: &str) -> String {
    format!(
        "this tenant's component implements contract {version}, which has no {call}; deploy a {LATEST} build"
    )
}

impl Extension {
    pub async fn call_validate_settings(
        &self,
        store: &mut Store<Sandbox>,
        json: &str,
    ) -> Result<std::result::Result<(), Vec<Problem>>> {
        match self {
            Self::Latest(e) => e.call_validate_settings(store, json).await,
            Self::V0_3_0(e) => e.call_validate_settings(store, json).await,
            Self::V0_2_0(e) => Ok(e
                .call_validate_settings(store, json)
                .await?
                .map_err(v0_2_0::problems)),
        }
    }

    pub async fn call_on_message(
        &self,
        store: &mut Store<Sandbox>,
        message: &Message,
    ) -> Result<std::result::Result<Outcome, Error>> {
        match self {
            Self::Latest(e) => e.call_on_message(store, message).await,
            Self::V0_3_0(e) => e.call_on_message(store, message).await,
            Self::V0_2_0(e) => Ok(v0_2_0::result(
                e.call_on_message(store, &v0_2_0::message(message)).await?,
            )),
        }
    }

    pub async fn call_on_read(
        &self,
        store: &mut Store<Sandbox>,
        receipt: &Receipt,
    ) -> Result<std::result::Result<Outcome, Error>> {
        match self {
            Self::Latest(e) => e.call_on_read(store, receipt).await,
            Self::V0_3_0(e) => e.call_on_read(store, receipt).await,
            Self::V0_2_0(e) => Ok(v0_2_0::result(
                e.call_on_read(store, &v0_2_0::receipt(receipt)).await?,
            )),
        }
    }

    /// An edited message; a component of an older contract answers
    /// `invalid-input` naming what it lacks.
    pub async fn call_on_edit(
        &self,
        store: &mut Store<Sandbox>,
        message: &Message,
    ) -> Result<std::result::Result<Outcome, Error>> {
        match self {
            Self::Latest(e) => e.call_on_edit(store, message).await,
            Self::V0_3_0(_) => Ok(Err(Error::InvalidInput(missing(
                "edits (on-edit)",
                "0.3.0",
            )))),
            Self::V0_2_0(_) => Ok(Err(Error::InvalidInput(missing(
                "edits (on-edit)",
                "0.2.0",
            )))),
        }
    }

    /// A deleted message; as [`Extension::call_on_edit`] for older
    /// contracts.
    pub async fn call_on_delete(
        &self,
        store: &mut Store<Sandbox>,
        deletion: &Deletion,
    ) -> Result<std::result::Result<Outcome, Error>> {
        match self {
            Self::Latest(e) => e.call_on_delete(store, deletion).await,
            Self::V0_3_0(_) => Ok(Err(Error::InvalidInput(missing(
                "deletions (on-delete)",
                "0.3.0",
            )))),
            Self::V0_2_0(_) => Ok(Err(Error::InvalidInput(missing(
                "deletions (on-delete)",
                "0.2.0",
            )))),
        }
    }

    pub async fn call_on_timer(
        &self,
        store: &mut Store<Sandbox>,
        key: &str,
    ) -> Result<std::result::Result<Outcome, Error>> {
        match self {
            Self::Latest(e) => e.call_on_timer(store, key).await,
            Self::V0_3_0(e) => e.call_on_timer(store, key).await,
            Self::V0_2_0(e) => Ok(v0_2_0::result(e.call_on_timer(store, key).await?)),
        }
    }

    pub async fn call_on_delivery_status(
        &self,
        store: &mut Store<Sandbox>,
        report: &DeliveryReport,
    ) -> Result<std::result::Result<Outcome, Error>> {
        match self {
            Self::Latest(e) => e.call_on_delivery_status(store, report).await,
            Self::V0_3_0(e) => e.call_on_delivery_status(store, report).await,
            Self::V0_2_0(_) => Ok(Err(Error::InvalidInput(missing(
                "delivery reports (on-delivery-status)",
                "0.2.0",
            )))),
        }
    }

    pub async fn call_preview(
        &self,
        store: &mut Store<Sandbox>,
        settings: &str,
        sample: &Sample,
    ) -> Result<std::result::Result<Preview, Vec<Problem>>> {
        match self {
            Self::Latest(e) => e.call_preview(store, settings, sample).await,
            Self::V0_3_0(e) => e.call_preview(store, settings, sample).await,
            Self::V0_2_0(_) => Ok(Err(vec![Problem {
                field: String::new(),
                message: missing("preview", "0.2.0"),
            }])),
        }
    }

    /// `None` for a component whose contract has no `inspect`.
    pub async fn call_inspect(
        &self,
        store: &mut Store<Sandbox>,
        state: &[Entry],
    ) -> Result<Option<Inspection>> {
        match self {
            Self::Latest(e) => Ok(Some(e.call_inspect(store, state).await?)),
            Self::V0_3_0(e) => Ok(Some(e.call_inspect(store, &v0_3_0::entries(state)).await?)),
            Self::V0_2_0(_) => Ok(None),
        }
    }
}

/// The newest contract's types and the store's own ([`crate::storage`]):
/// converted here, so the store never names a WIT binding.
mod to_storage {
    use crate::bindings::sms_notification::extension::{host, types};
    use crate::storage;

    impl From<host::Change> for storage::Change {
        fn from(change: host::Change) -> Self {
            match change {
                host::Change::Put(host::Entry { key, value }) => Self::Put { key, value },
                host::Change::Delete(key) => Self::Delete(key),
                host::Change::SetTimer(host::Timer { key, due_at }) => {
                    Self::SetTimer { key, due_at }
                }
                host::Change::CancelTimer(key) => Self::CancelTimer(key),
            }
        }
    }

    impl From<types::Level> for storage::Level {
        fn from(level: types::Level) -> Self {
            match level {
                types::Level::Debug => Self::Debug,
                types::Level::Info => Self::Info,
                types::Level::Warn => Self::Warn,
                types::Level::Error => Self::Error,
            }
        }
    }

    impl From<storage::Presence> for types::Presence {
        fn from(presence: storage::Presence) -> Self {
            match presence {
                storage::Presence::Online => Self::Online,
                storage::Presence::Offline => Self::Offline,
            }
        }
    }

    impl From<storage::User> for types::User {
        fn from(user: storage::User) -> Self {
            Self {
                uid: user.uid,
                name: user.name,
                presence: user.presence.into(),
                metadata: user.metadata,
            }
        }
    }
}
