//! The end-of-run outputs: SVG plot, JSON line, interval log, table, progress line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap (COMMON.md); helpers too

mod common;

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use roomcast_loadgen::latency::{Recorder, RunMicros};
use roomcast_loadgen::report::summary::{JSON_KEYS, SCHEMA};
use roomcast_loadgen::report::{
    load_series, read_hlog, render_svg, render_table, HlogWriter, PlotOptions, RunSummary, Series,
};

use common::{check_xml, histogram, summary};

fn two_series() -> Vec<Series> {
    vec![
        Series::from_run(summary("roomcast", &histogram(800, 12_000, 100_000), 6)),
        Series::from_run(summary("node <v20> & co", &histogram(9_000, 480_000, 100_000), 29)),
    ]
}

#[test]
fn the_svg_is_well_formed_with_one_path_per_series_and_labelled_axes() {
    let svg = render_svg(&two_series(), &PlotOptions::default());
    let elements = check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert_eq!(elements.first().map(String::as_str), Some("svg"));
    assert_eq!(svg.matches("<path class=\"series\"").count(), 2);
    assert_eq!(elements.iter().filter(|e| *e == "path").count(), 2);
    for text in
        ["Latency (ms)", "Percentile", "0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "roomcast: p50"]
    {
        assert!(svg.contains(&format!(">{text}")), "missing {text:?}");
    }
    assert!(svg.contains("node &lt;v20&gt; &amp; co"), "labels are escaped");
    // The worse series' line reaches higher (smaller y) than the better one's.
    let top_of = |label: &str| -> f64 {
        let start = svg.find(&format!("data-label=\"{label}\" d=\"")).unwrap();
        let d = &svg[start..];
        let d = &d[d.find("d=\"").unwrap() + 3..];
        let d = &d[..d.find('"').unwrap()];
        d.split(' ')
            .map(|p| p.trim_start_matches(['M', 'L']))
            .map(|p| p.split(',').nth(1).unwrap().parse::<f64>().unwrap())
            .fold(f64::MAX, f64::min)
    };
    assert!(top_of("node &lt;v20&gt; &amp; co") < top_of("roomcast"));
}

#[test]
fn the_log_scale_plot_and_empty_series_are_still_well_formed() {
    let mut series = two_series();
    series.push(Series { label: "empty".into(), latency: Default::default(), run: None });
    let svg = render_svg(&series, &PlotOptions { title: "Roomcast vs Node".into(), log_y: true });
    check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert_eq!(svg.matches("<path class=\"series\"").count(), 2, "no line for a series without samples");
    assert!(
        svg.contains("empty (no samples)") && svg.contains("log scale") && svg.contains(">Roomcast vs Node<")
    );
    check_xml(&render_svg(&[], &PlotOptions::default())).unwrap();
}

#[test]
fn the_json_line_parses_and_has_the_documented_keys_in_order() {
    let run = summary("roomcast", &histogram(800, 12_000, 100_000), 6);
    let line = run.to_json_line().unwrap();
    assert!(!line.contains('\n'));
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, JSON_KEYS);
    assert_eq!(value["schema"], SCHEMA);
    assert_eq!(value["connections"], 10_000);
    assert_eq!(value["deliveries_per_s"], 99_999.7);
    assert!(
        value["latency_p99_ms"].as_f64().unwrap() >= 0.8 && value["latency_max_ms"].as_f64().unwrap() >= 11.9
    );
    assert_eq!(value["cpu_percent_one_core"], 20.0);
    assert_eq!(value["cpu_saturated"], false);
    assert_eq!(RunSummary::from_json_line(line.as_bytes()).unwrap(), run);
    let mut wrong = value.clone();
    wrong["schema"] = "roomcast-loadgen/0".into();
    assert!(RunSummary::from_json_line(wrong.to_string().as_bytes()).is_err());
}

#[test]
fn docs_describe_every_json_key() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/LOADGEN.md")).unwrap();
    for key in JSON_KEYS {
        assert!(doc.contains(&format!("`{key}`")), "docs/LOADGEN.md does not describe `{key}`");
    }
}

