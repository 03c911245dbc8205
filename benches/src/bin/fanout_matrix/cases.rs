//! The matrix of issue 7: which load each scenario applies and to which servers.
//!
//! A [`Case`] is one server (and variant, such as an I/O backend) under one load; cases with the same
//! `table` share a results table, so variants (epoll, zero copy off) sit next to the main rows.

use crate::servers::Kind;

/// Sizes and durations of a run; `--quick` shrinks them for a smoke test.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Receivers of scenarios 1, 2 and 6 and connections of scenario 4.
    pub conns: u32,
    /// Receivers of scenario 3.
    pub small_conns: u32,
    /// Connection counts of scenario 5.
    pub idle_conns: Vec<u32>,
    /// Measured phase of every loaded scenario, seconds.
    pub duration_s: f64,
    /// Hold of scenario 5, seconds.
    pub idle_hold_s: f64,
    /// Messages in flight per publisher in the flat-out scenarios.
    pub window: u32,
    /// What frees a window slot in the flat-out scenarios: `delivered` (the message reached all its
    /// receivers; in flight is bounded end to end) or `ack` (the server took the publish).
    pub release: String,
    /// Messages per second per publisher in scenario 4 (10 publishers).
    pub verify_rate: f64,
    /// New connections per second during set-up.
    pub ramp_rate: u32,
    /// Processes the load generator spreads a loaded run over (`--conns-per-process`); 1 = one event
    /// loop, as in every table before this option.
    pub loadgen_procs: u32,
}

impl Sizes {
    /// `--conns-per-process` flags that spread `connections` over `loadgen_procs` processes (none
    /// for one process).
    fn spread(&self, connections: u32) -> Vec<String> {
        if self.loadgen_procs <= 1 {
            return Vec::new();
        }
        args(&["--conns-per-process", &connections.div_ceil(self.loadgen_procs).to_string()])
    }
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            conns: 10_000,
            small_conns: 1_000,
            idle_conns: vec![10_000, 19_000],
            duration_s: 8.0,
            idle_hold_s: 3.0,
            window: 16,
            release: "delivered".into(),
            verify_rate: 10.0,
            ramp_rate: 4_000,
            loadgen_procs: 1,
        }
    }

    pub fn quick() -> Sizes {
        Sizes {
            conns: 1_000,
            small_conns: 100,
            idle_conns: vec![1_000],
            duration_s: 2.0,
            idle_hold_s: 1.0,
            window: 16,
            release: "delivered".into(),
            verify_rate: 5.0,
            ramp_rate: 4_000,
            loadgen_procs: 1,
        }
    }
}

/// One server under one load.
#[derive(Debug, Clone)]
pub struct Case {
    /// File-safe id of the results table this case belongs to.
    pub table: String,
    /// Title of that table.
    pub title: String,
    pub kind: Kind,
    /// Variant shown next to the server's name ("" for the main row).
    pub variant: String,
    /// Extra server flags.
    pub server_args: Vec<String>,
    /// The load generator's subcommand and flags (without `--url`, `--label`, `--json`).
    pub loadgen: Vec<String>,
    /// Idle scenario: pass `--server-pid`, report memory.
    pub idle: bool,
    /// Longest the load generator may take, seconds (set-up, measured phase, drain, margin).
    pub timeout_s: f64,
}

