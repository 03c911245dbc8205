use super::*;

fn ok(text: &str) -> JsonKind {
    match validate(text.as_bytes(), 32) {
        Ok(v) => v.kind,
        Err(e) => panic!("{text:?} rejected: {e:?}"),
    }
}

fn syntax_error(text: &[u8]) -> bool {
    matches!(validate(text, 32), Err(JsonError::Syntax { .. }))
}

#[test]
fn accepts_every_value_kind_and_reports_the_top_level_one() {
    assert_eq!(ok(r#"{"b":1,"a":[true,false,null]}"#), JsonKind::Object);
    assert_eq!(ok("[]"), JsonKind::Array);
    assert_eq!(ok(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#), JsonKind::String);
    assert_eq!(ok("-0"), JsonKind::Number);
    assert_eq!(ok("1.0e3"), JsonKind::Number);
    assert_eq!(ok("1E+2"), JsonKind::Number);
    assert_eq!(ok("-0.5e-7"), JsonKind::Number);
    assert_eq!(ok("true"), JsonKind::Bool);
    assert_eq!(ok("null"), JsonKind::Null);
    assert_eq!(ok(" \t\r\n[ 1 , { \"k\" : \"v\" } ]\n"), JsonKind::Array);
    assert_eq!(ok("\"\u{e9}\u{1F600}\""), JsonKind::String);
    // Lone surrogate escapes are grammatical (JSON.parse accepts them too).
    assert_eq!(ok(r#""\udc00""#), JsonKind::String);
}

#[test]
fn value_range_excludes_surrounding_whitespace() {
    let v = validate(b"  [1]\n", 8).unwrap();
    assert_eq!(v.value, 2..5);
}

#[test]
fn rejects_what_json_parse_rejects() {
    for bad in [
        &b""[..],
        b" ",
        b"[1,]",
        b"[,1]",
        b"{\"a\":1,}",
        b"{\"a\" 1}",
        b"{a:1}",
        b"{\"a\":}",
        b"[1 2]",
        b"[\"unterminated]",
        b"[01]",
        b"[1.]",
        b"[.5]",
        b"[-]",
        b"[1e]",
        b"[1e+]",
        b"[+1]",
        b"[tru]",
        b"[nul]",
        b"[True]",
        b"[NaN]",
        b"[\"\\x\"]",
        b"[\"\\u12\"]",
        b"[\"\\u12g4\"]",
        b"[\"tab\there\"]",
        b"[\"nl\nhere\"]",
        b"[\"\xff\"]",
        b"[\"\xc3\"]",
        b"'x'",
        b"[1]]",
        b"[1] x",
        b"[1][2]",
        b"{}{}",
        b"[",
        b"{",
        b"]",
    ] {
        assert!(syntax_error(bad), "{:?} accepted", String::from_utf8_lossy(bad));
    }
}

#[test]
fn nesting_is_bounded_without_recursion() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(validate(nested(32).as_bytes(), 32).is_ok());
    assert_eq!(validate(nested(33).as_bytes(), 32), Err(JsonError::TooDeep { max: 32 }));
    // A million open brackets: an error, not a stack overflow; and the ceiling caps any configuration.
    let huge = "[".repeat(1_000_000);
    assert_eq!(validate(huge.as_bytes(), usize::MAX), Err(JsonError::TooDeep { max: MAX_DEPTH_CEILING }));
    let objects = "{\"a\":".repeat(40) + "1" + &"}".repeat(40);
    assert_eq!(validate(objects.as_bytes(), 32), Err(JsonError::TooDeep { max: 32 }));
    assert!(validate(objects.as_bytes(), 40).is_ok());
}

#[test]
fn array_elements_are_byte_exact_slices() {
    let text = br#"[ "a" ,{"b":1,"a":2}, 1.0e3,-0,[[]] ,"\u00e9"]"#;
    let elements: Vec<&[u8]> = array_elements(text).collect();
    let expected: [&[u8]; 6] = [br#""a""#, br#"{"b":1,"a":2}"#, b"1.0e3", b"-0", b"[[]]", br#""\u00e9""#];
    assert_eq!(elements, expected);
    assert_eq!(array_elements(b"[]").count(), 0);
    assert_eq!(array_elements(b"{}").count(), 0);
}

#[test]
fn unescape_resolves_escapes_and_borrows_plain_strings() {
    assert!(matches!(unescape_string(br#""plain""#), Some(Cow::Borrowed("plain"))));
    assert_eq!(unescape_string(br#""conn\u0065ct""#).as_deref(), Some("connect"));
    assert_eq!(unescape_string(br#""a\"b\\c\/d\n\t""#).as_deref(), Some("a\"b\\c/d\n\t"));
    assert_eq!(unescape_string(br#""\ud83d\ude00x""#).as_deref(), Some("\u{1F600}x"));
    assert_eq!(unescape_string(br#""\ud83dx""#).as_deref(), Some("\u{FFFD}x"));
    assert_eq!(unescape_string(br#""\ude00""#).as_deref(), Some("\u{FFFD}"));
    assert_eq!(unescape_string("\"é\\u00e9\"".as_bytes()).as_deref(), Some("éé"));
    assert_eq!(unescape_string(b"noquotes"), None);
}

fn found(text: &str) -> Vec<Placeholder> {
    let mut all = Vec::new();
    placeholders(text.as_bytes(), 32, |p| all.push(p)).unwrap();
    all
}

#[test]
fn placeholders_are_found_anywhere_with_their_num() {
    let text = r#"["ev",{"_placeholder":true,"num":0},{"deep":[{"_placeholder":true,"num":12}]}]"#;
    let all = found(text);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].num, Some(0));
    assert_eq!(&text[all[0].object.clone()], r#"{"_placeholder":true,"num":0}"#);
    assert_eq!(all[1].num, Some(12));
    assert_eq!(&text[all[1].num_text.clone().unwrap()], "12");
}

#[test]
fn placeholder_rules_follow_reconstruct_packet() {
    // Extra members and other key orders still make a placeholder; escaped keys count.
    assert_eq!(found(r#"{"num":3,"x":1,"_placeholder":true}"#)[0].num, Some(3));
    assert_eq!(found(r#"{"\u005fplaceholder":true,"num":1}"#)[0].num, Some(1));
    // `_placeholder` must be the literal true; the last duplicate wins.
    assert!(found(r#"{"_placeholder":1,"num":0}"#).is_empty());
    assert!(found(r#"{"_placeholder":"true","num":0}"#).is_empty());
    assert!(found(r#"{"_placeholder":true,"_placeholder":false,"num":0}"#).is_empty());
    assert_eq!(found(r#"{"_placeholder":true,"num":0,"num":2}"#)[0].num, Some(2));
    // A num that is not a plain integer literal is reported as unusable.
    for bad in [r#""0""#, "-1", "1.0", "1e0", "-0", "null", "[0]", "99999999999999999999999"] {
        let text = format!(r#"{{"_placeholder":true,"num":{bad}}}"#);
        assert_eq!(found(&text)[0].num, None, "{text}");
    }
    assert_eq!(found(r#"{"_placeholder":true}"#)[0].num, None);
    assert!(found(r#"[{"placeholder":true,"num":0}]"#).is_empty());
}

#[test]
fn placeholder_walk_validates_like_validate() {
    assert!(placeholders(b"[1,]", 32, |_| {}).is_err());
    assert!(placeholders("[".repeat(100).as_bytes(), 32, |_| {}).is_err());
}
