//! The subscriber thread: one connection in subscribe mode, kept alive and resubscribed.
//!
//! It subscribes, for every namespace defined at start, to what a Node server of the classic adapter
//! subscribes to: `PSUBSCRIBE <key>#<nsp>#*` (broadcasts) and `SUBSCRIBE <key>-request#<nsp>#
//! <key>-response#<nsp># <key>-response#<nsp>#<uid>#` (so Node servers count this one in
//! `PUBSUB NUMSUB`); and the same for each dynamic namespace once a shard has created it (noticed
//! within one read timeout, 250 ms). Messages are handled on this thread ([`super::inbound`]); none
//! waits on a shard. Each request channel's confirmation is reported to the link
//! ([`super::ClusterLink::confirm_subscribed`]): this server's requests of a namespace wait for it.
//!
//! Liveness: after [`Liveness::PING_AFTER`] without a byte it sends `PING` (allowed in subscribe mode); after
//! [`Liveness::DEAD_AFTER`] without one it takes the connection for dead, reconnects with backoff and
//! subscribes again. Messages published meanwhile are lost (pub/sub is at-most-once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use roomcast_engine::cluster::{ClassicChannel, ClassicChannels};

use super::resp::{write_command, Connection, Liveness, Reply};
use super::{inbound, keep_subscribed, link, Backoff, Subscriber, IO_TIMEOUT};
use crate::shard::shared::Shared;

/// Runs until `stop`. `conn` is the connection opened at start.
pub(super) fn run(shared: Arc<Shared>, conn: Connection, stop: Arc<AtomicBool>) {
    let Some(link) = link(&shared) else { return };
    let channels = ClassicChannels::new(link.config.key_prefix.clone());
    keep_subscribed(link, conn, &stop, &mut Classic { shared: &shared, channels: &channels });
}

/// The classic protocol's subscriber.
struct Classic<'a> {
    shared: &'a Shared,
    channels: &'a ClassicChannels,
}

impl Subscriber for Classic<'_> {
    fn serve(&mut self, conn: Connection, stop: &AtomicBool, backoff: &mut Backoff) -> std::io::Result<()> {
        serve(self.shared, self.channels, conn, stop, backoff)
    }
}

/// Subscribes, then handles pushes until `stop` (`Ok`) or the connection fails (`Err`).
fn serve(
    shared: &Shared,
    channels: &ClassicChannels,
    mut conn: Connection,
    stop: &AtomicBool,
    backoff: &mut Backoff,
) -> std::io::Result<()> {
    let Some(link) = link(shared) else { return Ok(()) };
    link.forget_subscriptions();
    conn.set_read_timeout(IO_TIMEOUT)?;
    let mut out = Vec::new();
    let dynamic = link.dynamic_namespaces(0);
    let mut dynamic_subscribed = dynamic.len();
    let defined = shared.namespaces.iter().map(|(nsp, _)| nsp);
    subscribe_namespaces(&mut out, channels, &link.uid, defined.chain(dynamic.iter()));
    conn.write_all(&out)?;
    let mut liveness = Liveness::new();
    let mut subscribed = false;
    while !stop.load(Ordering::Acquire) {
        let created = link.dynamic_namespaces(dynamic_subscribed);
        if !created.is_empty() {
            out.clear();
            subscribe_namespaces(&mut out, channels, &link.uid, created.iter());
            conn.write_all(&out)?;
            dynamic_subscribed += created.len();
        }
        let Some(items) = liveness.next_push(&mut conn, &mut out, "redis refused a subscription")? else {
            continue;
        };
        match items.as_slice() {
            [kind, channel, payload] if kind.bytes() == Some(b"message") => {
                if let (Some(channel), Reply::Bulk(Some(payload))) = (channel.bytes(), payload) {
                    inbound::on_message(shared, link, channels, channel, payload);
                }
            }
            [kind, _pattern, channel, payload] if kind.bytes() == Some(b"pmessage") => {
                if let (Some(channel), Reply::Bulk(Some(payload))) = (channel.bytes(), payload) {
                    inbound::on_message(shared, link, channels, channel, payload);
                }
            }
            [kind, channel, ..] if kind.bytes() == Some(b"subscribe") => {
                if let Some(ClassicChannel::Request { nsp }) = channel.bytes().and_then(|c| channels.parse(c))
                {
                    link.confirm_subscribed(nsp);
                }
                if !subscribed {
                    subscribed = true;
                    backoff.reset();
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Writes the subscriptions a Node server of the classic adapter makes for each namespace:
/// `PSUBSCRIBE <key>#<nsp>#*` and `SUBSCRIBE <key>-request#<nsp># <key>-response#<nsp>#
/// <key>-response#<nsp>#<uid>#`.
fn subscribe_namespaces<'n>(
    out: &mut Vec<u8>,
    channels: &ClassicChannels,
    uid: &str,
    namespaces: impl Iterator<Item = &'n Arc<str>>,
) {
    let mut subscribe: Vec<Vec<u8>> = vec![b"SUBSCRIBE".to_vec()];
    let mut psubscribe: Vec<Vec<u8>> = vec![b"PSUBSCRIBE".to_vec()];
    for nsp in namespaces {
        psubscribe.push(channels.broadcast_pattern(nsp).into_bytes());
        subscribe.push(channels.request(nsp).into_bytes());
        subscribe.push(channels.response(nsp).into_bytes());
        subscribe.push(channels.specific_response(nsp, uid).into_bytes());
    }
    if subscribe.len() == 1 {
        return;
    }
    for command in [&psubscribe, &subscribe] {
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        write_command(out, &args);
    }
}
