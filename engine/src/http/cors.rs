//! CORS headers as the reference's `cors` middleware (cors 2.8, run by engine.io on every request under
//! its path, upgrades included) writes them.
//!
//! - Preflight (`OPTIONS`): 204 with `Access-Control-Allow-Origin`, `Access-Control-Allow-Credentials`
//!   (if enabled), `Access-Control-Allow-Methods`, `Access-Control-Allow-Headers` (configured, or the
//!   request's `Access-Control-Request-Headers` reflected, with `Vary: Access-Control-Request-Headers`),
//!   and `Content-Length: 0`.
//! - Every other response: `Access-Control-Allow-Origin` and `Access-Control-Allow-Credentials`.
//! - A reflected origin adds `Vary: Origin`; an origin that is not allowed gets no
//!   `Access-Control-Allow-Origin` at all (the browser then blocks the response), never an error.

use super::request::RequestHead;
use bytes::{BufMut, BytesMut};

/// Which origins may read responses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// No CORS headers at all, and `OPTIONS` is not a preflight (the reference's default, `cors: false`).
    #[default]
    Off,
    /// `Access-Control-Allow-Origin: *` (cors `origin: "*"`).
    AllowAny,
    /// The request's `Origin` is echoed whatever it is (cors `origin: true`), with `Vary: Origin`.
    Reflect,
    /// The request's `Origin` is echoed if it equals one of these exactly (cors `origin: [..]`), with
    /// `Vary: Origin`.
    List(Vec<String>),
}

/// CORS configuration of the Engine.IO endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// Which origins are allowed. Default [`AllowedOrigins::Off`].
    pub origins: AllowedOrigins,
    /// Send `Access-Control-Allow-Credentials: true` (needed for cookies, e.g. sticky sessions). Default off.
    pub credentials: bool,
    /// `Access-Control-Allow-Methods` of a preflight answer. Default [`CorsConfig::DEFAULT_METHODS`].
    pub methods: String,
    /// `Access-Control-Allow-Headers` of a preflight answer; `None` (the default) reflects the request's
    /// `Access-Control-Request-Headers`.
    pub allowed_headers: Option<String>,
}

impl CorsConfig {
    /// The `cors` package's default method list.
    pub const DEFAULT_METHODS: &'static str = "GET,HEAD,PUT,PATCH,POST,DELETE";

    /// CORS open to every origin, without credentials (socket.io `cors: { origin: "*" }`).
    pub fn allow_any() -> CorsConfig {
        CorsConfig { origins: AllowedOrigins::AllowAny, ..CorsConfig::default() }
    }

    /// Whether CORS is on (so responses carry CORS headers and `OPTIONS` is answered as a preflight).
    pub fn is_enabled(&self) -> bool {
        self.origins != AllowedOrigins::Off
    }

    /// The CORS headers for the response to `head`. Cost: no allocation; borrows the config and the
    /// request's `Origin` / `Access-Control-Request-Headers`.
    pub fn headers_for<'a>(&'a self, head: &'a RequestHead) -> CorsHeaders<'a> {
        CorsHeaders {
            config: self.is_enabled().then_some(self),
            origin: head.origin(),
            request_headers: head.access_control_request_headers(),
        }
    }
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            origins: AllowedOrigins::Off,
            credentials: false,
            methods: Self::DEFAULT_METHODS.to_owned(),
            allowed_headers: None,
        }
    }
}

/// The CORS headers of one response, ready to be written by the response builders.
#[derive(Debug, Clone, Copy)]
pub struct CorsHeaders<'a> {
    config: Option<&'a CorsConfig>,
    origin: Option<&'a [u8]>,
    request_headers: Option<&'a [u8]>,
}

impl CorsHeaders<'_> {
    /// No CORS headers (CORS off, or a response outside the Engine.IO endpoint).
    pub const NONE: CorsHeaders<'static> = CorsHeaders { config: None, origin: None, request_headers: None };

    /// The `Access-Control-Allow-Origin` value, if any, and whether `Vary: Origin` is due.
    fn allow_origin(&self, config: &CorsConfig) -> (Option<&[u8]>, bool) {
        match &config.origins {
            AllowedOrigins::Off => (None, false),
            AllowedOrigins::AllowAny => (Some(b"*"), false),
            AllowedOrigins::Reflect => (self.origin, true),
            AllowedOrigins::List(allowed) => {
                let origin = self.origin.filter(|o| allowed.iter().any(|a| a.as_bytes() == *o));
                (origin, true)
            }
        }
    }

    /// Writes the headers of a non-preflight response (each line ends in CRLF).
    pub(super) fn write_simple(&self, out: &mut BytesMut) {
        let Some(config) = self.config else { return };
        let (origin, vary_origin) = self.allow_origin(config);
        if let Some(origin) = origin {
            put_header(out, b"Access-Control-Allow-Origin", origin);
        }
        if vary_origin {
            put_header(out, b"Vary", b"Origin");
        }
        if config.credentials {
            put_header(out, b"Access-Control-Allow-Credentials", b"true");
        }
    }

    /// Writes the headers of a preflight answer (each line ends in CRLF), `Content-Length` excluded.
    pub(super) fn write_preflight(&self, out: &mut BytesMut) {
        let Some(config) = self.config else { return };
        let (origin, vary_origin) = self.allow_origin(config);
        let reflect_headers = config.allowed_headers.is_none();
        if let Some(origin) = origin {
            put_header(out, b"Access-Control-Allow-Origin", origin);
        }
        if config.credentials {
            put_header(out, b"Access-Control-Allow-Credentials", b"true");
        }
        put_header(out, b"Access-Control-Allow-Methods", config.methods.as_bytes());
        let allowed = config.allowed_headers.as_deref().map(str::as_bytes).or(self.request_headers);
        if let Some(allowed) = allowed.filter(|a| !a.is_empty()) {
            put_header(out, b"Access-Control-Allow-Headers", allowed);
        }
        let vary: &[u8] = match (vary_origin, reflect_headers) {
            (true, true) => b"Origin, Access-Control-Request-Headers",
            (true, false) => b"Origin",
            (false, true) => b"Access-Control-Request-Headers",
            (false, false) => b"",
        };
        if !vary.is_empty() {
            put_header(out, b"Vary", vary);
        }
    }
}

pub(super) fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}
