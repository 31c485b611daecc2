//! What `serve` is started with: its options, the Twilio it talks to, the
//! per-tenant quotas, and the checks that refuse a bad one at start-up.

use super::{directory, listen};

/// Default cap on a request body.
pub const MAX_BODY: usize = 1 << 20;
/// Calls of one tenant that may wait at (or run on) its runtime at once: a
/// flood from one tenant cannot queue more than this ahead of another
/// tenant's call. Past it, calls wait their turn for up to
/// [`TENANT_WAIT`], then get 429.
pub const TENANT_CONCURRENCY: usize = 32;
pub const TENANT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Options {
    /// The operator's bearer token for `/v1`; `None` only with
    /// `--insecure-no-auth` on loopback (checked by the CLI).
    pub token: Option<String>,
    /// Where CometChat's REST API is, for tenants that saved their
    /// CometChat app (`--cometchat-url`, or the in-process stand-in of
    /// `--fake-cometchat`).
    pub cometchat: directory::Endpoint,
    /// Serve an in-process stand-in for CometChat's REST API, answering
    /// with the users pushed through the API.
    pub fake_cometchat: bool,
    pub max_body: usize,
    /// The longest a request's body may take to arrive (408 past it).
    pub body_timeout: std::time::Duration,
    /// Connections, header deadline, shutdown deadline.
    pub limits: listen::Limits,
    /// Most sandboxes resident at once, one per tenant (the least recently
    /// called one no call holds is dropped first).
    pub max_sandboxes: usize,
    /// A sandbox not called for this long is dropped (checked every
    /// minute); its tenant's next call makes a new one.
    pub sandbox_idle: std::time::Duration,
    /// What one tenant may keep.
    pub quotas: Quotas,
    /// How many due timers' calls run at once.
    pub window: sms_host::scheduler::Window,
    /// Where SMS go.
    pub twilio: TwilioTarget,
    pub lease_ms: u64,
    /// The public base URL (`https://sms.example.com`) Twilio calls status
    /// callbacks on, for their signatures; by default the request's Host.
    pub public_url: Option<String>,
    /// The component to run: a `.wasm` of any contract version this host
    /// loads.
    pub wasm: String,
}

/// Where SMS go (`--twilio-url`, `--fake-twilio`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwilioTarget {
    /// `https://api.twilio.com`.
    Live,
    /// A stand-in at another address: requests keep their path and query.
    Forward(http::Uri),
    /// The in-process try-out stand-in ([`try_out::TryOut`]).
    TryOut,
}

impl TwilioTarget {
    /// `--twilio-url` (or `--fake-twilio`), or why it is not a target.
    pub fn parse(fake: bool, url: &str) -> Result<Self, String> {
        if fake {
            return Ok(Self::TryOut);
        }
        if url.trim_end_matches('/') == "https://api.twilio.com" {
            return Ok(Self::Live);
        }
        match url.parse::<http::Uri>() {
            Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => {
                Ok(Self::Forward(uri))
            }
            _ => Err(format!("--twilio-url {url:?} is not an http(s) URL")),
        }
    }
}

/// What one tenant may keep, so no tenant (nor anyone holding its
/// webhook credentials) can fill the database.
#[derive(Clone, Copy, Debug)]
pub struct Quotas {
    /// Users (`--max-users`).
    pub users: u64,
    /// Bytes of one user's name and metadata (`--max-user-bytes`).
    pub user_bytes: usize,
    /// Records in the component's state (`--max-state-keys`).
    pub state_keys: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            users: 100_000,
            user_bytes: 16 << 10,
            state_keys: 1_000_000,
        }
    }
}

/// The status callback URL every SMS asks for (`{tenant}` stands for the
/// tenant), from `--public-url`: `None` without one. A URL Twilio could
/// not call is refused at start-up rather than written into every SMS.
pub(crate) fn status_callback(public_url: Option<&str>) -> wasmtime::Result<Option<String>> {
    let Some(base) = public_url else {
        return Ok(None);
    };
    let base = base.trim_end_matches('/');
    let fine = (base.starts_with("https://") || base.starts_with("http://"))
        && base.len() > "https://".len()
        && base.bytes().all(|b| b.is_ascii_graphic())
        && !base.contains(['?', '#']);
    if !fine {
        wasmtime::bail!(
            "--public-url {base:?} is not a base URL Twilio can call: use http:// or https://, \
             a host and optionally a path, printable ASCII without spaces, no query"
        );
    }
    Ok(Some(format!("{base}/twilio/{{tenant}}/status")))
}
