//! Shared helpers for Roomcast's benchmarks (baselines measured in the same run).
