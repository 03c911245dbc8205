//! The publisher thread: drains the shards' queue, transcodes broadcasts into the adapter's message,
//! and publishes in pipelined batches over one connection, reconnecting with backoff when it breaks.
//!
//! Cost per published broadcast (on this thread, not a shard): one parse of the packet's JSON into a
//! value, one msgpack encoding, one write. While Redis is away, messages are dropped (counted, logged
//! once per outage): pub/sub keeps nothing for absent subscribers anyway.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use roomcast_engine::cluster::transcode::arg_value;
use roomcast_engine::cluster::{AdapterPacket, BroadcastFlags, BroadcastOpts, ClassicChannels, Value};
use roomcast_engine::rooms::BroadcastTarget;
use roomcast_engine::sio::OutArg;

use super::resp::{write_command, Connection, Reply};
use super::wire::Wire;
use super::{link, Backoff, Outgoing, IO_TIMEOUT};
use crate::broadcast::{Broadcast, EncodedPacket};
use crate::shard::shared::Shared;

/// Most messages written in one pipelined batch before their replies are read.
const BATCH: usize = 256;
/// Read timeouts in a row, waiting for a reply, after which the connection is taken for dead (2 s).
const PATIENCE_READS: u32 = 8;
/// How often held requests look whether their namespace got subscribed.
const HELD_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Runs until `stop`. `conn` is the connection opened at start.
pub(super) fn run(shared: Arc<Shared>, rx: Receiver<Outgoing>, conn: Connection, stop: Arc<AtomicBool>) {
    let Some(link) = link(&shared) else { return };
    let wire = Wire::new(&link.config);
    let _ = conn.set_read_timeout(IO_TIMEOUT);
    let mut conn = Some(conn);
    let mut backoff = Backoff::default();
    let mut next_attempt = std::time::Instant::now();
    let mut lost = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    let mut out = Vec::new();
    let mut requests: Vec<(usize, String)> = Vec::new();
    // Requests with answers waiting for this node's subscription to their namespace (see
    // `hold_unsubscribed`), in the order they came.
    let mut held: Vec<Outgoing> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        shared.requests.expire(&shared, Instant::now());
        let wait = shared
            .requests
            .next_deadline()
            .map_or(IO_TIMEOUT, |at| at.saturating_duration_since(Instant::now()).min(IO_TIMEOUT));
        let wait = if held.is_empty() { wait } else { wait.min(HELD_POLL) };
        release_held(&shared, link, &mut held, &mut batch);
        if batch.is_empty() {
            match rx.recv_timeout(wait) {
                Ok(msg) => batch.push(msg),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(msg) => batch.push(msg),
                Err(_) => break,
            }
        }
        hold_unsubscribed(link, &mut batch, &mut held);
        if batch.is_empty() {
            continue;
        }
        if conn.is_none() && std::time::Instant::now() >= next_attempt {
            match Connection::open(&link.config.url, IO_TIMEOUT * 4) {
                Ok(fresh) => {
                    let _ = fresh.set_read_timeout(IO_TIMEOUT);
                    eprintln!("roomcast: redis publisher reconnected ({lost} message(s) lost meanwhile)");
                    conn = Some(fresh);
                    backoff.reset();
                    lost = 0;
                }
                Err(_) => next_attempt = std::time::Instant::now() + backoff.next_pause(),
            }
        }
        let Some(live) = conn.as_mut() else {
            lost += batch.len() as u64;
            batch.clear();
            continue;
        };
        out.clear();
        requests.clear();
        let mut commands = 0;
        for msg in batch.drain(..) {
            let (channel, payload) = match msg {
                Outgoing::Publish { channel, payload } => (channel, payload),
                Outgoing::Broadcast(broadcast) => match wire.encode_broadcast(&link.uid, &broadcast) {
                    Some(encoded) => encoded,
                    None => continue,
                },
                Outgoing::Request { nsp, request_id, query } => {
                    match wire.encode_request(&link.uid, &nsp, request_id.as_deref(), &query) {
                        Some(encoded) => {
                            if let Some(id) = request_id {
                                requests.push((commands, id));
                            }
                            encoded
                        }
                        // Not carried by this protocol: no other server will answer.
                        None => {
                            if let Some(id) = request_id {
                                shared.requests.counted(&shared, &id, 0);
                            }
                            continue;
                        }
                    }
                }
            };
            write_command(&mut out, &[wire.publish_command(), channel.as_bytes(), &payload]);
            commands += 1;
        }
        match publish_batch(live, &out, commands) {
            // A request's PUBLISH reply is how many connections received it: every server subscribed to
            // the namespace's request channel, this one included.
            Ok(receivers) => {
                for (index, id) in requests.drain(..) {
                    let others = receivers.get(index).copied().unwrap_or(0).saturating_sub(1);
                    shared.requests.counted(&shared, &id, others);
                }
            }
            Err(e) => {
                eprintln!("roomcast: redis publisher lost its connection ({e}); reconnecting");
                lost += commands as u64;
                conn = None;
                next_attempt = std::time::Instant::now() + backoff.next_pause();
            }
        }
    }
}

