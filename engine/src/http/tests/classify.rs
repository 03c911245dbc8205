//! Engine.IO request classification: every row of the reference's `verify()` order (protocol notes §1.2)
//! and conformance checklist items 3–6.

use super::{get, head};
use crate::http::{Endpoint, EngineErrorCode, EngineQuery, RequestHead, Route, Transport, UpgradeRejection};
use crate::ids::{EngineSid, ShardId};
use std::cell::Cell;

use EngineErrorCode::*;

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

fn polling_sid() -> EngineSid {
    EngineSid::new(ShardId(1), [1; 16])
}

fn websocket_sid() -> EngineSid {
    EngineSid::new(ShardId(2), [2; 16])
}

/// The session table of these tests: one session on polling, one upgraded to WebSocket.
fn sessions(sid: EngineSid) -> Option<Transport> {
    if sid == polling_sid() {
        Some(Transport::Polling)
    } else if sid == websocket_sid() {
        Some(Transport::WebSocket)
    } else {
        None
    }
}

fn classify_head(endpoint: &Endpoint, head: &RequestHead) -> Route {
    let query = EngineQuery::parse(head.raw_query());
    endpoint.classify(head, &query, sessions, |_| true)
}

/// Classifies `METHOD target` with `extra` header lines on the default `/socket.io/` endpoint.
fn route(method: &str, target: &str, extra: &str) -> Route {
    route_on(&Endpoint::new("/socket.io"), method, target, extra)
}

fn route_on(endpoint: &Endpoint, method: &str, target: &str, extra: &str) -> Route {
    let input = format!("{method} {target} HTTP/1.1\r\nHost: h\r\n{extra}\r\n");
    classify_head(endpoint, &head(&input))
}

fn with_sid(query: &str, sid: EngineSid) -> String {
    format!("/socket.io/?{query}&sid={}", sid.as_str())
}

#[test]
fn valid_requests_reach_their_operation() {
    let poll = with_sid("EIO=4&transport=polling&t=x", polling_sid());
    assert_eq!(
        route("GET", "/socket.io/?EIO=4&transport=polling&t=x", ""),
        Route::Handshake(Transport::Polling)
    );
    assert_eq!(
        route("GET", "/socket.io/?EIO=4&transport=websocket", UPGRADE),
        Route::Handshake(Transport::WebSocket)
    );
    assert_eq!(route("GET", &poll, ""), Route::Poll(polling_sid()));
    assert_eq!(route("POST", &poll, "Content-Length: 1\r\n"), Route::Send(polling_sid()));
    let upgrade = with_sid("EIO=4&transport=websocket", polling_sid());
    assert_eq!(route("GET", &upgrade, UPGRADE), Route::Upgrade(polling_sid()));
}

#[test]
fn the_path_is_a_prefix_with_a_normalized_trailing_slash() {
    for path in ["/socket.io", "/socket.io/", "socket.io"] {
        assert_eq!(Endpoint::new(path).path(), "/socket.io/");
    }
    let handshake = Route::Handshake(Transport::Polling);
    assert_eq!(route("GET", "/socket.io/default/?EIO=4&transport=polling", ""), handshake);
    assert_eq!(route("GET", "/socket.io?EIO=4&transport=polling", ""), Route::NotFound);
    assert_eq!(route("GET", "/engine.io/?EIO=4&transport=polling", ""), Route::NotFound);
    assert_eq!(route("GET", "/", UPGRADE), Route::NotFound);
    let custom = Endpoint::new("/rt/");
    assert_eq!(route_on(&custom, "GET", "/rt/?EIO=4&transport=polling", ""), handshake);
}

/// §1.2 row 1, checklist 4.
#[test]
fn missing_unknown_or_disabled_transport_is_code_0() {
    for query in [
        "EIO=4",
        "EIO=4&transport=",
        "EIO=4&transport=flashsocket",
        "EIO=4&transport=webtransport",
        "EIO=4&transport=constructor",
        "EIO=4&transport=__proto__",
        "EIO=4&transport=Polling",
    ] {
        assert_eq!(
            route("GET", &format!("/socket.io/?{query}"), ""),
            Route::Reject(UnknownTransport),
            "{query}"
        );
    }
    let no_websocket = Endpoint::new("/socket.io").with_transports(true, false);
    let target = "/socket.io/?EIO=4&transport=websocket";
    assert_eq!(
        route_on(&no_websocket, "GET", target, UPGRADE),
        Route::RejectUpgrade(UpgradeRejection::Engine(UnknownTransport))
    );
    assert_eq!(
        route("GET", "/socket.io/?EIO=4", UPGRADE),
        Route::RejectUpgrade(UpgradeRejection::Engine(UnknownTransport))
    );
}

