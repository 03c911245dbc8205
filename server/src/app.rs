//! The built-in push app: what `roomcast` does with no Rust code written.
//!
//! On namespace `/`, a client may emit:
//! - `join` (room name) → joins it; ack `"ok"`;
//! - `leave` (room name) → leaves it; ack `"ok"`;
//! - `publish` (`{"to":[rooms],"except":[rooms],"event":name,"data":any}`) →
//!   `socket.to(to…).except(except…).emit(event, data)`: the sender excluded, each recipient once; with
//!   no `to`, every socket of the namespace but the sender. Ack `"ok"`.
//!
//! A refused request is acked with `{"error":"…"}`. `--client-rooms <glob>` limits the rooms clients may
//! join or publish to (`*` any run of characters, `?` one character).

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::api::{Arg, Event, Server, Socket};

/// Installs the push app on `/` of `server`. `client_rooms`: allowed globs, `None` for every room.
pub fn install(server: &mut Server, client_rooms: Option<Vec<String>>) {
    let rooms = std::sync::Arc::new(RoomPolicy { globs: client_rooms });
    let nsp = server.namespace("/");
    let policy = rooms.clone();
    nsp.on("join", move |socket, event| match room_arg(event) {
        Some(room) if policy.allows(&room) => {
            socket.join(&room);
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        }
        Some(_) => refuse(socket, event, "room not allowed"),
        None => refuse(socket, event, "expected a room name"),
    });
    let policy = rooms.clone();
    nsp.on("leave", move |socket, event| match room_arg(event) {
        Some(room) if policy.allows(&room) => {
            socket.leave(&room);
            socket.ack(event.ack_id(), &[Arg::str("ok")]);
        }
        Some(_) => refuse(socket, event, "room not allowed"),
        None => refuse(socket, event, "expected a room name"),
    });
    let policy = rooms;
    nsp.on("publish", move |socket, event| {
        let Some(request) =
            event.arg(0).and_then(|a| a.json()).and_then(|j| serde_json::from_slice::<Publish<'_>>(j).ok())
        else {
            return refuse(socket, event, "expected {\"to\":[…],\"except\":[…],\"event\":…,\"data\":…}");
        };
        let to = request.to.into_vec();
        let except = request.except.into_vec();
        if !to.iter().chain(&except).all(|r| policy.allows(r)) {
            return refuse(socket, event, "room not allowed");
        }
        let args: Vec<Arg> = request
            .data
            .map(|d| Arg::Json(bytes::Bytes::copy_from_slice(d.get().as_bytes())))
            .into_iter()
            .collect();
        let mut op = socket.broadcast();
        for room in &to {
            op = op.to(room);
        }
        for room in &except {
            op = op.except(room);
        }
        op.emit(&request.event, &args);
        socket.ack(event.ack_id(), &[Arg::str("ok")]);
    });
}

fn room_arg(event: &Event<'_>) -> Option<String> {
    event.arg(0)?.as_str().map(|s| s.into_owned()).filter(|s| !s.is_empty())
}

fn refuse(socket: &mut Socket<'_>, event: &Event<'_>, why: &str) {
    let mut text = b"{\"error\":".to_vec();
    crate::api::args::write_json_string(why, &mut text);
    text.push(b'}');
    socket.ack(event.ack_id(), &[Arg::Json(text.into())]);
}

#[derive(Deserialize)]
struct Publish<'a> {
    #[serde(default)]
    to: OneOrMany,
    #[serde(default)]
    except: OneOrMany,
    event: String,
    /// `None` only when the member is absent: `"data":null` is forwarded as a `null` argument.
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<&'a RawValue>,
}

/// Keeps a JSON `null` as `Some("null")` (serde's `Option` would turn it into `None`).
fn present<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'a RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Which rooms clients may use through the app.
#[derive(Debug)]
struct RoomPolicy {
    globs: Option<Vec<String>>,
}

impl RoomPolicy {
    fn allows(&self, room: &str) -> bool {
        self.globs
            .as_ref()
            .is_none_or(|globs| globs.iter().any(|g| glob_matches(g.as_bytes(), room.as_bytes())))
    }
}

/// `*` matches any run of bytes, `?` one byte; everything else itself. Iterative, O(len(p) × len(s)).
pub fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_patterns() {
        assert!(glob_matches(b"project:*", b"project:4321"));
        assert!(glob_matches(b"user-??", b"user-42"));
        assert!(!glob_matches(b"user-??", b"user-421"));
        assert!(glob_matches(b"*", b""));
        assert!(!glob_matches(b"a*b", b"acd"));
        assert!(glob_matches(b"a*b*c", b"axxbyyc"));
    }

    #[test]
    fn publish_requests_accept_one_room_or_many() {
        let p: Publish<'_> = serde_json::from_str(r#"{"to":"r1","event":"e","data":{"b":1,"a":2}}"#).unwrap();
        assert_eq!(p.to.into_vec(), ["r1"]);
        assert_eq!(p.data.unwrap().get(), r#"{"b":1,"a":2}"#);
        let p: Publish<'_> = serde_json::from_str(r#"{"to":["a","b"],"except":["c"],"event":"e"}"#).unwrap();
        assert_eq!(p.to.into_vec(), ["a", "b"]);
        assert_eq!(p.except.into_vec(), ["c"]);
        assert!(p.data.is_none());
        let p: Publish<'_> = serde_json::from_str(r#"{"event":"e","data":null}"#).unwrap();
        assert_eq!(p.data.unwrap().get(), "null");
    }
}
