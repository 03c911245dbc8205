//! Query strings, decoded the way the reference server reads them.
//!
//! engine.io builds `req._query` with `Object.fromEntries(new URL(url).searchParams)`, so this module
//! follows the WHATWG `application/x-www-form-urlencoded` parser: pairs split on `&` (empty pairs
//! skipped), name and value split at the first `=`, `+` means space, `%XX` is a byte and any other `%`
//! stays literal, bytes that are not UTF-8 become U+FFFD; when a name repeats, the last value wins.

use std::borrow::Cow;
use std::fmt;

/// Iterates the decoded `(name, value)` pairs of a raw query string (without the `?`), in order,
/// repeats included. Socket.IO's `handshake.query` is these pairs with the last value of each name.
///
/// Cost: borrowed slices of `raw` unless a name or value holds `%` or `+`, which allocates that one string.
pub fn query_pairs(raw: &str) -> QueryPairs<'_> {
    QueryPairs { rest: raw }
}

/// Iterator returned by [`query_pairs`].
#[derive(Debug, Clone)]
pub struct QueryPairs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for QueryPairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (pair, rest) = self.rest.split_once('&').unwrap_or((self.rest, ""));
            self.rest = rest;
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            return Some((form_decode(name), form_decode(value)));
        }
    }
}

/// Decodes one form-urlencoded component: `+` → space, `%XX` → byte, lossy UTF-8.
pub fn form_decode(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.as_bytes();
    while let Some((&byte, rest)) = bytes.split_first() {
        bytes = rest;
        match byte {
            b'+' => out.push(b' '),
            b'%' => match rest {
                [hi, lo, tail @ ..] if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                    out.push(hex_value(*hi) << 4 | hex_value(*lo));
                    bytes = tail;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(invalid) => Cow::Owned(String::from_utf8_lossy(invalid.as_bytes()).into_owned()),
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// The query parameters Engine.IO reads; every other parameter (the `t` cache-buster included) is
/// ignored here and available through [`query_pairs`].
///
/// Values are exactly what the reference server sees, so the checks built on them behave the same:
/// `EIO` must equal `"4"`, `transport` must name an enabled transport, and an empty `sid` counts as absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EngineQuery<'a> {
    /// `EIO`, the protocol revision; only `"4"` is served.
    pub eio: Option<Cow<'a, str>>,
    /// `transport`: `polling` or `websocket` for a valid request.
    pub transport: Option<Cow<'a, str>>,
    /// `sid`, the session id, if non-empty. A secret: `Debug` does not print it.
    pub sid: Option<Cow<'a, str>>,
    /// `b64` with a non-empty value (even `b64=0`, as in the reference): the client cannot take binary
    /// WebSocket frames, so binary packets go as `b<base64>` text.
    pub b64: bool,
}

impl<'a> EngineQuery<'a> {
    /// Extracts the Engine.IO parameters from a raw query string (see [`RequestHead::raw_query`]).
    ///
    /// [`RequestHead::raw_query`]: super::RequestHead::raw_query
    pub fn parse(raw: &'a str) -> EngineQuery<'a> {
        let mut query = EngineQuery::default();
        for (name, value) in query_pairs(raw) {
            match &*name {
                "EIO" => query.eio = Some(value),
                "transport" => query.transport = Some(value),
                "sid" => query.sid = Some(value),
                "b64" => query.b64 = !value.is_empty(),
                _ => {}
            }
        }
        query.sid = query.sid.filter(|sid| !sid.is_empty());
        query
    }

    /// `EIO=4`: the only revision Roomcast serves (the reference treats anything else as revision 3).
    pub fn is_eio4(&self) -> bool {
        self.eio.as_deref() == Some("4")
    }
}

impl fmt::Debug for EngineQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineQuery")
            .field("eio", &self.eio)
            .field("transport", &self.transport)
            .field("sid", &self.sid.as_ref().map(|_| "<redacted>"))
            .field("b64", &self.b64)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        query_pairs(raw).map(|(n, v)| (n.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn client_polling_query_yields_the_engine_fields_and_ignores_the_cache_buster() {
        let query = EngineQuery::parse("EIO=4&transport=polling&t=PbXyz1a&sid=abc");
        assert!(query.is_eio4());
        assert_eq!(query.transport.as_deref(), Some("polling"));
        assert_eq!(query.sid.as_deref(), Some("abc"));
        assert!(!query.b64);
    }

    #[test]
    fn pairs_split_like_url_search_params() {
        assert_eq!(
            pairs("a=1&&b&c=x=y&=v&"),
            [("a", "1"), ("b", ""), ("c", "x=y"), ("", "v")].map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert!(pairs("").is_empty());
    }

    #[test]
    fn percent_and_plus_decode_and_malformed_escapes_stay_literal() {
        assert_eq!(form_decode("a+b%20c%2Bd"), "a b c+d");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%C3%A9t%C3%A9"), "été");
        assert_eq!(form_decode("%FF"), "\u{FFFD}");
        assert!(matches!(form_decode("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn encoded_names_match_and_the_last_repeat_wins() {
        let query = EngineQuery::parse("%45IO=3&EIO=4&transport=websocket&transport=polling");
        assert!(query.is_eio4());
        assert_eq!(query.transport.as_deref(), Some("polling"));
    }

    #[test]
    fn b64_is_set_by_any_non_empty_value_and_empty_sid_is_absent() {
        assert!(EngineQuery::parse("b64=1").b64);
        assert!(EngineQuery::parse("b64=0").b64);
        assert!(!EngineQuery::parse("b64=").b64);
        assert!(!EngineQuery::parse("b64").b64);
        assert_eq!(EngineQuery::parse("sid=").sid, None);
    }

    #[test]
    fn eio_must_be_exactly_4() {
        for raw in ["", "EIO=3", "EIO=abc", "EIO=4.0", "EIO=+4", "eio=4"] {
            assert!(!EngineQuery::parse(raw).is_eio4(), "{raw}");
        }
    }

    #[test]
    fn debug_never_prints_the_session_id() {
        let query = EngineQuery::parse("sid=SECRETSECRET");
        assert!(!format!("{query:?}").contains("SECRET"));
    }
}