/// §1.2 row 3, checklist 6: on GET, POST and WebSocket upgrade alike.
#[test]
fn unknown_sid_is_code_1_on_get_post_and_upgrade() {
    let unknown = EngineSid::new(ShardId(1), [9; 16]);
    let polling = with_sid("EIO=4&transport=polling", unknown);
    assert_eq!(route("GET", &polling, ""), Route::Reject(UnknownSid));
    assert_eq!(route("POST", &polling, "Content-Length: 1\r\n"), Route::Reject(UnknownSid));
    let websocket = with_sid("EIO=4&transport=websocket", unknown);
    assert_eq!(route("GET", &websocket, UPGRADE), Route::RejectUpgrade(UpgradeRejection::Engine(UnknownSid)));
    assert_eq!(route("GET", "/socket.io/?EIO=4&transport=polling&sid=nope", ""), Route::Reject(UnknownSid));
}

#[test]
fn a_malformed_sid_never_reaches_the_session_table() {
    let head = head(&get("/socket.io/?EIO=4&transport=polling&sid=not-a-session-id", ""));
    let query = EngineQuery::parse(head.raw_query());
    let looked_up = Cell::new(false);
    let route = Endpoint::new("/socket.io").classify(
        &head,
        &query,
        |_| {
            looked_up.set(true);
            Some(Transport::Polling)
        },
        |_| panic!("allowRequest is for handshakes only"),
    );
    assert_eq!(route, Route::Reject(UnknownSid));
    assert!(!looked_up.get());
}

/// §1.2 row 3: what every polling request gets after the session upgraded.
#[test]
fn transport_mismatch_without_upgrade_is_code_3() {
    let after_upgrade = with_sid("EIO=4&transport=polling", websocket_sid());
    assert_eq!(route("GET", &after_upgrade, ""), Route::Reject(BadRequest));
    assert_eq!(route("POST", &after_upgrade, "Content-Length: 1\r\n"), Route::Reject(BadRequest));
    let websocket_without_upgrade = with_sid("EIO=4&transport=websocket", polling_sid());
    assert_eq!(route("GET", &websocket_without_upgrade, ""), Route::Reject(BadRequest));
    let plain_get_on_websocket_session = with_sid("EIO=4&transport=websocket", websocket_sid());
    assert_eq!(route("GET", &plain_get_on_websocket_session, ""), Route::Reject(BadRequest));
}

/// §1.2 row 4, checklist 5.
#[test]
fn handshake_with_another_method_is_code_2() {
    for method in ["POST", "PUT", "OPTIONS", "DELETE", "HEAD"] {
        assert_eq!(
            route(method, "/socket.io/?EIO=4&transport=polling", ""),
            Route::Reject(BadHandshakeMethod),
            "{method}"
        );
    }
    assert_eq!(route("POST", "/socket.io/?EIO=4&transport=websocket", ""), Route::Reject(BadHandshakeMethod));
    let upgrade = route("POST", "/socket.io/?EIO=4&transport=websocket", UPGRADE);
    assert_eq!(upgrade, Route::RejectUpgrade(UpgradeRejection::Engine(BadHandshakeMethod)));
}

/// §1.2 row 4: `transport=websocket` on a plain GET.
#[test]
fn websocket_handshake_without_upgrade_headers_is_code_3() {
    assert_eq!(route("GET", "/socket.io/?EIO=4&transport=websocket", ""), Route::Reject(BadRequest));
}

/// §1.2 row 4: `allowRequest`, which runs before the EIO check and only for new sessions.
#[test]
fn refused_handshake_is_code_4_even_with_a_bad_eio() {
    let endpoint = Endpoint::new("/socket.io");
    for (target, extra) in
        [("/socket.io/?EIO=4&transport=polling", ""), ("/socket.io/?EIO=3&transport=polling", "")]
    {
        let head = head(&get(target, extra));
        let route = endpoint.classify(&head, &EngineQuery::parse(head.raw_query()), sessions, |_| false);
        assert_eq!(route, Route::Reject(Forbidden), "{target}");
    }
    let head = head(&get("/socket.io/?EIO=4&transport=websocket", UPGRADE));
    let route = endpoint.classify(&head, &EngineQuery::parse(head.raw_query()), sessions, |_| false);
    assert_eq!(route, Route::RejectUpgrade(UpgradeRejection::Engine(Forbidden)));
}

/// §1.2 row 5, checklist 3.
#[test]
fn missing_or_wrong_eio_is_code_5() {
    for query in [
        "transport=polling",
        "EIO=3&transport=polling",
        "EIO=abc&transport=polling",
        "EIO=&transport=polling",
    ] {
        assert_eq!(
            route("GET", &format!("/socket.io/?{query}"), ""),
            Route::Reject(UnsupportedProtocolVersion),
            "{query}"
        );
    }
    let websocket = route("GET", "/socket.io/?EIO=3&transport=websocket", UPGRADE);
    assert_eq!(websocket, Route::RejectUpgrade(UpgradeRejection::Engine(UnsupportedProtocolVersion)));
}