/// Moves the requests with answers of `batch` whose namespace this node is not (yet, or any more)
/// confirmed subscribed to into `held`. Published now, such a request's `PUBLISH` reply would not count
/// this node, so `count - 1` would expect one answer too few and end before the last server answered
/// (classic); or its answers would arrive on a channel not yet followed (sharded). This happens for a
/// request made right after start, within the subscriber's first look at a dynamic namespace (up to
/// 250 ms), or while the subscriber reconnects. Requests without answers, and broadcasts, go at once.
fn hold_unsubscribed(link: &super::ClusterLink, batch: &mut Vec<Outgoing>, held: &mut Vec<Outgoing>) {
    let waits = |msg: &Outgoing| matches!(msg, Outgoing::Request { nsp, request_id: Some(_), .. } if !link.is_subscribed(nsp));
    if !batch.iter().any(waits) {
        return;
    }
    let (wait, go): (Vec<Outgoing>, Vec<Outgoing>) = batch.drain(..).partition(waits);
    held.extend(wait);
    batch.extend(go);
}

/// Moves the held requests whose namespace is now subscribed into `batch`, and drops those that ended
/// meanwhile (their deadline passed: the caller got a timeout saying the request was not published).
fn release_held(
    shared: &Shared,
    link: &super::ClusterLink,
    held: &mut Vec<Outgoing>,
    batch: &mut Vec<Outgoing>,
) {
    if held.is_empty() {
        return;
    }
    let mut still = Vec::with_capacity(held.len());
    for msg in held.drain(..) {
        match &msg {
            Outgoing::Request { request_id: Some(id), .. } if !shared.requests.is_pending(id) => {}
            Outgoing::Request { nsp, .. } if !link.is_subscribed(nsp) => still.push(msg),
            _ => batch.push(msg),
        }
    }
    *held = still;
}

/// Writes the batch and reads one reply per command: how many subscribers received each message (0
/// for a refused one), in command order.
fn publish_batch(conn: &mut Connection, out: &[u8], commands: usize) -> std::io::Result<Vec<u64>> {
    conn.write_all(out)?;
    let mut waited = 0;
    let mut receivers = Vec::with_capacity(commands);
    while receivers.len() < commands {
        match conn.read_reply()? {
            Some(Reply::Int(n)) => receivers.push(u64::try_from(n).unwrap_or(0)),
            Some(Reply::Error(e)) => {
                eprintln!("roomcast: redis refused a PUBLISH: {e}");
                receivers.push(0);
            }
            Some(_) => receivers.push(0),
            None if waited < PATIENCE_READS => waited += 1,
            None => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply to PUBLISH")),
        }
    }
    Ok(receivers)
}