impl Case {
    /// `roomcast`, or `roomcast (epoll)`.
    pub fn row_name(&self) -> String {
        if self.variant.is_empty() {
            self.kind.name().to_string()
        } else {
            format!("{} ({})", self.kind.name(), self.variant)
        }
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn thousands(n: u32) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Every case of the selected `scenarios` for the selected `servers`, in run order.
pub fn matrix(sizes: &Sizes, scenarios: &[u8], servers: &[Kind]) -> Vec<Case> {
    let mut cases = Vec::new();
    let on = |s: u8| scenarios.contains(&s);
    let d = format!("{}s", sizes.duration_s);
    let ramp = sizes.ramp_rate.to_string();
    let setup_s = |conns: u32| f64::from(conns) / f64::from(sizes.ramp_rate) + 40.0;
    let fanout = |conns: u32, payload: usize, load: &[String]| -> Vec<String> {
        let mut a = args(&["fanout", "--conns", &conns.to_string(), "--rooms", "1", "--publishers", "1"]);
        a.extend(load.iter().cloned());
        a.extend(args(&["--payload", &payload.to_string(), "--duration", &d, "--ramp-rate", &ramp]));
        // Flat-out runs leave seconds of backlog queued in the server; wait for it (the drain ends
        // early once every publish is acked and nothing arrived for 500 ms).
        a.extend(args(&["--drain", "10s"]));
        a.extend(sizes.spread(conns + 1));
        a
    };
    let window = args(&["--window", &sizes.window.to_string(), "--release", &sizes.release]);
    let flat_out = format!("window {}, freed on {}", sizes.window, sizes.release);
    let ten_per_s = args(&["--rate", "10"]);
    let mut push = |table: &str,
                    title: &str,
                    kind: Kind,
                    variant: &str,
                    server: &[&str],
                    loadgen: Vec<String>,
                    idle: bool,
                    timeout_s: f64| {
        if servers.contains(&kind) {
            cases.push(Case {
                table: table.to_string(),
                title: title.to_string(),
                kind,
                variant: variant.to_string(),
                server_args: args(server),
                loadgen,
                idle,
                timeout_s,
            });
        }
    };
    let c = sizes.conns;
    let loaded_timeout = setup_s(c) + sizes.duration_s + 40.0;
    if on(1) || on(7) {
        let t =
            format!("1: {} receivers in one room, one publisher flat out ({flat_out}), 100 B", thousands(c));
        for kind in Kind::ALL {
            let flags: &[&str] = if kind == Kind::Roomcast { &["--io", "uring"] } else { &[] };
            if on(1) {
                push("s1", &t, kind, "", flags, fanout(c, 100, &window), false, loaded_timeout);
            }
        }
        if on(1) {
            push(
                "s1",
                &t,
                Kind::Ceiling,
                "one send per frame",
                &["--send", "single"],
                fanout(c, 100, &window),
                false,
                loaded_timeout,
            );
        }
        if on(7) {
            push(
                "s1",
                &t,
                Kind::Roomcast,
                "epoll",
                &["--io", "epoll"],
                fanout(c, 100, &window),
                false,
                loaded_timeout,
            );
        }
    }
    if on(2) || on(7) {
        let t = format!("2: {} receivers in one room, 10 broadcasts/s, 100 B", thousands(c));
        for kind in Kind::ALL {
            let flags: &[&str] = if kind == Kind::Roomcast { &["--io", "uring"] } else { &[] };
            if on(2) {
                push("s2", &t, kind, "", flags, fanout(c, 100, &ten_per_s), false, loaded_timeout);
            }
        }
        if on(2) {
            push(
                "s2",
                &t,
                Kind::Ceiling,
                "one send per frame",
                &["--send", "single"],
                fanout(c, 100, &ten_per_s),
                false,
                loaded_timeout,
            );
        }
        if on(7) {
            push(
                "s2",
                &t,
                Kind::Roomcast,
                "epoll",
                &["--io", "epoll"],
                fanout(c, 100, &ten_per_s),
                false,
                loaded_timeout,
            );
        }
    }
    if on(3) {
        let sc = sizes.small_conns;
        let t =
            format!("3: {} receivers in one room, one publisher flat out ({flat_out}), 100 B", thousands(sc));
        for kind in Kind::ALL {
            push(
                "s3",
                &t,
                kind,
                "",
                &[],
                fanout(sc, 100, &window),
                false,
                setup_s(sc) + sizes.duration_s + 40.0,
            );
        }
        push(
            "s3",
            &t,
            Kind::Ceiling,
            "one send per frame",
            &["--send", "single"],
            fanout(sc, 100, &window),
            false,
            setup_s(sc) + sizes.duration_s + 40.0,
        );
    }
    if on(4) {
        // Issue 7's scenario 4: C connections each in 3 of 100 rooms, 10 of them publishing flat out to
        // 5 rooms except 1; the publishers are in rooms too, so leaving out the sender is checked.
        let t = format!(
            "4: {} connections each in 3 of 100 rooms, 10 publishers flat out ({flat_out}) to 5 rooms except 1, 100 B",
            thousands(c)
        );
        let receivers = c.saturating_sub(10).to_string();
        let mut load = args(&["fanout", "--conns", &receivers, "--rooms", "100", "--rooms-per-conn", "3"]);
        load.extend(args(&[
            "--publishers",
            "10",
            "--publishers-join",
            "--to-rooms",
            "5",
            "--except-rooms",
            "1",
        ]));
        load.extend(window.iter().cloned());
        load.extend(args(&["--payload", "100", "--duration", &d, "--ramp-rate", &ramp, "--drain", "10s"]));
        load.extend(sizes.spread(c.max(10)));
        for kind in [Kind::Roomcast, Kind::Node, Kind::Socketioxide] {
            push("s4", &t, kind, "", &[], load.clone(), false, loaded_timeout);
        }
        let t = format!(
            "4 at a fixed rate: {} connections each in 3 of 100 rooms, 10 publishers × {}/s to 1–3 rooms except 0–1 (verify)",
            thousands(c),
            sizes.verify_rate
        );
        let mut load =
            args(&["verify", "--conns", &c.to_string(), "--rooms", "100", "--rooms-per-conn", "3"]);
        load.extend(args(&[
            "--publishers",
            "10",
            "--rate",
            &sizes.verify_rate.to_string(),
            "--duration",
            &d,
            "--ramp-rate",
            &ramp,
        ]));
        for kind in [Kind::Roomcast, Kind::Node, Kind::Socketioxide] {
            push("s4-verify", &t, kind, "", &[], load.clone(), false, loaded_timeout);
        }
    }
    if on(5) {
        for &n in &sizes.idle_conns {
            let t = format!("5: {} idle connections, each in 2 rooms: server memory", thousands(n));
            let hold = format!("{}s", sizes.idle_hold_s);
            let load = args(&[
                "idle",
                "--conns",
                &n.to_string(),
                "--rooms",
                "2",
                "--rooms-per-conn",
                "2",
                "--duration",
                &hold,
                "--ramp-rate",
                &ramp,
            ]);
            for kind in [Kind::Roomcast, Kind::Node, Kind::Socketioxide] {
                push(
                    &format!("s5-{}", thousands(n)),
                    &t,
                    kind,
                    "",
                    &[],
                    load.clone(),
                    true,
                    setup_s(n) + sizes.idle_hold_s + 30.0,
                );
            }
        }
    }
    if on(6) {
        for payload in [1024usize, 16384] {
            let id = format!("s6-{}k", payload / 1024);
            let t = format!("6: scenario 1 with {} KiB payloads", payload / 1024);
            for kind in Kind::ALL {
                if kind == Kind::Roomcast && payload >= 16384 {
                    push(
                        &id,
                        &t,
                        kind,
                        "zero copy",
                        &["--zero-copy-threshold", "16384"],
                        fanout(c, payload, &window),
                        false,
                        loaded_timeout,
                    );
                    push(
                        &id,
                        &t,
                        kind,
                        "no zero copy",
                        &["--zero-copy-threshold", "0"],
                        fanout(c, payload, &window),
                        false,
                        loaded_timeout,
                    );
                } else {
                    push(&id, &t, kind, "", &[], fanout(c, payload, &window), false, loaded_timeout);
                }
            }
        }
    }
    cases
}
