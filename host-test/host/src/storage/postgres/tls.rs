//! Connecting to PostgreSQL over TLS, as libpq's `sslmode` describes it.
//!
//! The database URL takes libpq's parameters `sslmode` and `sslrootcert`
//! (as query parameters of a `postgres://` URL, or `key=value` words of a
//! connection string); tokio-postgres knows only `disable`, `prefer` and
//! `require`, and reads no certificate, so they are read here and the
//! rest of the URL is left to tokio-postgres. The modes:
//!
//! - `disable`: never TLS.
//! - `prefer` (the default, as in libpq): TLS when the server offers it,
//!   the certificate not checked.
//! - `require`: TLS or no connection; with `sslrootcert` the certificate
//!   must chain to it (libpq does the same), else it is not checked.
//! - `verify-ca`: TLS, the certificate chains to `sslrootcert`.
//! - `verify-full`: as `verify-ca`, and the certificate names the host.
//!
//! `sslrootcert` is a PEM file of trusted certificates, or `system` for
//! the Mozilla roots built into this binary (`webpki-roots`). The checks
//! are rustls's (WebPKI); TLS uses the `ring` provider already in the tree.

use super::super::{Result, StoreError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values this host accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> std::result::Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other} is not one this host knows: disable, prefer, require, \
                     verify-ca or verify-full"
                ));
            }
        })
    }
}

/// Where and how to connect: tokio-postgres's configuration and the TLS
/// connector its `sslmode` needs (none for `disable`).
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: Option<MakeRustlsConnect>,
    pub mode: Mode,
}

impl Target {
    /// Reads `url`; `shown` (the URL without its password) names it in
    /// errors. Nothing is connected yet: a bad mode or certificate file is
    /// refused here, before any connection is tried.
    pub fn parse(url: &str, shown: &str) -> Result<Self> {
        let bad = |why: String| StoreError::Setup(format!("database URL {shown}: {why}"));
        let (rest, ours) = take_tls_parameters(url);
        let mut mode = Mode::Prefer;
        let mut root = None;
        for (key, value) in ours {
            match key.as_str() {
                "sslmode" => mode = Mode::parse(&value).map_err(bad)?,
                "sslrootcert" => root = Some(value),
                other => {
                    return Err(bad(format!(
                        "{other} is not supported (client certificates are not): use a \
                         password, and sslmode with sslrootcert for the server's certificate"
                    )));
                }
            }
        }
        let mut config: tokio_postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
        config.ssl_mode(match mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        });
        let roots = match &root {
            Some(root) => Some(Arc::new(roots(root).map_err(bad)?)),
            None => None,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (Mode::Disable, _) => {
                return Ok(Self {
                    config,
                    tls: None,
                    mode,
                });
            }
            (Mode::VerifyCa | Mode::VerifyFull, None) => {
                return Err(bad(format!(
                    "sslmode={} needs sslrootcert: a PEM file of the certificates to trust \
                     (your provider's CA), or sslrootcert=system",
                    if mode == Mode::VerifyCa {
                        "verify-ca"
                    } else {
                        "verify-full"
                    }
                )));
            }
            (Mode::Prefer, _) | (Mode::Require, None) => Arc::new(Unchecked(provider.clone())),
            (Mode::VerifyFull, Some(roots)) => webpki(roots, &provider).map_err(bad)?,
            (Mode::Require | Mode::VerifyCa, Some(roots)) => {
                Arc::new(AnyName(webpki(roots, &provider).map_err(bad)?))
            }
        };
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config,
            tls: Some(MakeRustlsConnect::new(tls)),
            mode,
        })
    }

    /// Connects once.
    pub async fn connect(
        &self,
    ) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
        let report = |e| tracing::warn!("PostgreSQL connection closed: {e}");
        match &self.tls {
            None => {
                let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move { connection.await.map_err(report) });
                Ok(client)
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                tokio::spawn(async move { connection.await.map_err(report) });
                Ok(client)
            }
        }
    }
}

