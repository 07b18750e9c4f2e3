//! The store's records as Arrow: the schema every batch file has, and records to a
//! [`RecordBatch`] of it (what the writer writes, and what [`super::StoreReader::batches`] hands to
//! other Arrow readers, such as pyarrow through the Arrow C stream interface).

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use super::TokenRecord;

/// The Arrow schema of a store with `num_scales` scales (see the [module docs](super)):
/// `file_path` (utf8), `duration` (float64), then per scale `tokens_scale_k` (list<int32>),
/// `n_tokens_scale_k` (int64), `shape_scale_k` (list<int64>), none nullable.
pub fn arrow_schema(num_scales: usize) -> SchemaRef {
    let mut fields =
        vec![Field::new("file_path", DataType::Utf8, false), Field::new("duration", DataType::Float64, false)];
    for k in 0..num_scales {
        fields.push(Field::new(format!("tokens_scale_{k}"), DataType::new_list(DataType::Int32, false), false));
        fields.push(Field::new(format!("n_tokens_scale_{k}"), DataType::Int64, false));
        fields.push(Field::new(format!("shape_scale_{k}"), DataType::new_list(DataType::Int64, false), false));
    }
    Arc::new(Schema::new(fields))
}

/// The number of scales of a schema made by [`arrow_schema`] (its columns after the first two, in
/// threes).
fn schema_scales(schema: &Schema) -> usize {
    schema.fields().len().saturating_sub(2) / 3
}

/// `records` as one [`RecordBatch`] of `schema` (made by [`arrow_schema`]). Fails when a record
/// has another number of scales than the schema, or a code does not fit an int32.
pub fn records_to_batch(schema: &SchemaRef, records: &[TokenRecord]) -> Result<RecordBatch, ArrowError> {
    let num_scales = schema_scales(schema);
    if let Some((i, r)) = records.iter().enumerate().find(|(_, r)| r.scales.len() != num_scales) {
        return Err(ArrowError::InvalidArgumentError(format!(
            "record {i} ({}) has {} scales, the store {num_scales}",
            r.file_path,
            r.scales.len()
        )));
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(records.iter().map(|r| r.file_path.as_str()))),
        Arc::new(Float64Array::from_iter_values(records.iter().map(|r| r.duration))),
    ];
    for k in 0..num_scales {
        let mut tokens = Vec::with_capacity(records.iter().map(|r| r.scales[k].tokens.len()).sum());
        for r in records {
            for &t in &r.scales[k].tokens {
                tokens.push(i32::try_from(t).map_err(|_| {
                    ArrowError::InvalidArgumentError(format!("{}: code {t} of scale {k} exceeds int32", r.file_path))
                })?);
            }
        }
        let token_list = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Int32, false)),
            OffsetBuffer::from_lengths(records.iter().map(|r| r.scales[k].tokens.len())),
            Arc::new(Int32Array::from(tokens)),
            None,
        )?;
        let counts = Int64Array::from_iter_values(records.iter().map(|r| r.scales[k].tokens.len() as i64));
        let dims: Vec<i64> = records.iter().flat_map(|r| r.scales[k].shape.iter().map(|&d| d as i64)).collect();
        let shape_list = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Int64, false)),
            OffsetBuffer::from_lengths(records.iter().map(|r| r.scales[k].shape.len())),
            Arc::new(Int64Array::from(dims)),
            None,
        )?;
        cols.push(Arc::new(token_list));
        cols.push(Arc::new(counts));
        cols.push(Arc::new(shape_list));
    }
    RecordBatch::try_new(schema.clone(), cols)
}