#[test]
fn checks_run_in_the_reference_order() {
    let unknown_sid = format!("sid={}", EngineSid::new(ShardId(0), [7; 16]).as_str());
    let cases = [
        (format!("/socket.io/?EIO=3&transport=nope&{unknown_sid}"), "POST", UnknownTransport),
        (format!("/socket.io/?EIO=3&transport=polling&{unknown_sid}"), "POST", UnknownSid),
        ("/socket.io/?EIO=3&transport=websocket".to_owned(), "POST", BadHandshakeMethod),
        ("/socket.io/?EIO=3&transport=websocket".to_owned(), "GET", BadRequest),
    ];
    for (target, method, code) in cases {
        assert_eq!(route(method, &target, ""), Route::Reject(code), "{method} {target}");
    }
    let session_requests_skip_the_eio_check = with_sid("EIO=3&transport=polling", polling_sid());
    assert_eq!(route("GET", &session_requests_skip_the_eio_check, ""), Route::Poll(polling_sid()));
}

#[test]
fn other_methods_on_a_polling_session_get_500() {
    let target = with_sid("EIO=4&transport=polling", polling_sid());
    assert_eq!(route("PUT", &target, ""), Route::UnsupportedMethod);
    assert_eq!(
        route("OPTIONS", &target, ""),
        Route::UnsupportedMethod,
        "no CORS: OPTIONS is not a preflight"
    );
}

#[test]
fn with_cors_every_options_request_is_a_preflight() {
    let cors = Endpoint::new("/socket.io").with_cors(true);
    assert_eq!(route_on(&cors, "OPTIONS", "/socket.io/?EIO=4&transport=polling", ""), Route::Preflight);
    assert_eq!(route_on(&cors, "OPTIONS", "/socket.io/", ""), Route::Preflight);
    assert_eq!(route_on(&cors, "OPTIONS", "/elsewhere", ""), Route::NotFound);
    assert_eq!(route_on(&cors, "GET", "/socket.io/?EIO=4", ""), Route::Reject(UnknownTransport));
}

#[test]
fn upgrades_the_reference_accepts_then_closes() {
    let polling_transport = route("GET", "/socket.io/?EIO=4&transport=polling", UPGRADE);
    assert_eq!(polling_transport, Route::UpgradeThenClose);
    let already_upgraded = with_sid("EIO=4&transport=websocket", websocket_sid());
    assert_eq!(route("GET", &already_upgraded, UPGRADE), Route::UpgradeThenClose);
    let polling_upgrade_of_session = with_sid("EIO=4&transport=polling", polling_sid());
    assert_eq!(route("GET", &polling_upgrade_of_session, UPGRADE), Route::UpgradeThenClose);
}

#[test]
fn websocket_handshake_headers_are_checked_after_the_engine_checks() {
    let handshake = "/socket.io/?EIO=4&transport=websocket";
    let base = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        (format!("{base}Sec-WebSocket-Version: 13\r\n"), UpgradeRejection::InvalidKey),
        (
            format!("{base}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\nSec-WebSocket-Version: 13\r\n"),
            UpgradeRejection::InvalidKey,
        ),
        (
            format!("{base}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\nSec-WebSocket-Version: 13\r\n"),
            UpgradeRejection::InvalidKey,
        ),
        (format!("{base}{key}"), UpgradeRejection::InvalidVersion),
        (format!("{base}{key}Sec-WebSocket-Version: 12\r\n"), UpgradeRejection::InvalidVersion),
        (format!("{UPGRADE}Sec-WebSocket-Protocol: chat,,x\r\n"), UpgradeRejection::InvalidProtocol),
        (format!("{UPGRADE}Sec-WebSocket-Protocol: a b\r\n"), UpgradeRejection::InvalidProtocol),
    ];
    for (extra, rejection) in cases {
        assert_eq!(route("GET", handshake, &extra), Route::RejectUpgrade(rejection), "{extra:?}");
    }
    assert_eq!(
        route("GET", handshake, &format!("{base}{key}Sec-WebSocket-Version: 8\r\n")),
        Route::Handshake(Transport::WebSocket)
    );
    let upgrade_by_post = with_sid("EIO=4&transport=websocket", polling_sid());
    assert_eq!(
        route("POST", &upgrade_by_post, UPGRADE),
        Route::RejectUpgrade(UpgradeRejection::InvalidMethod)
    );
    let unknown_sid_first = "/socket.io/?EIO=4&transport=websocket&sid=nope";
    assert_eq!(
        route("GET", unknown_sid_first, base),
        Route::RejectUpgrade(UpgradeRejection::Engine(UnknownSid))
    );
}
