//! The attribute section: round trips through the codec and through real
//! segment files, statistics, type checks, and hostile bytes (typed errors,
//! never panics) via the fuzz target's body.

use omen_format::attr::{ColumnSchema, ColumnType, Value};
use omen_format::segment::attributes::fuzzing::decode_everything;
use omen_format::segment::attributes::{
    AttributeColumns, ColumnStats, decode_column, encode_section, parse_head,
};
use omen_format::segment::fuzzing::read_everything;
use omen_format::segment::layout::{PAGE_PAYLOAD, PAGE_SIZE};
use omen_format::segment::{OpenOptions, SectionKind, SegmentFile, SegmentHeader, SegmentWriter};
use omen_format::{ElementType, FormatError, Metric};
use proptest::prelude::*;

fn schema(name: &str, ty: ColumnType, nullable: bool) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        ty,
        nullable,
    }
}

fn value_strategy(ty: ColumnType, nullable: bool) -> BoxedStrategy<Value> {
    let v: BoxedStrategy<Value> = match ty {
        ColumnType::Int64 => prop_oneof![(-5i64..5), any::<i64>()]
            .prop_map(Value::Int64)
            .boxed(),
        ColumnType::Float64 => prop_oneof![
            (-3i32..3).prop_map(f64::from),
            any::<f64>().prop_filter("not NaN", |x| !x.is_nan())
        ]
        .prop_map(Value::Float64)
        .boxed(),
        ColumnType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        ColumnType::Text => prop_oneof!["[a-c]{0,2}", "\\PC{0,12}"]
            .prop_map(Value::Text)
            .boxed(),
        ColumnType::Timestamp => (-3i64..3)
            .prop_map(|x| Value::Timestamp(x * 1_000_000))
            .boxed(),
    };
    if nullable {
        prop_oneof![1 => Just(Value::Null), 3 => v].boxed()
    } else {
        v
    }
}

fn type_strategy() -> impl Strategy<Value = ColumnType> {
    (1u8..=5).prop_map(|c| ColumnType::from_code(c).unwrap())
}

/// A schema of 1..4 columns and `rows` rows of values for it.
fn table() -> impl Strategy<Value = (Vec<ColumnSchema>, Vec<Vec<Value>>)> {
    (
        prop::collection::vec((type_strategy(), any::<bool>()), 1..4),
        0usize..300,
    )
        .prop_flat_map(|(cols, rows)| {
            let schema: Vec<ColumnSchema> = cols
                .iter()
                .enumerate()
                .map(|(i, &(ty, nullable))| schema(&format!("c{i}"), ty, nullable))
                .collect();
            let row: Vec<BoxedStrategy<Value>> = cols
                .iter()
                .map(|&(ty, nullable)| value_strategy(ty, nullable))
                .collect();
            (Just(schema), prop::collection::vec(row, rows))
        })
}

fn build(schema: &[ColumnSchema], rows: &[Vec<Value>]) -> AttributeColumns {
    let mut cols = AttributeColumns::new(schema.to_vec()).unwrap();
    for r in rows {
        cols.push_row(r).unwrap();
    }
    cols
}

/// Encodes, parses and decodes; checks values and statistics.
fn codec_round_trip(schema: &[ColumnSchema], rows: &[Vec<Value>]) -> Vec<u8> {
    let cols = build(schema, rows);
    let stream = encode_section(&cols);
    assert_eq!(stream.len() % PAGE_PAYLOAD, 0);
    let head = parse_head(&stream, (stream.len() / PAGE_PAYLOAD) as u64).unwrap();
    assert_eq!(head.rows, rows.len() as u64);
    assert_eq!(head.schema(), schema);
    for (i, meta) in head.columns.iter().enumerate() {
        let start = meta.first_page as usize * PAGE_PAYLOAD;
        let stored = &stream[start..start + meta.stored_len as usize];
        let column = decode_column(meta, head.rows, stored).unwrap();
        for (r, row) in rows.iter().enumerate() {
            let want = match (&row[i], schema[i].ty) {
                (Value::Int64(x), ColumnType::Float64) => Value::Float64(*x as f64),
                (v, _) => v.clone(),
            };
            assert_eq!(column.value(r), want, "row {r} column {i}");
        }
        assert_eq!(meta.stats, ColumnStats::compute(&column));
    }
    assert!(decode_everything(&stream));
    stream
}

