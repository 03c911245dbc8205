#![no_main]
//! Socket.IO packet decoding and attachment reassembly on arbitrary bytes.
//!
//! 1. The whole input is decoded as one packet; if it decodes, its canonical re-encoding must decode to
//!    the same packet.
//! 2. The input is split at `0x1e` (the polling record separator) into messages: a message starting
//!    with `b` is binary (the rest of it), any other is text. They drive one `AttachmentReassembler`,
//!    with small limits so the limit paths are reached; every completed packet is read back fully.
use libfuzzer_sys::fuzz_target;
use roomcast_engine::sio::{decode, Arg, AttachmentReassembler, Limits, Packet, Received};

fn read_all(packet: &Packet<'_>) {
    let _ = packet.event_name();
    let _ = packet.auth();
    for arg in packet.args() {
        assert!(!arg.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = decode(data, &Limits::default()) {
        read_all(&packet);
        let message = packet.to_eio_message();
        let again = decode(&message[1..], &Limits::default()).expect("canonical form decodes");
        assert_eq!(again, packet);
    }

    let limits = Limits { max_attachments: 3, max_json_depth: 8, max_buffered_bytes: 512 };
    let mut reassembler = AttachmentReassembler::new();
    for message in data.split(|&b| b == 0x1e) {
        let received = match message.strip_prefix(b"b") {
            Some(binary) => reassembler.handle_binary(binary.to_vec(), &limits),
            None => reassembler.handle_text(message, &limits),
        };
        match received {
            Ok(Received::Packet(packet)) => read_all(&packet),
            Ok(Received::Binary(binary)) => {
                let packet = binary.packet();
                assert_eq!(binary.attachments().len(), packet.attachments());
                read_all(&packet);
                for arg in binary.args() {
                    if let Arg::Binary(data) = arg {
                        assert!(binary.attachments().iter().any(|a| a == data));
                    }
                }
            }
            Ok(Received::AwaitingAttachments { remaining }) => assert!(remaining > 0),
            Err(_) => assert!(!reassembler.is_reassembling()),
        }
    }
});
