//! The `roomcast` binary.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("roomcast: the server is not built yet (see the server issue)")
}
