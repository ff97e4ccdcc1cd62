//! Attribute side files (CSV, JSON lines): inference, declared types,
//! errors that name the line and column, and hostile bytes (never a panic).

use std::path::Path;

use omen_format::attr::{ColumnType, Value};
use omen_format::dataset::fuzzing::parse_side_files;
use omen_format::dataset::side_file::{SideFormat, parse_side_file, parse_timestamp};
use proptest::prelude::*;

fn parse(
    text: &str,
    format: SideFormat,
    declared: &[(&str, ColumnType)],
) -> Result<Vec<Vec<Value>>, String> {
    let declared: Vec<(String, ColumnType)> =
        declared.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    let cols = parse_side_file(Path::new("side.x"), text.as_bytes(), format, &declared)
        .map_err(|e| e.to_string())?;
    let decoded = cols.columns();
    Ok((0..cols.len())
        .map(|r| decoded.iter().map(|c| c.value(r)).collect())
        .collect())
}

#[test]
fn csv_types_are_inferred_and_quotes_handled() {
    let text = "id,price,ok,tag,at\r\n1,2.5,true,\"a, \"\"b\"\"\",2024-05-01\n2,,false,x,2024-05-01T00:00:01.5Z\n\n3,4,T,,0\n";
    let cols = parse_side_file(Path::new("s.csv"), text.as_bytes(), SideFormat::Csv, &[]).unwrap();
    let types: Vec<(ColumnType, bool)> = cols.schema().iter().map(|c| (c.ty, c.nullable)).collect();
    assert_eq!(
        types,
        [
            (ColumnType::Int64, false),
            (ColumnType::Float64, true),
            (ColumnType::Bool, false),
            (ColumnType::Text, true),
            (ColumnType::Timestamp, false)
        ]
    );
    let rows = parse(text, SideFormat::Csv, &[]).unwrap();
    assert_eq!(rows[0][3], Value::Text("a, \"b\"".into()));
    assert_eq!(rows[1][1], Value::Null);
    let day = 19844i64 * 86_400_000_000;
    assert_eq!(rows[0][4], Value::Timestamp(day));
    assert_eq!(rows[1][4], Value::Timestamp(day + 1_500_000));
    assert_eq!(rows[2][1], Value::Float64(4.0));
}

#[test]
fn declared_types_and_errors_name_line_and_column() {
    let text = "a,b\n1,x\n2,y\nthree,z\n";
    let rows = parse(text, SideFormat::Csv, &[("a", ColumnType::Text)]).unwrap();
    assert_eq!(rows[2][0], Value::Text("three".into()));
    let err = parse(text, SideFormat::Csv, &[("a", ColumnType::Int64)]).unwrap_err();
    assert!(
        err.contains("line 4") && err.contains("\"a\"") && err.contains("three"),
        "{err}"
    );
    let err = parse("a,b\n1,2\n3\n", SideFormat::Csv, &[]).unwrap_err();
    assert!(err.contains("line 3") && err.contains("1 fields"), "{err}");
    let err = parse("a\n1\n", SideFormat::Csv, &[("zz", ColumnType::Int64)]).unwrap_err();
    assert!(err.contains("\"zz\""), "{err}");
    let err = parse("a,a\n1,2\n", SideFormat::Csv, &[]).unwrap_err();
    assert!(err.contains("twice"), "{err}");
}

#[test]
fn json_lines() {
    let text = "{\"k\": 1, \"t\": \"x\"}\n{\"k\": 2.5}\n\n{\"t\": \"y\", \"b\": true}\n";
    let rows = parse(text, SideFormat::JsonLines, &[]).unwrap();
    assert_eq!(
        rows[0],
        vec![Value::Float64(1.0), Value::Text("x".into()), Value::Null]
    );
    assert_eq!(
        rows[2],
        vec![Value::Null, Value::Text("y".into()), Value::Bool(true)]
    );
    let err = parse("{\"k\": 1}\n[1]\n", SideFormat::JsonLines, &[]).unwrap_err();
    assert!(err.contains("line 2") && err.contains("object"), "{err}");
    let err = parse(
        "{\"k\": 1}\n{\"k\": \"a\"}\n",
        SideFormat::JsonLines,
        &[("k", ColumnType::Int64)],
    )
    .unwrap_err();
    assert!(err.contains("line 2") && err.contains("\"k\""), "{err}");
}

#[test]
fn timestamps() {
    assert_eq!(parse_timestamp("1970-01-01"), Some(0));
    assert_eq!(parse_timestamp("1969-12-31T23:59:59Z"), Some(-1_000_000));
    assert_eq!(
        parse_timestamp("2000-02-29 12:00:00.000001"),
        Some(951_825_600_000_001)
    );
    assert_eq!(parse_timestamp("2000-13-01"), None);
    assert_eq!(parse_timestamp("20-01-01"), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_side_files(&bytes);
    }

    #[test]
    fn csv_like_text_never_panics(text in "[a-c0-9,\"\n\r .{}:-]{0,200}") {
        let _ = parse_side_files(text.as_bytes());
    }

    #[test]
    fn integer_columns_round_trip(values in prop::collection::vec(prop::option::of(any::<i64>()), 1..50)) {
        let mut text = String::from("v\n");
        let mut json = String::new();
        for v in &values {
            text.push_str(&v.map_or(String::new(), |x| x.to_string()));
            text.push('\n');
            json.push_str(&match v { Some(x) => format!("{{\"v\":{x}}}\n"), None => "{\"v\":null}\n".into() });
        }
        let want: Vec<Vec<Value>> = values.iter().map(|v| vec![v.map_or(Value::Null, Value::Int64)]).collect();
        if values.iter().any(Option::is_some) {
            prop_assert_eq!(parse(&text, SideFormat::Csv, &[]).unwrap(), want.clone());
        }
        prop_assert_eq!(parse(&json, SideFormat::JsonLines, &[("v", ColumnType::Int64)]).unwrap(), want);
    }
}
