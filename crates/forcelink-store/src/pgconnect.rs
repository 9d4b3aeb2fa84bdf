//! How the PostgreSQL store reaches its server: the store URL's TLS settings, a rustls
//! connector for tokio-postgres, and the URL as it may be shown (without its password).
//!
//! - [`SslMode`]: libpq's `sslmode` values. [`DEFAULT_SSL_MODE`] is `prefer`, as in libpq.
//! - [`PgTarget`]: a `postgres://` URL parsed into tokio-postgres's config, the TLS mode and the
//!   CA file (`sslrootcert`); these two are taken out of the URL before tokio-postgres parses
//!   it, as it refuses `verify-ca`, `verify-full` and `sslrootcert`.
//! - `RustlsConnect`: tokio-postgres's `MakeTlsConnect` over tokio-rustls (ring, no OpenSSL),
//!   with the certificate check each mode asks for.
//! - `redact_url`: the URL with its userinfo password and `password=` parameter replaced.
//!
//! What each mode does (libpq's meaning, <https://www.postgresql.org/docs/current/libpq-ssl.html>):
//! - `disable`: never TLS.
//! - `prefer`: TLS when the server offers it, without checking its certificate; a plain
//!   connection when it does not. A failed handshake is an error (libpq would retry without
//!   TLS; tokio-postgres does not, and a server that offers TLS and fails it is worth hearing
//!   about).
//! - `require`: TLS or nothing; the certificate is not checked (as in libpq), unless
//!   `sslrootcert` is given, in which case it is checked as for `verify-ca` (also as in libpq).
//! - `verify-ca`: TLS, and the server's certificate must chain to a trusted root.
//! - `verify-full`: as `verify-ca`, and the certificate must name the host connected to.
//!
//! The trusted roots are the PEM certificates in `sslrootcert=PATH`; without it (or with
//! `sslrootcert=system`), the public web PKI roots of `webpki-roots`. (libpq reads
//! `~/.postgresql/root.crt` by default; a library reading the home directory is not wanted here.)
//!
//! No channel binding is offered (`tls-server-end-point` would need the certificate's signature
//! hash); SCRAM authentication works without it.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::OpenError;

/// The TLS mode when the URL names none: `prefer`, libpq's default.
pub const DEFAULT_SSL_MODE: SslMode = SslMode::Prefer;

/// The URL parameters this module handles itself (taken out before tokio-postgres parses it).
const SSLMODE: &str = "sslmode";
const SSLROOTCERT: &str = "sslrootcert";

/// libpq's `sslmode` (see the module docs for what each does here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, unchecked (libpq's default).
    Prefer,
    /// TLS or nothing; checked only with `sslrootcert`.
    Require,
    /// TLS; the certificate must chain to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// The mode named `text` (libpq's spelling).
    pub fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a server without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store URL, parsed. `Debug` shows the redacted URL only.
#[derive(Clone)]
pub struct PgTarget {
    /// tokio-postgres's settings (everything but the TLS parameters); holds the password.
    config: tokio_postgres::Config,
    /// The TLS mode (`sslmode`, [`DEFAULT_SSL_MODE`] when absent).
    pub ssl_mode: SslMode,
    /// `sslrootcert`, unless it is `system` (the built-in roots).
    pub root_cert: Option<PathBuf>,
    /// The URL for messages.
    shown: String,
    /// Password texts (as written and decoded) to scrub from the server's or driver's messages.
    secrets: Vec<String>,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.shown)
            .field("ssl_mode", &self.ssl_mode)
            .field("root_cert", &self.root_cert)
            .finish()
    }
}