#[test]
fn statistics_of_a_known_column() {
    let s = [schema("k", ColumnType::Int64, true)];
    let rows: Vec<Vec<Value>> = (0..1000)
        .map(|i| {
            vec![if i % 10 == 0 {
                Value::Null
            } else {
                Value::Int64(i % 7)
            }]
        })
        .collect();
    let cols = build(&s, &rows);
    let stats = ColumnStats::compute(&cols.columns()[0]);
    assert_eq!(stats.null_count, 100);
    assert_eq!(stats.distinct_count, 7);
    assert_eq!(stats.min, Some(Value::Int64(0)));
    assert_eq!(stats.max, Some(Value::Int64(6)));
    let want_count = |v: i64| (0..1000).filter(|i| i % 10 != 0 && i % 7 == v).count() as u64;
    for (v, count) in &stats.most_common {
        let Value::Int64(v) = v else { panic!() };
        assert_eq!(*count, want_count(*v));
    }
    assert_eq!(stats.most_common.len(), 7);
    let h = stats.histogram.unwrap();
    assert_eq!(h.counts.iter().sum::<u64>(), 900);
    assert_eq!(h.bounds.len(), h.counts.len() + 1);
    codec_round_trip(&s, &rows);
}

#[test]
fn type_errors_name_the_row_and_column() {
    let s = vec![
        schema("price", ColumnType::Float64, false),
        schema("tag", ColumnType::Text, true),
    ];
    let mut cols = AttributeColumns::new(s.clone()).unwrap();
    cols.push_row(&[Value::Int64(3), Value::Null]).unwrap();
    let err = cols
        .push_row(&[Value::Text("x".into()), Value::Null])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("row 1") && err.contains("\"price\"") && err.contains("text"),
        "{err}"
    );
    let err = cols
        .push_row(&[Value::Null, Value::Null])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"price\"") && err.contains("NOT NULL"),
        "{err}"
    );
    let err = cols
        .push_row(&[Value::Float64(1.0)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 attribute values") && err.contains("2 columns"),
        "{err}"
    );
    let err = cols
        .push_row(&[Value::Float64(f64::NAN), Value::Null])
        .unwrap_err()
        .to_string();
    assert!(err.contains("NaN"), "{err}");
    assert_eq!(cols.len(), 1, "failed rows are not appended");
    let dup = AttributeColumns::new(vec![s[0].clone(), s[0].clone()]).unwrap_err();
    assert!(dup.to_string().contains("twice"), "{dup}");
}

#[test]
fn segments_with_and_without_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2000u64;
    let s = vec![
        schema("cluster", ColumnType::Int64, false),
        schema("tag", ColumnType::Text, true),
        schema("at", ColumnType::Timestamp, false),
        schema("ok", ColumnType::Bool, false),
        schema("score", ColumnType::Float64, true),
    ];
    let rows: Vec<Vec<Value>> = (0..n as i64)
        .map(|i| {
            vec![
                Value::Int64(i % 13),
                if i % 5 == 0 {
                    Value::Null
                } else {
                    Value::Text(format!("t{}", i % 31))
                },
                Value::Timestamp(i * 1000),
                Value::Bool(i % 3 == 0),
                if i % 7 == 0 {
                    Value::Null
                } else {
                    Value::Float64(i as f64 / 3.0)
                },
            ]
        })
        .collect();
    let cols = build(&s, &rows);
    let write = |path: &std::path::Path, attrs: Option<&AttributeColumns>| {
        let mut h = SegmentHeader::new(ElementType::U8, Metric::L2, 4, n);
        h.uuid = [1; 16];
        let mut w = SegmentWriter::create(path, h).unwrap();
        w.write_vectors((0..n).map(|_| &[1u8, 2, 3, 4][..]))
            .unwrap();
        if let Some(a) = attrs {
            w.write_attributes(a).unwrap();
        }
        w.finish().unwrap();
    };
    let with = dir.path().join("with.omen");
    write(&with, Some(&cols));
    let file = SegmentFile::open(&with, OpenOptions::default()).unwrap();
    let section = file.section(SectionKind::ATTRIBUTES).unwrap();
    assert!(section.is_paged());
    let head = file.attributes().unwrap().unwrap();
    assert_eq!(head.schema(), s);
    for (i, c) in cols.columns().iter().enumerate() {
        assert_eq!(&file.read_attribute_column(&head, i).unwrap(), c);
    }
    let without = dir.path().join("without.omen");
    write(&without, None);
    let file = SegmentFile::open(&without, OpenOptions::default()).unwrap();
    assert!(file.attributes().unwrap().is_none());

    // The row count must match the segment's.
    let mut h = SegmentHeader::new(ElementType::U8, Metric::L2, 4, n + 1);
    h.uuid = [1; 16];
    let mut w = SegmentWriter::create(dir.path().join("bad.omen"), h).unwrap();
    let err = w.write_attributes(&cols).unwrap_err().to_string();
    assert!(
        err.contains("2000 attribute rows") && err.contains("2001"),
        "{err}"
    );

    // Damage inside a column block is caught by its page checksum, named.
    let mut bytes = std::fs::read(&with).unwrap();
    let section = *SegmentFile::open(&with, OpenOptions::default())
        .unwrap()
        .section(SectionKind::ATTRIBUTES)
        .unwrap();
    let at = (section.offset + head.columns[1].first_page * PAGE_SIZE as u64 + 10) as usize;
    bytes[at] ^= 0x40;
    let bad = dir.path().join("damaged.omen");
    std::fs::write(&bad, &bytes).unwrap();
    let file = SegmentFile::open(&bad, OpenOptions::default()).unwrap();
    let head = file.attributes().unwrap().unwrap();
    assert!(file.read_attribute_column(&head, 0).is_ok());
    let err = file.read_attribute_column(&head, 1).unwrap_err();
    assert!(matches!(err, FormatError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("attributes"), "{err}");
}

