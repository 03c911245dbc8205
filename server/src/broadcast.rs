//! Encode once: a Socket.IO packet as the exact bytes every recipient is sent.
//!
//! Hot path, first step. A broadcast is encoded here once — the Engine.IO message text (`4` + packet),
//! its WebSocket frame, and each binary attachment with its frame — into refcounted `Bytes`. Shards then
//! queue clones of these (an atomic increment each) on every recipient; nothing is encoded, copied or
//! allocated per recipient. Cost: one allocation per part plus the copy of the arguments, once.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use roomcast_engine::eio::OutPacket;
use roomcast_engine::ids::ShardId;
use roomcast_engine::rooms::BroadcastTarget;
use roomcast_engine::sio::{self, OutArg};
use roomcast_engine::ws::{prebuilt_binary_frame, prebuilt_text_frame};

use crate::api::args::Arg;

/// One binary attachment: the raw bytes (for polling, base64-encoded per session) and its WebSocket frame.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub data: Bytes,
    pub frame: Bytes,
}

/// A packet ready to queue on any session: text + frame, then attachments in order.
#[derive(Debug, Clone)]
pub(crate) struct EncodedPacket {
    /// The Engine.IO message text, type digit included (`42["ev",…]`).
    pub text: Bytes,
    /// `text` as one WebSocket text frame.
    pub frame: Bytes,
    pub attachments: Vec<Attachment>,
}

impl EncodedPacket {
    /// From an Engine.IO message text (`4…`) and no attachments.
    pub(crate) fn from_text(text: Bytes) -> Self {
        let frame = prebuilt_text_frame(&[&text]);
        EncodedPacket { text, frame, attachments: Vec::new() }
    }

    /// An EVENT (or BINARY_EVENT when an argument is binary).
    pub(crate) fn event(nsp: &str, ack_id: Option<u64>, event: &str, args: &[Arg]) -> Self {
        if args.iter().all(|a| matches!(a, Arg::Json(_))) {
            let raw: smallvec_args::RawArgs<'_> = smallvec_args::raw(args);
            return Self::from_text(sio::event_message(nsp, ack_id, event, raw.as_slice()));
        }
        let mut out = BytesMut::new();
        out.put_u8(sio::EIO_MESSAGE);
        let mut attachments = Vec::new();
        let out_args: Vec<OutArg<'_>> = args.iter().map(out_arg).collect();
        // Every argument is valid JSON, plain binary, or a checked `JsonWithBinary`: this cannot fail.
        let _ = sio::encode_event_with_binary(nsp, ack_id, event, &out_args, &mut out, &mut attachments);
        Self::with_attachments(out.freeze(), attachments)
    }

    /// An ACK (or BINARY_ACK) answering a client's `ack_id`.
    pub(crate) fn ack(nsp: &str, ack_id: u64, args: &[Arg]) -> Self {
        let mut out = BytesMut::new();
        out.put_u8(sio::EIO_MESSAGE);
        let mut attachments = Vec::new();
        let out_args: Vec<OutArg<'_>> = args.iter().map(out_arg).collect();
        let _ = sio::encode_ack_with_binary(nsp, ack_id, &out_args, &mut out, &mut attachments);
        Self::with_attachments(out.freeze(), attachments)
    }

    fn with_attachments(text: Bytes, attachments: Vec<Bytes>) -> Self {
        let frame = prebuilt_text_frame(&[&text]);
        let attachments = attachments
            .into_iter()
            .map(|data| Attachment { frame: prebuilt_binary_frame(&[&data]), data })
            .collect();
        EncodedPacket { text, frame, attachments }
    }

    /// The Engine.IO packets to queue on a session, in order: clones of the shared bytes only.
    pub(crate) fn out_packets(&self) -> impl Iterator<Item = OutPacket> + '_ {
        std::iter::once(OutPacket::text(self.text.clone()).with_ws_frame(self.frame.clone())).chain(
            self.attachments.iter().map(|a| OutPacket::binary(a.data.clone()).with_ws_frame(a.frame.clone())),
        )
    }

    /// Bytes this packet adds to a socket's outbound queue.
    pub(crate) fn wire_len(&self) -> usize {
        self.frame.len() + self.attachments.iter().map(|a| a.frame.len()).sum::<usize>()
    }
}

fn out_arg(arg: &Arg) -> OutArg<'_> {
    match arg {
        Arg::Json(text) => OutArg::Json(text),
        Arg::Binary(data) => OutArg::Binary(data.clone()),
        Arg::JsonWithBinary(nested) => {
            OutArg::JsonWithBinary { json: nested.json(), attachments: nested.attachments() }
        }
    }
}

/// Raw JSON argument slices without allocating for the common small argument counts.
mod smallvec_args {
    use crate::api::args::Arg;

    pub(crate) enum RawArgs<'a> {
        Inline([&'a [u8]; 4], usize),
        Heap(Vec<&'a [u8]>),
    }

    impl<'a> RawArgs<'a> {
        pub(crate) fn as_slice(&self) -> &[&'a [u8]] {
            match self {
                RawArgs::Inline(arr, n) => arr.get(..*n).unwrap_or_default(),
                RawArgs::Heap(v) => v,
            }
        }
    }

    pub(crate) fn raw(args: &[Arg]) -> RawArgs<'_> {
        fn text(a: &Arg) -> &[u8] {
            match a {
                Arg::Json(t) | Arg::Binary(t) => t,
                Arg::JsonWithBinary(nested) => nested.json(),
            }
        }
        if args.len() <= 4 {
            let mut arr: [&[u8]; 4] = [&[]; 4];
            for (slot, a) in arr.iter_mut().zip(args) {
                *slot = text(a);
            }
            RawArgs::Inline(arr, args.len())
        } else {
            RawArgs::Heap(args.iter().map(text).collect())
        }
    }
}

/// A broadcast as it travels between shards: shared by all of them through one `Arc`.
#[derive(Debug)]
pub(crate) struct Broadcast {
    pub nsp: Arc<str>,
    pub target: BroadcastTarget,
    pub packet: EncodedPacket,
    /// The shard that encoded it (it delivers its own share before handing it on).
    pub origin: Option<ShardId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_encoded_once_as_text_and_frame() {
        let p = EncodedPacket::event("/", None, "hello", &[Arg::str("world")]);
        assert_eq!(&p.text[..], b"42[\"hello\",\"world\"]");
        assert_eq!(p.frame[0], 0x81);
        assert_eq!(&p.frame[2..], &p.text[..]);
        assert!(p.attachments.is_empty());
    }

    #[test]
    fn binary_arguments_become_placeholders_and_attachments() {
        let p = EncodedPacket::event("/custom", None, "bin", &[Arg::binary(vec![1u8, 2, 3]), Arg::str("x")]);
        assert_eq!(&p.text[..], b"451-/custom,[\"bin\",{\"_placeholder\":true,\"num\":0},\"x\"]");
        assert_eq!(p.attachments.len(), 1);
        assert_eq!(&p.attachments[0].data[..], &[1, 2, 3]);
        assert_eq!(&p.attachments[0].frame[..], &[0x82, 3, 1, 2, 3]);
    }

    #[test]
    fn acks_answer_the_clients_id() {
        let p = EncodedPacket::ack("/", 456, &[Arg::json("1").unwrap(), Arg::str("2")]);
        assert_eq!(&p.text[..], b"43456[1,\"2\"]");
    }
}