impl PgTarget {
    /// Parses a `postgres://` (or `postgresql://`) URL. Errors never contain the URL's password.
    pub fn parse(url: &str) -> Result<PgTarget, OpenError> {
        let shown = redact_url(url);
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let mut ssl_mode = None;
        let mut root_cert = None;
        let mut kept = Vec::new();
        let mut secrets = password_texts(url);
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value_text = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
            match percent_encoding::percent_decode_str(key).decode_utf8_lossy().as_ref() {
                SSLMODE => {
                    ssl_mode = Some(SslMode::parse(&value_text).ok_or_else(|| {
                        OpenError::Postgres(format!(
                            "{shown}: sslmode={value_text} is not a TLS mode; use disable, prefer, require, \
                             verify-ca or verify-full"
                        ))
                    })?);
                }
                SSLROOTCERT => root_cert = Some(value_text),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        let config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
            OpenError::Postgres(scrub(
                &format!(
                    "{shown}: not a PostgreSQL URL tokio-postgres understands ({e}); write it as \
                     postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=MODE"
                ),
                &secrets,
            ))
        })?;
        if let Some(password) = config.get_password() {
            secrets.push(String::from_utf8_lossy(password).into_owned());
        }
        let ssl_mode = ssl_mode.unwrap_or(DEFAULT_SSL_MODE);
        let root_cert = root_cert.filter(|p| p != "system" && !p.is_empty()).map(PathBuf::from);
        Ok(PgTarget { config, ssl_mode, root_cert, shown, secrets })
    }

    /// The URL without its password, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Connects with the TLS this target asks for; the connection runs on its own task.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, OpenError> {
        let tls = RustlsConnect::new(self)?;
        let mut config = self.config.clone();
        config.ssl_mode(match self.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        let (client, connection) = config.connect(tls).await.map_err(|e| self.connect_error(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection closed");
            }
        });
        Ok(client)
    }

    /// `e` as an [`OpenError`] naming the (redacted) URL and what to do, without any password.
    fn connect_error(&self, e: &tokio_postgres::Error) -> OpenError {
        let mut causes = Vec::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            causes.push(s.to_string());
            source = s.source();
        }
        let no_tls = causes.iter().any(|c| c.contains("server does not support TLS"));
        let text = if no_tls {
            format!(
                "{}: the server does not offer TLS, and sslmode={} requires it; turn TLS on in the server \
                 (ssl = on in postgresql.conf), or on a loopback or private network set sslmode=prefer or \
                 sslmode=disable in the store URL",
                self.shown, self.ssl_mode
            )
        } else if causes.iter().any(|c| c.contains("invalid peer certificate") || c.contains("certificate")) {
            format!(
                "{}: {e}; the server's TLS certificate did not pass sslmode={}: point sslrootcert=PATH at the \
                 PEM file of the CA that signed it{}",
                self.shown,
                self.ssl_mode,
                if self.ssl_mode == SslMode::VerifyFull {
                    ", and connect by a host name the certificate names (or use sslmode=verify-ca)"
                } else {
                    ""
                }
            )
        } else {
            format!("{}: {e}", self.shown)
        };
        OpenError::Postgres(scrub(&text, &self.secrets))
    }
}

/// The password texts a URL may carry, as written and percent-decoded: the userinfo password and
/// any `password=` parameter.
fn password_texts(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((start, end)) = userinfo_password_span(url) {
        out.push(url[start..end].to_owned());
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && percent_encoding::percent_decode_str(key).decode_utf8_lossy() == "password"
            {
                out.push(value.to_owned());
            }
        }
    }
    let decoded: Vec<String> =
        out.iter().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned()).collect();
    out.extend(decoded);
    out.retain(|p| !p.is_empty());
    out
}

/// Replaces every password text in `text` (a message that may quote the server or the URL).
fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |t, s| t.replace(s.as_str(), "[redacted]"))
}

/// Byte range of the password in `scheme://user:PASSWORD@host…`: from the first `:` after
/// `://` to the last `@` before the query. The last `@`, so a password holding an unescaped `@`
/// or `/` is hidden whole (a database name holding an `@` is hidden too: better too much).
fn userinfo_password_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let end_of_authority = url[start..].find('?').map_or(url.len(), |i| start + i);
    let at = start + url[start..end_of_authority].rfind('@')?;
    let colon = start + url[start..at].find(':')?;
    Some((colon + 1, at))
}

/// `postgres://user:secret@host/db?password=secret` → `postgres://user:redacted@host/db?password=redacted`,
/// for messages and output. Works on the text, so a URL no parser accepts is redacted too.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = match userinfo_password_span(url) {
        Some((start, end)) => format!("{}redacted{}", &url[..start], &url[end..]),
        None => url.to_owned(),
    };
    if let Some((base, query)) = out.split_once('?') {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if percent_encoding::percent_decode_str(key).decode_utf8_lossy() == "password" => {
                    format!("{key}=redacted")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}?{}", pairs.join("&"));
    }
    out
}

/// tokio-postgres's TLS hook over tokio-rustls: one client configuration per store target.
#[derive(Clone)]
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for RustlsConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RustlsConnect")
    }
}

