//! Settings sealed at rest: a [`SettingsStore`] wrapper that encrypts each
//! tenant's settings document (auth token and API key secret included)
//! with ChaCha20-Poly1305 before the backend sees it, so a dump of the
//! database holds no secret. The tenant's name is the associated data: a
//! sealed document moved to another tenant's row does not open.
//!
//! Stored form: `sealed:v1:` + base64(nonce ‖ ciphertext). A document
//! stored before sealing (plain JSON) is still read, and sealed at its
//! next save. A document that does not open (another key) is an error
//! naming the tenant, never a guess: the call that needed it fails and
//! nothing stored changes.
//!
//! The key: 32 random bytes, base64, from `SMS_SETTINGS_KEY` or a file
//! (`--settings-key-file`); see [`Key`].

use super::{Result, SettingsStore, StoreError};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use std::path::Path;
use std::sync::Arc;

const PREFIX: &str = "sealed:v1:";
const NONCE: usize = 12;

/// A settings key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Key(ChaCha20Poly1305);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

impl Key {
    /// A key from its base64 text (32 bytes).
    pub fn from_base64(text: &str) -> std::result::Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "the settings key is not base64".to_owned())?;
        ChaCha20Poly1305::new_from_slice(&bytes)
            .map(Self)
            .map_err(|_| format!("the settings key is {} bytes; it must be 32", bytes.len()))
    }

    /// The key in `path`; with `create`, a new random one is written there
    /// first (owner-only permissions) when the file does not exist.
    pub fn from_file(path: &Path, create: bool) -> std::result::Result<Self, String> {
        if create && !path.exists() {
            let key = chacha20poly1305::Key::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let written = options.open(path).and_then(|mut file| {
                std::io::Write::write_all(&mut file, STANDARD.encode(key).as_bytes())
            });
            written
                .map_err(|e| format!("cannot create the settings key {}: {e}", path.display()))?;
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the settings key {}: {e}", path.display()))?;
        Self::from_base64(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn seal(&self, tenant: &str, json: &str) -> Result<String> {
        let nonce = Nonce::generate();
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: json.as_bytes(),
                    aad: tenant.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Corrupt(format!("cannot seal the settings of tenant {tenant:?}"))
            })?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    fn open(&self, tenant: &str, stored: String) -> Result<String> {
        let Some(sealed) = stored.strip_prefix(PREFIX) else {
            return Ok(stored);
        };
        let refused = || {
            StoreError::Corrupt(format!(
                "the settings of tenant {tenant:?} do not open with this settings key \
                 (another key, or a damaged row)"
            ))
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| refused())?;
        if bytes.len() < NONCE {
            return Err(refused());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE);
        let nonce = Nonce::try_from(nonce).map_err(|_| refused())?;
        let json = self
            .0
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: tenant.as_bytes(),
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(json).map_err(|_| refused())
    }
}

/// A store's settings and access records, sealed (see
/// [`super::WithSettings`] for the whole store).
pub struct Sealed {
    inner: Arc<dyn SettingsStore>,
    key: Key,
}

impl Sealed {
    pub fn new(inner: Arc<dyn SettingsStore>, key: Key) -> Self {
        Self { inner, key }
    }
}

#[async_trait]
impl SettingsStore for Sealed {
    async fn settings(&self, tenant: &str) -> Result<(Option<String>, u64)> {
        let (stored, revision) = self.inner.settings(tenant).await?;
        let json = stored.map(|s| self.key.open(tenant, s)).transpose()?;
        Ok((json, revision))
    }

    async fn revision(&self, tenant: &str) -> Result<u64> {
        self.inner.revision(tenant).await
    }

    async fn save_settings(&self, tenant: &str, json: &str) -> Result<u64> {
        let sealed = self.key.seal(tenant, json)?;
        self.inner.save_settings(tenant, &sealed).await
    }

    /// Sealed like settings, bound to `access:` and the tenant's name (so a
    /// settings row cannot be passed off as an access record).
    async fn access(&self, tenant: &str) -> Result<Option<String>> {
        let stored = self.inner.access(tenant).await?;
        stored
            .map(|s| self.key.open(&format!("access:{tenant}"), s))
            .transpose()
    }

    async fn save_access(&self, tenant: &str, json: &str) -> Result<()> {
        let sealed = self.key.seal(&format!("access:{tenant}"), json)?;
        self.inner.save_access(tenant, &sealed).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn sealed_settings_hold_no_secret_and_open_only_for_their_tenant() {
        let json = r#"{"twilioAuthToken":"s3cr3t-token"}"#;
        let sealed = key().seal("acme", json).unwrap();
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(key().open("acme", sealed.clone()).unwrap(), json);
        let moved = key().open("other", sealed.clone()).unwrap_err();
        assert!(moved.message().contains("do not open"), "{moved}");
        let other = Key::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open("acme", sealed).is_err());
        // Two saves of the same document differ (fresh nonce each time).
        assert_ne!(
            key().seal("acme", json).unwrap(),
            key().seal("acme", json).unwrap()
        );
        // A document from before sealing is read as it is.
        assert_eq!(key().open("acme", json.to_owned()).unwrap(), json);
    }

    #[test]
    fn bad_keys_are_named_without_their_value() {
        assert!(
            Key::from_base64("not base64!")
                .unwrap_err()
                .contains("not base64")
        );
        let short = Key::from_base64(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert!(short.contains("16 bytes; it must be 32"), "{short}");
        assert_eq!(format!("{:?}", key()), "Key(…)");
    }

    #[test]
    fn a_key_file_is_created_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.db.key");
        let first = Key::from_file(&path, true).unwrap();
        let sealed = first.seal("t", "{}").unwrap();
        let again = Key::from_file(&path, false).unwrap();
        assert_eq!(again.open("t", sealed).unwrap(), "{}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let missing = Key::from_file(&dir.path().join("none"), false).unwrap_err();
        assert!(
            missing.contains("cannot read the settings key"),
            "{missing}"
        );
    }
}
