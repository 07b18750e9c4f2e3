//! (3) Property tests: random columns, samples and options survive writer → reader, output is
//! deterministic, and the JSON / float text helpers round-trip.
#![allow(clippy::unwrap_used)]

mod common;

use audiotok_mds::json::py_float_repr;
use audiotok_mds::{f16, DType, Json, MdsDataset, MdsWriter, NdArray, Sample, Value, WriterOptions};
use common::{files, sample_form};
use proptest::prelude::*;

const ENCODINGS: [&str; 25] = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int",
    "float16",
    "float32",
    "float64",
    "str_int",
    "str_float",
    "str_decimal",
    "bytes",
    "str",
    "json",
    "ndarray",
    "ndarray:int16",
    "ndarray:float64",
    "ndarray:uint8:3",
    "ndarray:float32:2,2",
    "ndarray:int64:1,2,1",
    "ndarray:float16:5",
];

fn non_nan_f64() -> impl Strategy<Value = f64> {
    any::<u64>().prop_map(f64::from_bits).prop_filter("not NaN", |x| !x.is_nan())
}

fn json_strategy() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::Int),
        non_nan_f64().prop_map(Json::Float),
        "[0-9]{19,30}".prop_map(|d| Json::BigInt(format!("9{d}"))),
        any::<String>().prop_map(Json::Str),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((any::<String>(), inner), 0..4).prop_map(|members| {
                // Unique keys: a repeated key would be merged on reading, as Python does.
                let members = members.into_iter().enumerate().map(|(k, (key, v))| (format!("{k}{key}"), v)).collect();
                Json::Object(members)
            }),
        ]
    })
}

fn array(dtype: DType, shape: Vec<usize>) -> impl Strategy<Value = Value> {
    let n: usize = shape.iter().product::<usize>() * dtype.size();
    prop::collection::vec(any::<u8>(), n)
        .prop_map(move |data| Value::NdArray(NdArray::from_bytes(dtype, shape.clone(), data).unwrap()))
}

fn value_strategy(encoding: &'static str) -> BoxedStrategy<Value> {
    match encoding {
        "int8" => any::<i8>().prop_map(|v| Value::Int(v.into())).boxed(),
        "int16" => any::<i16>().prop_map(|v| Value::Int(v.into())).boxed(),
        "int32" => any::<i32>().prop_map(|v| Value::Int(v.into())).boxed(),
        "int64" | "int" => any::<i64>().prop_map(Value::Int).boxed(),
        "uint8" => any::<u8>().prop_map(|v| Value::UInt(v.into())).boxed(),
        "uint16" => any::<u16>().prop_map(|v| Value::UInt(v.into())).boxed(),
        "uint32" => any::<u32>().prop_map(|v| Value::UInt(v.into())).boxed(),
        "uint64" => any::<u64>().prop_map(Value::UInt).boxed(),
        "float16" => any::<u16>()
            .prop_map(|b| f16::from_bits(b).to_f64())
            .prop_filter("not NaN", |x| !x.is_nan())
            .prop_map(Value::Float)
            .boxed(),
        "float32" => any::<u32>()
            .prop_map(|b| f64::from(f32::from_bits(b)))
            .prop_filter("not NaN", |x| !x.is_nan())
            .prop_map(Value::Float)
            .boxed(),
        "float64" | "str_float" => non_nan_f64().prop_map(Value::Float).boxed(),
        "str_int" => prop_oneof![
            any::<i64>().prop_map(Value::Int),
            (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::UInt),
            ("-?", "[1-9][0-9]{20,40}").prop_map(|(s, d)| Value::BigInt(format!("{s}{d}"))),
        ]
        .boxed(),
        // Canonical str(Decimal) forms (plain notation, adjusted exponent >= -6).
        "str_decimal" => ("-?", "[1-9][0-9]{0,25}", "(\\.[0-9]{1,12})?")
            .prop_map(|(s, i, f)| Value::Decimal(format!("{s}{i}{f}")))
            .boxed(),
        "bytes" => prop::collection::vec(any::<u8>(), 0..64).prop_map(Value::Bytes).boxed(),
        "str" => any::<String>().prop_map(Value::Str).boxed(),
        "json" => json_strategy().prop_map(Value::Json).boxed(),
        "ndarray" => (prop::sample::select(DType::ALL.to_vec()), prop::collection::vec(1usize..5, 1..4))
            .prop_flat_map(|(d, shape)| array(d, shape))
            .boxed(),
        "ndarray:int16" => prop::collection::vec(1usize..300, 1..3).prop_flat_map(|s| array(DType::I16, s)).boxed(),
        "ndarray:float64" => prop::collection::vec(1usize..4, 1..3).prop_flat_map(|s| array(DType::F64, s)).boxed(),
        "ndarray:uint8:3" => array(DType::U8, vec![3]).boxed(),
        "ndarray:float32:2,2" => array(DType::F32, vec![2, 2]).boxed(),
        "ndarray:int64:1,2,1" => array(DType::I64, vec![1, 2, 1]).boxed(),
        "ndarray:float16:5" => array(DType::F16, vec![5]).boxed(),
        other => panic!("no strategy for {other}"),
    }
}