impl RustlsConnect {
    /// The configuration `target`'s mode asks for (see the module docs).
    pub fn new(target: &PgTarget) -> Result<Self, OpenError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = match (target.ssl_mode, &target.root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Check::None,
            (SslMode::Require | SslMode::VerifyCa, _) => Check::Chain,
            (SslMode::VerifyFull, _) => Check::ChainAndName,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match check {
            Check::None => Arc::new(NoCertificateCheck(provider.clone())),
            Check::Chain | Check::ChainAndName => {
                let roots = Arc::new(roots(target)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| OpenError::Postgres(format!("{}: TLS roots: {e}", target.shown)))?;
                if check == Check::Chain { Arc::new(ChainOnly(webpki)) } else { webpki }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| OpenError::Postgres(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self { config: Arc::new(config) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Chain,
    ChainAndName,
}

/// The trusted roots: `sslrootcert`'s PEM certificates, else the web PKI roots.
fn roots(target: &PgTarget) -> Result<rustls::RootCertStore, OpenError> {
    let mut store = rustls::RootCertStore::empty();
    let Some(path) = &target.root_cert else {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    };
    let fail = |what: String| {
        OpenError::Postgres(format!(
            "{}: sslrootcert {}: {what}; point sslrootcert at a PEM file holding the CA certificate that \
             signed the server's certificate",
            target.shown,
            path.display()
        ))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no certificate in the file".into()));
    }
    for cert in certs {
        store.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    Ok(store)
}

/// `prefer` and `require` without a CA: any certificate, as libpq. The handshake signature is
/// still checked, so the server holds the key of the certificate it sent; this guards against
/// passive eavesdropping only, which is what these modes promise.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name may be any.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        // The name check comes after the chain check in webpki, so a name error means the chain held.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(NotValidForName | NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnector;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnector, Self::Error> {
        Ok(RustlsConnector { config: self.config.clone(), name: ServerName::try_from(domain.to_owned())? })
    }
}

/// One handshake with one server.
#[derive(Debug)]
pub(crate) struct RustlsConnector {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config).connect(self.name, stream).await?;
            Ok(RustlsStream(tls))
        })
    }
}

/// A TLS connection to the server.
#[derive(Debug)]
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sslmode_parses_and_is_taken_out_of_the_url() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let t = PgTarget::parse(&format!("postgres://u:pw@db.example:6432/app?sslmode={text}")).unwrap();
            assert_eq!(t.ssl_mode, mode, "{text}");
            assert_eq!(mode.as_str(), text);
            assert_eq!(t.config.get_ports(), [6432]);
            assert_eq!(t.config.get_dbname(), Some("app"));
            assert_eq!(mode.requires_tls(), !matches!(mode, SslMode::Disable | SslMode::Prefer));
        }
        let t = PgTarget::parse("postgresql://db.example/app").unwrap();
        assert_eq!(t.ssl_mode, SslMode::Prefer, "the default is prefer");
        assert_eq!(t.root_cert, None);

        // sslrootcert is taken out too; other parameters go on to tokio-postgres as written.
        let t = PgTarget::parse(
            "postgres://u@h/db?application_name=forcelink&sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-full&options=-csearch_path%3Dx",
        )
        .unwrap();
        assert_eq!(t.ssl_mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(t.config.get_application_name(), Some("forcelink"));
        assert_eq!(t.config.get_options(), Some("-csearch_path=x"));
        assert_eq!(PgTarget::parse("postgres://h/db?sslrootcert=system").unwrap().root_cert, None);

        let err = PgTarget::parse("postgres://u:pw-0451@h/db?sslmode=allow").unwrap_err().to_string();
        assert!(err.contains("sslmode=allow") && err.contains("verify-full"), "names the choices: {err}");
        assert!(!err.contains("pw-0451"), "{err}");
        let err = PgTarget::parse("postgres://u:pw-0452@h/db?nonsense=1").unwrap_err().to_string();
        assert!(!err.contains("pw-0452") && err.contains("u:redacted@h"), "{err}");
    }

    #[test]
    fn passwords_are_redacted_wherever_they_are_written() {
        for (url, shown) in [
            ("postgres://u:hunter2@h:5432/db", "postgres://u:redacted@h:5432/db"),
            (
                "postgres://u@h/db?password=hunter2&sslmode=require",
                "postgres://u@h/db?password=redacted&sslmode=require",
            ),
            ("postgres://u:hunter2@h/db?password=hunter2", "postgres://u:redacted@h/db?password=redacted"),
            // Unescaped @ and / in the password: hidden whole.
            ("postgres://u:hun@ter/2@h/db", "postgres://u:redacted@h/db"),
            // Percent-encoded parameter name, and a URL no parser would take.
            ("postgres://h/db?pass%77ord=hunter2", "postgres://h/db?pass%77ord=redacted"),
            ("postgres://u:hunter2@[::1/db", "postgres://u:redacted@[::1/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let t = PgTarget::parse("postgres://u:hunter%32@h/db").unwrap();
        assert!(t.secrets.contains(&"hunter2".to_owned()) && t.secrets.contains(&"hunter%32".to_owned()));
        assert!(!format!("{t:?}").contains("hunter"), "{t:?}");
        assert_eq!(scrub("auth failed for hunter2", &t.secrets), "auth failed for [redacted]");
    }
}