#[test]
fn the_hlog_file_reads_back_with_the_hdrhistogram_interval_log_reader() {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_718_000_000);
    let mut writer = HlogWriter::begin(Vec::new(), start, "roomcast-loadgen test\nsecond line").unwrap();
    let mut recorder = Recorder::new(RunMicros::ZERO);
    for second in 1..=3u64 {
        for i in 0..second * 100 {
            recorder.record_micros(1_000 * second + i);
        }
        let snapshot = recorder.rotate(RunMicros::from_millis(second * 1_000));
        writer.append(&snapshot, Some("room cast")).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("#roomcast-loadgen test\n#second line\n#[StartTime: 1718000000.000"), "{text}");
    assert!(text.contains(
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
    ));

    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        match entry.unwrap() {
            LogEntry::StartTime(t) | LogEntry::BaseTime(t) => assert_eq!(t.as_secs(), 1_718_000_000),
            LogEntry::Interval(i) => {
                let h: hdrhistogram::Histogram<u64> = Deserializer::new()
                    .deserialize(&mut base64_decode(i.encoded_histogram()).as_slice())
                    .unwrap();
                intervals.push((
                    i.tag().unwrap().as_str().to_string(),
                    i.start_timestamp(),
                    i.duration(),
                    h.len(),
                    i.max(),
                ));
            }
        }
    }
    assert_eq!(intervals.len(), 3);
    assert_eq!(intervals[1].0, "room_cast");
    assert_eq!((intervals[1].1, intervals[1].2), (Duration::from_secs(1), Duration::from_secs(1)));
    assert_eq!(intervals.iter().map(|i| i.3).collect::<Vec<_>>(), [100, 200, 300]);
    assert!((intervals[2].4 - 3_299.0).abs() < 4.0, "Interval_Max is in µs: {}", intervals[2].4);

    let series = read_hlog(&bytes).unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!((series[0].intervals, series[0].histogram.count(), series[0].span_secs), (3, 600, 3.0));
    assert_eq!(series[0].histogram.as_hdr(), recorder.overall().as_hdr());
}

#[test]
fn report_inputs_load_from_json_lines_and_hlogs() {
    let runs = two_series();
    let lines: String = runs.iter().map(|s| s.run.as_ref().unwrap().to_json_line().unwrap() + "\n").collect();
    let loaded = load_series("runs", lines.as_bytes()).unwrap();
    assert_eq!(loaded, runs);

    let mut writer = HlogWriter::begin(Vec::new(), SystemTime::now(), "x").unwrap();
    let mut r = Recorder::new(RunMicros::ZERO);
    r.record_micros(42);
    writer.append(&r.rotate(RunMicros::from_millis(1_000)), None).unwrap();
    let loaded = load_series("worker-1", &writer.finish().unwrap()).unwrap();
    assert_eq!((loaded.len(), loaded[0].label.as_str(), loaded[0].run.is_none()), (1, "worker-1", true));

    assert!(load_series("empty", b"#only a comment\n").is_err());
    assert!(load_series("bad", b"{\"schema\":").is_err());
}

#[test]
fn the_table_has_one_row_per_series_and_warns_about_a_saturated_load_generator() {
    let mut series = two_series();
    series.push(Series { label: "from-hlog".into(), latency: histogram(500, 900, 1_000), run: None });
    let table = render_table(&series);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("label") && lines[0].contains("p99.9_ms") && lines[0].ends_with("violations")
    );
    assert!(lines[1].starts_with("roomcast ") && lines[1].contains(" 2999990 ") && lines[1].ends_with(" 0"));
    assert!(lines[2].contains(" 97! "), "29 s busy of 30 s on one usable core: {}", lines[2]);
    assert!(lines[3].starts_with("from-hlog") && lines[3].contains(" - "));
    assert!(lines[4]
        .starts_with("warning: node <v20> & co: load generator saturated: busy 0.97 of 1 usable core"));
    assert_eq!(lines.len(), 5);
}

fn base64_decode(text: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | A.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