/// The classic adapter's message for a broadcast made here, and its channel: `[uid, {type: 2, data,
/// nsp}, {rooms, except, flags}]` on `<key>#<nsp>#` or `<key>#<nsp>#<room>#`. `None` (logged) if the
/// packet is not an event this server encoded (a bug, not a peer's fault).
pub(super) fn encode_broadcast(
    uid: &str,
    channels: &ClassicChannels,
    broadcast: &Broadcast,
) -> Option<(String, Bytes)> {
    let Some(data) = event_data(&broadcast.packet) else {
        eprintln!("roomcast: cannot transcode a broadcast for redis; not published");
        return None;
    };
    let message = roomcast_engine::cluster::Broadcast {
        uid: uid.to_owned(),
        packet: AdapterPacket { packet_type: 2, data, nsp: Some(broadcast.nsp.to_string()) },
        opts: broadcast_opts(&broadcast.target),
    };
    Some((channels.for_broadcast(&broadcast.nsp, &message.opts), message.encode()))
}

/// The adapters' `{rooms, except, flags}` for a local target (a `socket.broadcast`'s sender id is an
/// except room, as in socket.io).
pub(crate) fn broadcast_opts(target: &BroadcastTarget) -> BroadcastOpts {
    BroadcastOpts {
        rooms: target.to.iter().map(|r| r.as_str().to_owned()).collect(),
        except: target
            .except
            .iter()
            .map(|r| r.as_str().to_owned())
            .chain(target.except_sids.iter().map(|s| s.as_str().to_owned()))
            .collect(),
        flags: BroadcastFlags {
            volatile: target.flags.volatile.then_some(true),
            compress: (!target.flags.compress).then_some(false),
            local: None,
            timeout: None,
        },
    }
}

/// `[event, …args]` from an encoded EVENT or BINARY_EVENT (`4` `2`|`5<n>-` [`/nsp,`] [id] `[…]`), its
/// placeholders resolved against the packet's attachments.
pub(super) fn event_data(packet: &EncodedPacket) -> Option<Value> {
    let text = packet.text.strip_prefix(b"4")?;
    let (&kind, mut rest) = text.split_first()?;
    match kind {
        b'2' => {}
        b'5' => rest = rest.get(rest.iter().position(|&b| b == b'-')? + 1..)?,
        _ => return None,
    }
    if rest.first() == Some(&b'/') {
        rest = rest.get(rest.iter().position(|&b| b == b',')? + 1..)?;
    }
    rest = rest.get(rest.iter().take_while(|b| b.is_ascii_digit()).count()..)?;
    let attachments: Vec<Bytes> = packet.attachments.iter().map(|a| a.data.clone()).collect();
    arg_value(&OutArg::JsonWithBinary { json: rest, attachments: &attachments }).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::api::Arg;

    #[test]
    fn encoded_events_transcode_back_to_their_arguments() {
        let plain = EncodedPacket::event("/", None, "hello", &[Arg::str("world"), Arg::json("1.5").unwrap()]);
        assert_eq!(
            event_data(&plain).unwrap(),
            Value::Array(vec![Value::str("hello"), Value::str("world"), Value::Float(1.5)])
        );
        let binary = EncodedPacket::event("/admin", None, "bin", &[Arg::binary(vec![1u8, 2, 3])]);
        assert_eq!(
            event_data(&binary).unwrap(),
            Value::Array(vec![Value::str("bin"), Value::Bin(Bytes::from_static(&[1, 2, 3]))])
        );
    }

    #[test]
    fn a_broadcast_is_published_on_its_room_channel_as_the_node_adapter_does() {
        let packet = EncodedPacket::event("/", None, "a", &[Arg::json("1").unwrap()]);
        let target =
            roomcast_engine::rooms::BroadcastTarget { to: vec!["room1".into()], ..Default::default() };
        let broadcast = Broadcast { nsp: "/".into(), target, packet, origin: None };
        let (channel, bytes) = encode_broadcast("ALYhD2", &ClassicChannels::default(), &broadcast).unwrap();
        assert_eq!(channel, "socket.io#/#room1#");
        let decoded = roomcast_engine::cluster::Broadcast::decode(&bytes).unwrap();
        assert_eq!(decoded.uid, "ALYhD2");
        assert_eq!(decoded.opts.rooms, ["room1"]);
        assert_eq!(decoded.packet.nsp.as_deref(), Some("/"));
        // The opts map is `{rooms, except, flags: {}}`, as Node writes it for `io.to("room1").emit`.
        assert!(bytes.ends_with(b"\x83\xa5rooms\x91\xa5room1\xa6except\x90\xa5flags\x80"));
    }
}
