//! The clock: virtual (tests and scenarios move it) or the wall clock (a
//! host serving real traffic). The component reads it through WASI's wall
//! and monotonic clocks, and timers fire against it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Milliseconds since the Unix epoch, shared by the host and every sandbox.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    virtual_ms: Arc<AtomicU64>,
    wall: bool,
}

impl Clock {
    /// A virtual clock at `ms`.
    pub fn starting_at(ms: u64) -> Self {
        Self {
            virtual_ms: Arc::new(AtomicU64::new(ms)),
            wall: false,
        }
    }

    /// The system's wall clock; [`Clock::set`] does nothing on it.
    pub fn wall() -> Self {
        Self {
            virtual_ms: Arc::default(),
            wall: true,
        }
    }

    pub fn now(&self) -> u64 {
        if self.wall {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        } else {
            self.virtual_ms.load(Ordering::SeqCst)
        }
    }

    /// Moves a virtual clock to `ms`; it never goes back.
    pub fn set(&self, ms: u64) {
        self.virtual_ms.fetch_max(ms, Ordering::SeqCst);
    }
}

impl wasmtime_wasi::HostWallClock for Clock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(Clock::now(self))
    }
}

impl wasmtime_wasi::HostMonotonicClock for Clock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        Clock::now(self).saturating_mul(1_000_000)
    }
}
