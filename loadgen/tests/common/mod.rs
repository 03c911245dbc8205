//! Helpers shared by the output tests.
#![allow(dead_code)]

use std::time::Duration;

use roomcast_loadgen::cpu::{CpuTimes, CpuUsage};
use roomcast_loadgen::latency::LatencyHistogram;
use roomcast_loadgen::report::{RunFacts, RunSummary};

/// A histogram whose body sits near `base_us` with a tail up to `tail_us`.
pub fn histogram(base_us: u64, tail_us: u64, n: u64) -> LatencyHistogram {
    let mut h = LatencyHistogram::new();
    for i in 0..n {
        let v = if i % 1_000 == 999 { tail_us - (i % 7) } else { base_us + i % 97 };
        h.record(v);
    }
    h
}

/// A plausible fan-out run summary.
pub fn summary(label: &str, latency: &LatencyHistogram, cpu_busy_secs: u64) -> RunSummary {
    let facts = RunFacts {
        label: label.to_string(),
        scenario: "fanout".to_string(),
        url: "http://127.0.0.1:3000".to_string(),
        connections: 10_000,
        rooms: 100,
        duration: Duration::from_secs(30),
        messages_sent: 30_000,
        deliveries_expected: 3_000_000,
        deliveries_received: 2_999_990,
        violations: 0,
    };
    let used = CpuTimes { user: Duration::from_secs(cpu_busy_secs), system: Duration::ZERO };
    let cpu = CpuUsage::new(Duration::from_secs(30), used, 1, 2);
    RunSummary::new(facts, latency, &cpu)
}

/// Checks that `text` is well-formed XML as far as an SVG viewer cares: one root element, every
/// tag closed in order, attributes quoted, entities known, no stray `<` or `&`. Returns the
/// element names in document order.
pub fn check_xml(text: &str) -> Result<Vec<String>, String> {
    let mut rest = text.strip_prefix("<?xml").ok_or("no XML declaration")?;
    rest = &rest[rest.find("?>").ok_or("unterminated declaration")? + 2..];
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut roots = 0;
    loop {
        let Some(lt) = rest.find('<') else {
            check_text(rest)?;
            break;
        };
        check_text(&rest[..lt])?;
        if stack.is_empty() && !rest[..lt].trim().is_empty() {
            return Err("text outside the root element".into());
        }
        rest = &rest[lt + 1..];
        let gt = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or_else(|| format!("</{name}> without an open tag"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') {
            return Err(format!("bad element name in <{tag}>"));
        }
        check_attributes(&body[name.len()..])?;
        if stack.is_empty() {
            roots += 1;
        }
        names.push(name.clone());
        if !self_closing {
            stack.push(name);
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(names)
}

fn check_attributes(mut attrs: &str) -> Result<(), String> {
    loop {
        attrs = attrs.trim_start();
        if attrs.is_empty() {
            return Ok(());
        }
        let eq = attrs.find('=').ok_or_else(|| format!("attribute without value: {attrs}"))?;
        let name = &attrs[..eq];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') {
            return Err(format!("bad attribute name {name:?}"));
        }
        let after = attrs[eq + 1..].strip_prefix('"').ok_or_else(|| format!("unquoted attribute {name}"))?;
        let close = after.find('"').ok_or_else(|| format!("unterminated attribute {name}"))?;
        check_text(&after[..close])?;
        attrs = &after[close + 1..];
    }
}

fn check_text(text: &str) -> Result<(), String> {
    if text.contains('<') {
        return Err(format!("stray < in {text:?}"));
    }
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        rest = &rest[amp + 1..];
        let semi = rest.find(';').ok_or("unterminated entity")?;
        if !["amp", "lt", "gt", "quot", "apos"].contains(&&rest[..semi]) {
            return Err(format!("unknown entity &{};", &rest[..semi]));
        }
    }
    Ok(())
}
