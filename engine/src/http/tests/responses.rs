//! Golden bytes of every response, checked against what the protocol notes quote from the reference.

use super::{get, head};
use crate::error::{Error, Limit, PeerMisbehaved};
use crate::http::{
    head_error_status, selected_websocket_protocol, websocket_accept, write_empty, write_engine_error,
    write_head_error, write_polling, write_polling_head, write_post_ok, write_preflight,
    write_switching_protocols, write_upgrade_rejection, AllowedOrigins, ConnectionMode, CorsConfig,
    CorsHeaders, EngineErrorCode, ResponseContext, Status, UpgradeRejection,
};
use bytes::BytesMut;

const KEEP_ALIVE: ResponseContext<'static> =
    ResponseContext { connection: ConnectionMode::KeepAlive, cors: CorsHeaders::NONE, legacy_ie: false };

fn written(write: impl FnOnce(&mut BytesMut)) -> String {
    let mut out = BytesMut::new();
    write(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

/// The body after the blank line, checked against the head's `Content-Length`.
fn body(response: &str) -> &str {
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let length = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap();
    assert_eq!(length.parse::<usize>().unwrap(), body.len(), "Content-Length of {response:?}");
    body
}

#[test]
fn engine_error_bodies_match_the_reference_for_codes_0_to_5() {
    let expected = [
        (EngineErrorCode::UnknownTransport, 400, r#"{"code":0,"message":"Transport unknown"}"#),
        (EngineErrorCode::UnknownSid, 400, r#"{"code":1,"message":"Session ID unknown"}"#),
        (EngineErrorCode::BadHandshakeMethod, 400, r#"{"code":2,"message":"Bad handshake method"}"#),
        (EngineErrorCode::BadRequest, 400, r#"{"code":3,"message":"Bad request"}"#),
        (EngineErrorCode::Forbidden, 403, r#"{"code":4,"message":"Forbidden"}"#),
        (
            EngineErrorCode::UnsupportedProtocolVersion,
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#,
        ),
    ];
    for (code, status, json) in expected {
        let response = written(|out| write_engine_error(out, &KEEP_ALIVE, code, None));
        let reason = if status == 403 { "Forbidden" } else { "Bad Request" };
        let golden = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: keep-alive\r\n\r\n{json}",
            json.len()
        );
        assert_eq!(response, golden);
        assert_eq!(body(&response), json);
    }
}

#[test]
fn custom_error_messages_are_escaped_like_json_stringify() {
    let response = written(|out| {
        write_engine_error(out, &KEEP_ALIVE, EngineErrorCode::Forbidden, Some("no \"bots\"\\\n\u{1e}é"))
    });
    assert_eq!(body(&response), r#"{"code":4,"message":"no \"bots\"\\\n\u001eé"}"#);
    let empty = written(|out| write_engine_error(out, &KEEP_ALIVE, EngineErrorCode::Forbidden, Some("")));
    assert_eq!(body(&empty), r#"{"code":4,"message":"Forbidden"}"#, "an empty message falls back");
}

#[test]
fn post_ok_is_text_html_with_body_ok() {
    let response = written(|out| write_post_ok(out, &KEEP_ALIVE));
    assert_eq!(
        response,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\ncache-control: no-store\r\n\
         Connection: keep-alive\r\n\r\nok"
    );
}

#[test]
fn polling_response_is_utf8_text_that_is_never_cached() {
    let open = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    let response = written(|out| write_polling(out, &KEEP_ALIVE, open.as_bytes()));
    assert_eq!(
        response,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\
             cache-control: no-store\r\nConnection: keep-alive\r\n\r\n{open}",
            open.len()
        )
    );
    let multibyte = written(|out| write_polling(out, &KEEP_ALIVE, "4é\u{1e}6".as_bytes()));
    assert_eq!(body(&multibyte), "4é\u{1e}6", "Content-Length counts bytes");
    let head_only = written(|out| write_polling_head(out, &KEEP_ALIVE, 1_000_000));
    assert!(head_only
        .ends_with("Content-Length: 1000000\r\ncache-control: no-store\r\nConnection: keep-alive\r\n\r\n"));
}

#[test]
fn internet_explorer_gets_the_xss_protection_quirk_on_polling_responses() {
    let cors = CorsConfig::default();
    let ie =
        head(&get("/", "User-Agent: Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko\r\n"));
    let ctx = ResponseContext::for_request(&ie, &cors);
    assert!(written(|out| write_post_ok(out, &ctx))
        .contains("\r\nX-XSS-Protection: 0\r\ncache-control: no-store\r\n"));
    let firefox = head(&get("/", "User-Agent: Mozilla/5.0 Firefox/128.0\r\n"));
    let ctx = ResponseContext::for_request(&firefox, &cors);
    assert!(!written(|out| write_polling(out, &ctx, b"6")).contains("X-XSS"));
}

#[test]
fn upgrade_errors_are_raw_400s_that_close() {
    let response =
        written(|out| write_upgrade_rejection(out, UpgradeRejection::Engine(EngineErrorCode::UnknownSid)));
    assert_eq!(
        response,
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: 18\r\n\r\n\
         Session ID unknown"
    );
    let forbidden =
        written(|out| write_upgrade_rejection(out, UpgradeRejection::Engine(EngineErrorCode::Forbidden)));
    assert!(forbidden.starts_with("HTTP/1.1 400 Bad Request\r\n"), "always 400, even for Forbidden");
    assert_eq!(body(&forbidden), "Forbidden");
}

#[test]
fn websocket_library_rejections_match_ws() {
    let version = written(|out| write_upgrade_rejection(out, UpgradeRejection::InvalidVersion));
    assert_eq!(
        version,
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 47\r\n\
         Sec-WebSocket-Version: 13, 8\r\n\r\nMissing or invalid Sec-WebSocket-Version header"
    );
    let method = written(|out| write_upgrade_rejection(out, UpgradeRejection::InvalidMethod));
    assert!(method.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_eq!(body(&method), "Invalid HTTP method");
}

#[test]
fn empty_responses_for_404_413_500_and_overlap() {
    let closing = KEEP_ALIVE.closing();
    assert_eq!(
        written(|out| write_empty(out, &closing, Status::PayloadTooLarge)),
        "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(
        written(|out| write_empty(out, &KEEP_ALIVE, Status::InternalServerError)),
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
    );
    assert_eq!(
        written(|out| write_empty(out, &ResponseContext::plain(ConnectionMode::KeepAlive), Status::NotFound)),
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn http10_clients_get_connection_close() {
    let cors = CorsConfig::default();
    let old = head("GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\n\r\n");
    let ctx = ResponseContext::for_request(&old, &cors);
    assert!(written(|out| write_polling(out, &ctx, b"6")).contains("\r\nConnection: close\r\n\r\n6"));
}

#[test]
fn preflight_with_any_origin_matches_the_reference() {
    let cors = CorsConfig::allow_any();
    let request =
        head(&get("/socket.io/", "Origin: http://app\r\nAccess-Control-Request-Headers: content-type\r\n"));
    let ctx = ResponseContext::for_request(&request, &cors);
    assert_eq!(
        written(|out| write_preflight(out, &ctx)),
        "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n\
         Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n\
         Access-Control-Allow-Headers: content-type\r\nVary: Access-Control-Request-Headers\r\n\
         Content-Length: 0\r\nConnection: keep-alive\r\n\r\n"
    );
    let simple = written(|out| write_engine_error(out, &ctx, EngineErrorCode::UnknownTransport, None));
    assert!(simple.contains("\r\nAccess-Control-Allow-Origin: *\r\n"), "error responses carry CORS too");
    assert!(!simple.contains("Vary"));
}

#[test]
fn credentials_reflect_an_allowed_origin_only() {
    let cors = CorsConfig {
        origins: AllowedOrigins::List(vec!["http://x".to_owned()]),
        credentials: true,
        allowed_headers: Some("x-token".to_owned()),
        ..CorsConfig::default()
    };
    let allowed = head(&get("/", "Origin: http://x\r\n"));
    let ctx = ResponseContext::for_request(&allowed, &cors);
    assert_eq!(
        written(|out| write_post_ok(out, &ctx)),
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\ncache-control: no-store\r\n\
         Access-Control-Allow-Origin: http://x\r\nVary: Origin\r\nAccess-Control-Allow-Credentials: true\r\n\
         Connection: keep-alive\r\n\r\nok"
    );
    assert_eq!(
        written(|out| write_preflight(out, &ctx)),
        "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: http://x\r\n\
         Access-Control-Allow-Credentials: true\r\nAccess-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n\
         Access-Control-Allow-Headers: x-token\r\nVary: Origin\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
    );
    let other = head(&get("/", "Origin: http://evil\r\n"));
    let ctx = ResponseContext::for_request(&other, &cors);
    let response = written(|out| write_post_ok(out, &ctx));
    assert!(!response.contains("Allow-Origin") && response.contains("\r\nVary: Origin\r\n"));
}

#[test]
fn reflect_echoes_any_origin_and_off_adds_nothing() {
    let reflect = CorsConfig { origins: AllowedOrigins::Reflect, ..CorsConfig::default() };
    let request = head(&get("/", "Origin: https://a.example:8443\r\n"));
    let ctx = ResponseContext::for_request(&request, &reflect);
    let response = written(|out| write_polling(out, &ctx, b"6"));
    assert!(response.contains("\r\nAccess-Control-Allow-Origin: https://a.example:8443\r\nVary: Origin\r\n"));
    assert!(!response.contains("Credentials"));
    let off = CorsConfig::default();
    let ctx = ResponseContext::for_request(&request, &off);
    assert!(!written(|out| write_polling(out, &ctx, b"6")).contains("Access-Control"));
}

#[test]
fn sec_websocket_accept_of_the_rfc_6455_example() {
    assert_eq!(&websocket_accept(b"dGhlIHNhbXBsZSBub25jZQ=="), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn switching_protocols_declines_extensions_and_echoes_the_first_subprotocol() {
    let request = head(&get(
        "/socket.io/?EIO=4&transport=websocket",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\
         Sec-WebSocket-Protocol: chat , superchat\r\n",
    ));
    let key = request.sec_websocket_key().unwrap();
    let protocol = selected_websocket_protocol(&request);
    assert_eq!(protocol, Some(&b"chat"[..]));
    assert_eq!(
        written(|out| write_switching_protocols(out, key, protocol, &CorsHeaders::NONE)),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
    let cors = CorsConfig::allow_any();
    let with_cors = written(|out| write_switching_protocols(out, key, None, &cors.headers_for(&request)));
    assert!(with_cors.ends_with("=\r\nAccess-Control-Allow-Origin: *\r\n\r\n"));
}

#[test]
fn unparsable_heads_get_a_status_that_names_the_problem() {
    let cases: [(Error, Status); 5] = [
        (PeerMisbehaved::HttpMalformed("x").into(), Status::BadRequest),
        (PeerMisbehaved::HttpVersion.into(), Status::HttpVersionNotSupported),
        (PeerMisbehaved::HttpTransferEncoding.into(), Status::LengthRequired),
        (Limit::HttpHeadSize { max: 1 }.into(), Status::RequestHeaderFieldsTooLarge),
        (Limit::HttpHeaderCount { max: 1 }.into(), Status::RequestHeaderFieldsTooLarge),
    ];
    for (error, status) in cases {
        assert_eq!(head_error_status(&error), status);
    }
    assert_eq!(
        written(|out| write_head_error(out, &Limit::HttpHeadSize { max: 8192 }.into())),
        "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}
