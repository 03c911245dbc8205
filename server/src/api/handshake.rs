//! What a socket's handshake carried, as Socket.IO exposes it (`socket.handshake`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

/// The Engine.IO handshake request of a connection: shared by every namespace socket of that connection.
/// Cold data: kept out of the per-socket hot state, behind one `Arc`.
///
/// Memory: every header, query parameter and the URL live back to back in one string, indexed by one
/// small table: three allocations per connection instead of two per header and per parameter (about
/// 300 bytes for a browser-less client instead of 900).
#[derive(Debug)]
pub struct Handshake {
    /// Header names (lower-cased) and values, query keys and values (decoded), then the URL.
    text: Box<str>,
    /// `[start, middle, end)` per header, then per query parameter: name `start..middle`, value
    /// `middle..end` in `text`.
    pairs: Box<[[u32; 3]]>,
    /// How many of `pairs` are headers.
    header_count: usize,
    /// Where the URL starts in `text` (it runs to the end).
    url_start: u32,
    /// The peer's address.
    pub address: SocketAddr,
    /// When the handshake happened.
    pub time: SystemTime,
    /// Whether the request carried an `Origin` header (a cross-site request).
    pub xdomain: bool,
}

impl Handshake {
    /// Builds one from the request's headers (names are lower-cased here) and decoded query pairs.
    /// Text past 4 GiB in all is cut off (no request head comes near: the HTTP parser limits heads).
    pub fn new<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        query: impl IntoIterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
        url: &str,
        address: SocketAddr,
        time: SystemTime,
        xdomain: bool,
    ) -> Handshake {
        fn add(text: &mut String, pairs: &mut Vec<[u32; 3]>, name: &str, value: &str, lower: bool) {
            let start = text.len() as u32;
            if lower {
                text.extend(name.chars().map(|c| c.to_ascii_lowercase()));
            } else {
                text.push_str(name);
            }
            let middle = text.len() as u32;
            text.push_str(value);
            pairs.push([start, middle, text.len() as u32]);
        }
        let (mut text, mut pairs) = (String::new(), Vec::new());
        for (name, value) in headers {
            add(&mut text, &mut pairs, name, value, true);
        }
        let header_count = pairs.len();
        for (key, value) in query {
            add(&mut text, &mut pairs, &key, &value, false);
        }
        let url_start = text.len() as u32;
        text.push_str(url);
        Handshake {
            text: text.into_boxed_str(),
            pairs: pairs.into_boxed_slice(),
            header_count,
            url_start,
            address,
            time,
            xdomain,
        }
    }

    fn pair(&self, &[start, middle, end]: &[u32; 3]) -> (&str, &str) {
        let part = |from: u32, to: u32| self.text.get(from as usize..to as usize).unwrap_or_default();
        (part(start, middle), part(middle, end))
    }

    /// Request headers in arrival order, names lower-cased.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().take(self.header_count).map(|p| self.pair(p))
    }

    /// Query parameters of the handshake request, decoded, in order.
    pub fn query(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().skip(self.header_count).map(|p| self.pair(p))
    }

    /// The request target (path and query), as sent.
    pub fn url(&self) -> &str {
        self.text.get(self.url_start as usize..).unwrap_or_default()
    }

    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The last query parameter with this name.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query().filter(|(n, _)| *n == name).last().map(|(_, v)| v)
    }
}

/// What a namespace's middleware sees: the connection's handshake plus this namespace's CONNECT payload.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub handshake: Arc<Handshake>,
    /// The CONNECT packet's JSON payload (`socket.handshake.auth`), `{}` when the client sent none.
    pub auth: Bytes,
    /// The namespace being joined.
    pub namespace: Arc<str>,
}

/// A middleware's refusal: sent to the client as CONNECT_ERROR `{"message":…,"data":…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    pub message: String,
    /// Raw JSON for `data`; omitted from the packet when `None`.
    pub data: Option<Bytes>,
}

impl ConnectError {
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError { message: message.into(), data: None }
    }

    /// Adds the `data` member (raw JSON text, trusted to be valid).
    pub fn with_data(mut self, json: impl Into<Bytes>) -> Self {
        self.data = Some(json.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_query_and_url_read_back_from_one_string() {
        let query = [("EIO", "4"), ("t", "a b"), ("t", "last")].map(|(k, v)| (k.into(), v.into()));
        let handshake = Handshake::new(
            [("Host", "example.org"), ("X-Token", "Secret")],
            query,
            "/socket.io/?EIO=4&t=a%20b&t=last",
            SocketAddr::from(([127, 0, 0, 1], 5000)),
            SystemTime::UNIX_EPOCH,
            false,
        );
        let headers: Vec<_> = handshake.headers().collect();
        assert_eq!(
            headers,
            [("host", "example.org"), ("x-token", "Secret")],
            "names lower-cased, values kept"
        );
        assert_eq!(handshake.header("X-TOKEN"), Some("Secret"));
        assert_eq!(handshake.query().count(), 3);
        assert_eq!(handshake.query_param("t"), Some("last"), "the last one wins");
        assert_eq!(handshake.query_param("missing"), None);
        assert_eq!(handshake.url(), "/socket.io/?EIO=4&t=a%20b&t=last");
    }
}
