//! The `roomcast-loadgen` binary. Filled in by the load generator issue.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("roomcast-loadgen: not built yet (see the load generator issue)")
}