/// A whole segment file with an attribute section.
fn sample_segment() -> &'static [u8] {
    static FILE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.omen");
        let n = 300u64;
        let s = vec![
            schema("a", ColumnType::Int64, true),
            schema("t", ColumnType::Text, false),
        ];
        let rows: Vec<Vec<Value>> = (0..n as i64)
            .map(|i| {
                vec![
                    if i % 3 == 0 {
                        Value::Null
                    } else {
                        Value::Int64(i)
                    },
                    Value::Text(format!("{}", i % 5)),
                ]
            })
            .collect();
        let mut h = SegmentHeader::new(ElementType::U8, Metric::L2, 4, n);
        h.uuid = [1; 16];
        let mut w = SegmentWriter::create(&path, h).unwrap();
        w.write_vectors((0..n).map(|_| &[1u8, 2, 3, 4][..]))
            .unwrap();
        w.write_attributes(&build(&s, &rows)).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(read_everything(&bytes));
        bytes
    })
}

fn sample_stream() -> &'static [u8] {
    static STREAM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    STREAM.get_or_init(|| {
        let s = vec![
            schema("a", ColumnType::Int64, true),
            schema("b", ColumnType::Text, false),
            schema("c", ColumnType::Bool, true),
        ];
        let rows: Vec<Vec<Value>> = (0..500i64)
            .map(|i| {
                vec![
                    if i % 4 == 0 {
                        Value::Null
                    } else {
                        Value::Int64(i)
                    },
                    Value::Text(format!("k{}", i % 9)),
                    if i % 6 == 0 {
                        Value::Null
                    } else {
                        Value::Bool(i % 2 == 0)
                    },
                ]
            })
            .collect();
        let stream = codec_round_trip(&s, &rows);
        // `OMEN_WRITE_FUZZ_SEEDS=1 cargo test` refreshes the fuzz corpus seed.
        if std::env::var_os("OMEN_WRITE_FUZZ_SEEDS").is_some() {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/attributes");
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(format!("{dir}/sample"), &stream).unwrap();
        }
        stream
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every bit flip in a segment with attributes is detected by the
    /// container's reader (which now reads the attribute section too).
    #[test]
    fn bit_flips_in_a_segment_with_attributes_are_detected(seed in any::<u64>()) {
        let file = sample_segment();
        let bit = (seed % (file.len() as u64 * 8)) as usize;
        let mut flipped = file.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!read_everything(&flipped), "flip of bit {bit} went unnoticed");
    }

    #[test]
    fn round_trip_any_table((schema, rows) in table()) {
        codec_round_trip(&schema, &rows);
    }

    /// Byte edits in the payload stream (no checksums in the way): typed
    /// rejection or a valid decode, never a panic.
    #[test]
    fn damaged_streams_never_panic(edits in prop::collection::vec((any::<u64>(), any::<u8>()), 1..6)) {
        let mut s = sample_stream().to_vec();
        for (at, v) in &edits {
            let i = (*at % s.len() as u64) as usize;
            s[i] = *v;
        }
        let _ = decode_everything(&s);
    }

    /// Truncations and arbitrary bytes behind a valid magic never panic.
    #[test]
    fn truncated_and_arbitrary_streams_never_panic(cut in 0usize..8192, junk in prop::collection::vec(any::<u8>(), 0..600)) {
        let s = sample_stream();
        let _ = decode_everything(&s[..cut.min(s.len())]);
        let mut j = b"OMENATTR\x01\0\0\0".to_vec();
        j.extend_from_slice(&junk);
        let _ = decode_everything(&j);
    }
}
