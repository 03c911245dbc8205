//! Roomcast's I/O shell: the only crate that owns file descriptors. Filled in by the server issue.
