//! A [`Runtime`] with the harness around it: the fake Twilio as its
//! outbound sender (scripted answers, the SMS it took, crash injection
//! through the runtime's abort signal) and, on the in-memory store, the
//! tenants' data to look inside. It dereferences to the runtime, so a test
//! calls `rt.on_message(…)` and reads `rt.traffic` alike.

use crate::contract::Pre;
use crate::fake_twilio::FakeTwilio;
use crate::outbound::Policy;
use crate::runtime::Runtime;
use crate::storage::{Memory, Storage, memory::Shared};
use std::sync::Arc;

pub struct TestRuntime {
    pub rt: Runtime,
    /// The fake Twilio requests go to (unused when the policy sends them
    /// elsewhere).
    pub traffic: FakeTwilio,
    memory: Option<Arc<Memory>>,
}

/// A policy that sends every allowed request to `fake`.
pub fn fake_policy(fake: &FakeTwilio) -> Policy {
    Policy::new(Arc::new(fake.clone()))
}

impl TestRuntime {
    /// The component this build made, on the in-memory store, texting
    /// through the fake Twilio.
    pub fn new() -> wasmtime::Result<Self> {
        Ok(Self::with(crate::prepared()?))
    }

    /// `pre` (another engine's, an older contract's) on the in-memory
    /// store, texting through the fake Twilio.
    pub fn with(pre: Pre) -> Self {
        let memory = Arc::new(Memory::default());
        let mut rt = Self::on(pre, memory.clone());
        rt.memory = Some(memory);
        rt
    }

    /// `pre` on `storage`, texting through the fake Twilio.
    pub fn on(pre: Pre, storage: Arc<dyn Storage>) -> Self {
        let traffic = FakeTwilio::default();
        let mut rt = Runtime::on(fake_policy(&traffic), pre, storage);
        rt.abort = traffic.crash.clone();
        Self {
            rt,
            traffic,
            memory: None,
        }
    }

    /// The component this build made, on the in-memory store, sending
    /// through `policy` (a [`crate::outbound::Forward`], a policy test's).
    pub fn with_policy(policy: Policy) -> wasmtime::Result<Self> {
        let mut rt = Self::new()?;
        rt.rt.policy = policy;
        Ok(rt)
    }

    /// The in-memory data of `tenant`, created empty on first use. Panics
    /// on a runtime on another store.
    pub fn tenant(&self, tenant: &str) -> Shared {
        self.memory
            .as_ref()
            .expect("TestRuntime::tenant needs the in-memory store")
            .tenant(tenant)
    }
}

impl std::ops::Deref for TestRuntime {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.rt
    }
}

impl std::ops::DerefMut for TestRuntime {
    fn deref_mut(&mut self) -> &mut Runtime {
        &mut self.rt
    }
}
