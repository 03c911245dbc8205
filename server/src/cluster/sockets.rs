//! Reading a shard's sockets for other nodes' requests (`fetchSockets`, `allRooms`, `sockets`), and
//! moving event arguments between the server's [`Arg`] and the adapters' values.
//!
//! Runs on a shard, inside a `ShardMsg::Run` closure: control path.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use roomcast_engine::cluster::transcode::EventArg;
use roomcast_engine::cluster::{BroadcastOpts, RemoteSocket};
use roomcast_engine::ids::SocketId;
use roomcast_engine::sio::OutArg;
use serde_json::{Map, Value as Json};

use super::inbound::target_of;
use crate::api::handshake::Handshake;
use crate::api::socket::Ctx;
use crate::api::{Arg, JsonWithBinary};

/// The sockets of namespace `index` on this shard that `opts` selects.
pub(super) fn selected(cx: &mut Ctx<'_>, index: u32, opts: &BroadcastOpts) -> Vec<SocketId> {
    let core = &mut *cx.core;
    let Some(namespace) = core.nsps.get(index as usize) else { return Vec::new() };
    namespace.rooms.resolve(&target_of(opts), &mut core.spec);
    namespace.rooms.plan(&core.spec, &mut core.scratch).collect()
}

/// The ids of the sockets `opts` selects in `nsp` on this shard.
pub(super) fn ids(cx: &mut Ctx<'_>, nsp: &str, opts: &BroadcastOpts) -> Vec<String> {
    let Some(index) = cx.core.namespace_index(nsp, false) else { return Vec::new() };
    let ids = selected(cx, index, opts);
    let Some(namespace) = cx.core.nsps.get(index as usize) else { return Vec::new() };
    ids.into_iter().filter_map(|id| namespace.rooms.sid(id)).map(|sid| sid.to_string()).collect()
}

/// Every room of `nsp` on this shard, socket-id rooms included (as `adapter.rooms.keys()`).
pub(super) fn all_rooms(cx: &mut Ctx<'_>, nsp: &str) -> Vec<String> {
    let Some(index) = cx.core.namespace_index(nsp, false) else { return Vec::new() };
    let Some(namespace) = cx.core.nsps.get(index as usize) else { return Vec::new() };
    namespace.rooms.all_rooms().map(str::to_owned).collect()
}

/// The sockets `opts` selects in `nsp` on this shard, as `fetchSockets` answers describe them:
/// `{id, handshake, rooms}` (Roomcast sockets have no `data`).
pub(super) fn fetch(cx: &mut Ctx<'_>, nsp: &str, opts: &BroadcastOpts) -> Vec<RemoteSocket> {
    let Some(index) = cx.core.namespace_index(nsp, false) else { return Vec::new() };
    let ids = selected(cx, index, opts);
    let core = &*cx.core;
    let Some(namespace) = core.nsps.get(index as usize) else { return Vec::new() };
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(socket) = namespace.socket(id) else { continue };
        let Some(session) = core.session(socket.session) else { continue };
        let rooms = namespace.rooms.rooms_of(id).map(|r| r.map(str::to_owned).collect()).unwrap_or_default();
        found.push(RemoteSocket {
            id: socket.sid.to_string(),
            handshake: handshake_json(&session.handshake, &socket.auth),
            rooms,
            data: None,
        });
    }
    found
}

/// `socket.handshake` as a Node server describes it: `{headers, time, address, xdomain, secure,
/// issued, url, query, auth}`.
fn handshake_json(handshake: &Handshake, auth: &[u8]) -> Bytes {
    let issued = handshake.time.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
    let pairs = |list: &mut dyn Iterator<Item = (&str, &str)>| {
        let mut map = Map::new();
        for (name, value) in list {
            map.insert(name.to_owned(), Json::String(value.to_owned()));
        }
        Json::Object(map)
    };
    let mut object = Map::new();
    object.insert("headers".into(), pairs(&mut handshake.headers()));
    object.insert("time".into(), Json::String(js_date_string(handshake.time)));
    object.insert("address".into(), Json::String(handshake.address.ip().to_string()));
    object.insert("xdomain".into(), Json::Bool(handshake.xdomain));
    object.insert("secure".into(), Json::Bool(false));
    object.insert("issued".into(), Json::from(issued));
    object.insert("url".into(), Json::String(handshake.url().to_owned()));
    object.insert("query".into(), pairs(&mut handshake.query()));
    object.insert("auth".into(), serde_json::from_slice(auth).unwrap_or_else(|_| Json::Object(Map::new())));
    Bytes::from(serde_json::to_vec(&Json::Object(object)).unwrap_or_default())
}

/// `new Date(t).toString()` in UTC: `Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)`.
fn js_date_string(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let days = secs / 86_400;
    let (hh, mm, ss) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = DAYS.get((days % 7) as usize).unwrap_or(&"Thu");
    let month_name = MONTHS.get((month - 1) as usize).unwrap_or(&"Jan");
    format!("{weekday} {month_name} {day:02} {year} {hh:02}:{mm:02}:{ss:02} GMT+0000 (Coordinated Universal Time)")
}

/// A received argument as the server API holds it.
pub(super) fn arg_of(arg: EventArg) -> Arg {
    match arg {
        EventArg::Json(json) => Arg::Json(json),
        EventArg::Binary(data) => Arg::Binary(data),
        EventArg::JsonWithBinary { json, attachments } => match JsonWithBinary::new(json, attachments) {
            Ok(nested) => Arg::JsonWithBinary(nested),
            Err(_) => Arg::Json(Bytes::from_static(b"null")),
        },
    }
}

/// An argument as the engine's encoders and transcoders take it.
pub(crate) fn out_arg(arg: &Arg) -> OutArg<'_> {
    match arg {
        Arg::Json(text) => OutArg::Json(text),
        Arg::Binary(data) => OutArg::Binary(data.clone()),
        Arg::JsonWithBinary(nested) => {
            OutArg::JsonWithBinary { json: nested.json(), attachments: nested.attachments() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_print_as_javascript_prints_them_in_utc() {
        assert_eq!(
            js_date_string(UNIX_EPOCH),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29T12:34:56Z
        assert_eq!(js_date_string(t), "Thu Feb 29 2024 12:34:56 GMT+0000 (Coordinated Universal Time)");
    }
}
