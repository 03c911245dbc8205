//! The bytes queued on a shard's connections: one arena of queue nodes, and one table of the buffers
//! they point into, each with a shard-local reference count.
//!
//! Hot path. A broadcast's frame enters the table once per shard ([`Queues::add`]: the one atomic
//! refcount of its `Bytes` this shard pays) and every recipient's queue node points at it: a plain
//! `u32` increment, never an atomic, because only the owning shard's thread touches the table (it is
//! part of the driver, which never leaves its thread). The last node to go drops the `Bytes`.
//!
//! A node is 12 bytes (frame, offset, next), so a queue walk — filling iovecs, consuming what the
//! kernel took — touches five nodes per cache line; the table itself stays small (the buffers queued
//! somewhere on this shard right now) and hot. Free nodes and free table entries are kept on stacks of
//! indices, so taking one never reads cold memory. No allocation once both arenas are warm.

use bytes::Bytes;

/// End of a node list.
pub(super) const NIL: u32 = u32::MAX;

/// One queued buffer of one connection: the bytes of `frame` from `offset` on (advanced in place after
/// a partial send).
#[derive(Debug, Clone, Copy)]
struct Node {
    frame: u32,
    offset: u32,
    next: u32,
}

const _: () = assert!(size_of::<Node>() == 12);

/// A buffer queued on one or more connections of this shard, and how many nodes point at it (plus one
/// while a [`super::SharedBytes`] handle holds it).
#[derive(Debug)]
struct Frame {
    bytes: Bytes,
    refs: u32,
}

/// A connection's queue: first and last node, or [`NIL`] for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct List {
    pub head: u32,
    pub tail: u32,
}

impl List {
    pub const EMPTY: List = List { head: NIL, tail: NIL };
}

/// The node arena and the buffer table of one shard. See the module docs for costs.
#[derive(Debug, Default)]
pub(super) struct Queues {
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    frames: Vec<Frame>,
    free_frames: Vec<u32>,
}

impl Queues {
    /// Enters `bytes` in the table with no reference yet: follow with [`Queues::hold`] or
    /// [`Queues::push`]. `None` (dropping `bytes`) above 4 GiB, which no frame reaches.
    pub fn add(&mut self, bytes: Bytes) -> Option<u32> {
        u32::try_from(bytes.len()).ok()?;
        let frame = Frame { bytes, refs: 0 };
        Some(match self.free_frames.pop() {
            Some(index) => {
                if let Some(entry) = self.frames.get_mut(index as usize) {
                    *entry = frame;
                }
                index
            }
            None => {
                self.frames.push(frame);
                (self.frames.len() - 1) as u32
            }
        })
    }

    /// One more reference to `frame` (non-atomic).
    pub fn hold(&mut self, frame: u32) {
        if let Some(entry) = self.frames.get_mut(frame as usize) {
            entry.refs += 1;
        }
    }

    /// One reference fewer; the last drops the bytes and frees the entry.
    pub fn release(&mut self, frame: u32) {
        let Some(entry) = self.frames.get_mut(frame as usize) else { return };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs == 0 {
            entry.bytes = Bytes::new();
            self.free_frames.push(frame);
        }
    }

    /// Length of a frame's bytes.
    pub fn len(&self, frame: u32) -> usize {
        self.frames.get(frame as usize).map_or(0, |entry| entry.bytes.len())
    }