type Case = (Vec<(String, String)>, Vec<Sample>, WriterOptions);

fn case_strategy() -> impl Strategy<Value = Case> {
    let columns = prop::collection::vec(prop::sample::select(ENCODINGS.to_vec()), 1..6);
    let options = (
        prop_oneof![Just(None), Just(Some("zstd".to_string())), Just(Some("zstd:9".to_string()))],
        prop_oneof![Just(vec![]), Just(vec!["sha1".to_string(), "xxh64".to_string()])],
        prop_oneof![Just(None), (1u64..2000).prop_map(Some), Just(Some(1 << 26))],
    )
        .prop_map(|(compression, hashes, size_limit)| WriterOptions {
            compression,
            hashes,
            size_limit,
            overwrite: false,
            raw_encodings: Vec::new(),
        });
    (columns, options).prop_flat_map(|(encs, options)| {
        // Names out of order on purpose; the writer sorts them.
        let cols: Vec<(String, String)> =
            encs.iter().enumerate().map(|(k, e)| (format!("c{}_{k}", 9 - k), e.to_string())).collect();
        let one = cols
            .iter()
            .map(|(n, e)| {
                let name = n.clone();
                let enc: &'static str = ENCODINGS.iter().find(|x| **x == e.as_str()).copied().unwrap();
                value_strategy(enc).prop_map(move |v| (name.clone(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(|pairs| pairs.into_iter().collect::<Sample>());
        (Just(cols), prop::collection::vec(one, 0..12), Just(options))
    })
}

fn write(dir: &std::path::Path, cols: &[(String, String)], samples: &[Sample], options: &WriterOptions) {
    let mut w = MdsWriter::new(dir, cols.iter().map(|(n, e)| (n.as_str(), e.as_str())), options.clone()).unwrap();
    for s in samples {
        w.write(s).unwrap();
    }
    w.finish().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn write_then_read_round_trips((cols, samples, options) in case_strategy()) {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        write(&a, &cols, &samples, &options);
        let ds = MdsDataset::open(&a).unwrap();
        prop_assert_eq!(ds.len(), samples.len() as u64);
        let report = ds.verify().unwrap();
        prop_assert_eq!(report.samples, samples.len() as u64);
        for (i, (want, got)) in samples.iter().zip(ds.iter()).enumerate() {
            let got = got.unwrap();
            prop_assert_eq!(sample_form(&cols, &got), sample_form(&cols, want));
            prop_assert_eq!(&ds.get(i as u64).unwrap(), &got);
        }
        if let Some(limit) = options.size_limit {
            for s in &ds.index().shards {
                prop_assert!(s.raw_data.bytes <= limit || s.samples <= 1);
            }
        }
        // Deterministic: the same input gives the same bytes.
        let b = tmp.path().join("b");
        write(&b, &cols, &samples, &options);
        prop_assert_eq!(files(&a), files(&b));
    }

    #[test]
    fn json_text_round_trips(j in json_strategy()) {
        let text = j.to_python(false);
        prop_assert!(text.is_ascii());
        let back = Json::parse(&text).unwrap();
        prop_assert_eq!(back.to_python(false), text);
    }

    #[test]
    fn float_repr_round_trips(x in non_nan_f64()) {
        let text = py_float_repr(x);
        let back: f64 = text.parse().unwrap();
        prop_assert_eq!(back.to_bits(), x.to_bits());
    }
}