/// Splits libpq's TLS parameters (`ssl…`) out of a URL or a connection
/// string, leaving the rest as it was written.
fn take_tls_parameters(url: &str) -> (String, Vec<(String, String)>) {
    let ours = |key: &str| key.starts_with("ssl") && key != "sslnegotiation";
    let mut taken = Vec::new();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), taken);
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if ours(key) {
                let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                taken.push((key.to_owned(), value.into_owned()));
            } else {
                kept.push(pair);
            }
        }
        let rest = match kept.is_empty() {
            true => base.to_owned(),
            false => format!("{base}?{}", kept.join("&")),
        };
        (rest, taken)
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some((key, value)) if ours(key.trim()) => {
                    let value = value.trim_matches('\'');
                    taken.push((key.trim().to_owned(), value.to_owned()));
                }
                _ => kept.push(word),
            }
        }
        (kept.join(" "), taken)
    }
}

/// The certificates `sslrootcert` names.
fn roots(root: &str) -> std::result::Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if root == "system" {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    let certs = CertificateDer::pem_file_iter(root)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| format!("sslrootcert={root}: cannot read its certificates: {e}"))?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "sslrootcert={root}: no certificate in it (a PEM file of CA certificates is expected)"
        ));
    }
    Ok(store)
}

fn webpki(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> std::result::Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("sslrootcert: {e}"))
}

/// `prefer`, and `require` without a root certificate: encrypted, the
/// server's certificate not checked (libpq's behaviour). The handshake's
/// signatures are still verified, so the session key is the server's.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the name in it is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_urls_and_connection_strings() {
        let (rest, ours) = take_tls_parameters(
            "postgres://u:p@db:5432/sms?sslmode=verify-full&connect_timeout=5&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u:p@db:5432/sms?connect_timeout=5");
        assert_eq!(
            ours,
            [
                ("sslmode".to_owned(), "verify-full".to_owned()),
                ("sslrootcert".to_owned(), "/etc/ca.pem".to_owned())
            ]
        );
        let (rest, ours) = take_tls_parameters("host=db user=sms sslmode=require dbname=sms");
        assert_eq!(rest, "host=db user=sms dbname=sms");
        assert_eq!(ours, [("sslmode".to_owned(), "require".to_owned())]);
        let (rest, ours) = take_tls_parameters("postgres://db/sms");
        assert_eq!((rest.as_str(), ours.len()), ("postgres://db/sms", 0));
    }

    #[test]
    fn bad_modes_and_missing_roots_are_refused_before_connecting() {
        let shown = "postgres://u:***@db/sms";
        let error = |url: &str| Target::parse(url, shown).err().unwrap().to_string();
        let e = error("postgres://u:secret@db/sms?sslmode=verify-everything");
        assert!(e.contains("sslmode=verify-everything is not one"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let e = error("postgres://u:secret@db/sms?sslmode=verify-full");
        assert!(e.contains("needs sslrootcert"), "{e}");
        let e = error("postgres://u:secret@db/sms?sslmode=require&sslrootcert=/nonexistent.pem");
        assert!(
            e.contains("sslrootcert=/nonexistent.pem: cannot read"),
            "{e}"
        );
        let e = error("postgres://u:secret@db/sms?sslcert=/c.pem");
        assert!(e.contains("sslcert is not supported"), "{e}");
        let defaults = Target::parse("postgres://db/sms", shown).unwrap();
        assert_eq!(defaults.mode, Mode::Prefer);
        assert!(defaults.tls.is_some());
        let plain = Target::parse("postgres://db/sms?sslmode=disable", shown).unwrap();
        assert!(plain.tls.is_none());
        let system = Target::parse(
            "postgres://db/sms?sslmode=verify-full&sslrootcert=system",
            shown,
        );
        assert_eq!(system.unwrap().mode, Mode::VerifyFull);
    }
}