    /// Appends `frame` (whole) to `list`, holding a reference to it.
    pub fn push(&mut self, list: &mut List, frame: u32) {
        self.hold(frame);
        let node = Node { frame, offset: 0, next: NIL };
        let index = match self.free_nodes.pop() {
            Some(index) => {
                if let Some(slot) = self.nodes.get_mut(index as usize) {
                    *slot = node;
                }
                index
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        if let Some(last) = self.nodes.get_mut(list.tail as usize) {
            last.next = index;
        }
        if list.head == NIL {
            list.head = index;
        }
        list.tail = index;
    }

    /// The unsent bytes of a node.
    fn unsent(&self, node: &Node) -> &[u8] {
        self.frames.get(node.frame as usize).and_then(|f| f.bytes.get(node.offset as usize..)).unwrap_or(&[])
    }

    /// Length of the oldest queued buffer's unsent bytes.
    pub fn head_len(&self, list: List) -> Option<usize> {
        self.nodes.get(list.head as usize).map(|node| self.unsent(node).len())
    }

    /// The oldest queued buffer's unsent bytes, shared (one refcount; for a zero-copy send).
    pub fn head_bytes(&self, list: List) -> Option<Bytes> {
        let node = self.nodes.get(list.head as usize)?;
        let bytes = &self.frames.get(node.frame as usize)?.bytes;
        bytes.get(node.offset as usize..).map(|_| bytes.slice(node.offset as usize..))
    }

    /// Fills `out` with iovecs over `list` from the head, stopping at `out.len()` entries or before the
    /// first buffer of `stop_at_len` bytes or more. Returns (entries used, bytes covered). The iovecs
    /// point into `Bytes` held by the table and stay valid until [`Queues::consume`] releases them.
    pub fn fill_iovecs(&self, list: List, out: &mut [libc::iovec], stop_at_len: usize) -> (usize, usize) {
        let mut node = list.head;
        let (mut count, mut total) = (0, 0);
        for iov in out.iter_mut() {
            let Some(entry) = self.nodes.get(node as usize) else { break };
            let bytes = self.unsent(entry);
            if bytes.len() >= stop_at_len {
                break;
            }
            *iov = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
            count += 1;
            total += bytes.len();
            node = entry.next;
        }
        (count, total)
    }

    /// Removes up to `sent` bytes from the head of `list` (the kernel accepted them), releasing each
    /// fully sent buffer. Returns the bytes removed (less than `sent` only if the list ran out).
    pub fn consume(&mut self, list: &mut List, sent: usize) -> usize {
        let mut left = sent;
        while left > 0 {
            let head = list.head;
            let Some(&node) = self.nodes.get(head as usize) else { break };
            let len = self.unsent(&node).len();
            if left < len {
                if let Some(entry) = self.nodes.get_mut(head as usize) {
                    entry.offset += left as u32; // < len, and frames are under 4 GiB
                }
                left = 0;
                break;
            }
            left -= len;
            list.head = node.next;
            if list.head == NIL {
                list.tail = NIL;
            }
            self.free_nodes.push(head);
            self.release(node.frame);
        }
        sent - left
    }

    /// Drops every node of `list`; returns the bytes they held.
    pub fn clear(&mut self, list: &mut List) -> usize {
        self.consume(list, usize::MAX)
    }

    /// Nodes ever allocated (tests: a warm arena does not grow).
    #[cfg(test)]
    pub fn node_capacity(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_frame_lives_until_its_last_queue_lets_go() {
        let mut queues = Queues::default();
        let message = Bytes::from(vec![7u8; 10]);
        let frame = queues.add(message.clone()).unwrap();
        queues.hold(frame); // the broadcast's handle
        let (mut a, mut b) = (List::EMPTY, List::EMPTY);
        queues.push(&mut a, frame);
        queues.push(&mut b, frame);
        queues.release(frame); // the handle goes; two queues still hold it
        assert_eq!(queues.consume(&mut a, 10), 10);
        assert!(!message.is_unique(), "b still holds the frame");
        assert_eq!(queues.consume(&mut b, 4), 4);
        assert_eq!(queues.head_bytes(b).as_deref(), Some(&[7u8; 6][..]), "partial send: the rest");
        assert_eq!(queues.clear(&mut b), 6);
        assert!(message.is_unique(), "the last queue released the frame");
        assert_eq!((a, b), (List::EMPTY, List::EMPTY));
    }
}
