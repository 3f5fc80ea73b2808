//! Parquet encoding of the run's tables, each column's encoding fixed by its
//! type. polars' `ParquetWriter` decides per file whether a column is worth
//! a dictionary by estimating its cardinality (a HyperLogLog pass over every
//! float and string column), then hashes every string again to build the
//! dictionary: on a 1000-generation run that was a fifth of the writer
//! thread's time for columns whose answer never changes (random floats: no;
//! `origin`, `split`: one or two values). Here the answer is given:
//!
//! - floats: plain, uncompressed (Snappy finds nothing in random mantissas);
//! - u64 ids: delta-encoded (consecutive ids cost a few bits a row);
//! - other integers: dictionary when their range is small (polars' min/max
//!   test, no estimate), else plain;
//! - strings fixed for the whole table (a scalar column): a one-entry
//!   dictionary, no per-row work; other strings with at most
//!   `SMALL_DICTIONARY` values: a dictionary (one hash lookup a row); the
//!   rest (text, JSON parameters): plain;
//! - everything but floats: Snappy, unless the caller says a text column
//!   is not worth it (`Squeeze::Raw`: hex digests, models' params), and
//!   but a filter's flags and the columns that follow them: a random bit a
//!   row, of which Snappy saved a tenth (250 bytes of 2.5 KB a column in
//!   a generation of 20,000 candidates) for 15 ms of the writer's time
//!   over a 1,000-generation detector run.
//!
//! The run's other tables (training, models, metrics) come as plain
//! vectors (`Col`), written without a DataFrame in between: building one
//! to write 200 rows cost as much as encoding them.
//!
//! The file is an ordinary Parquet file: the Arrow schema in its footer says
//! `String` for string columns whatever their pages hold, so polars, pyarrow
//! and DuckDB read the same columns and types as before.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use polars::prelude::{Column, CompatLevel, DataFrame, DataType, PlHashMap, PolarsError, PolarsResult, SchemaExt};
use polars_arrow::array::{Array, BooleanArray, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_arrow::datatypes::{ArrowSchema, Field};
use polars_parquet::parquet::metadata::{KeyValue, SchemaDescriptor};
use polars_parquet::parquet::write::{FileWriter as ParquetFileWriter, WriteOptions as FileWriteOptions};
use polars_parquet::write::{
    array_to_columns, schema_to_metadata_key, to_parquet_schema, CompressedPage, CompressionOptions, Compressor,
    DynIter, DynStreamingIterator, Encoding, FallibleStreamingIterator, Page, ParquetType, RowGroupIterColumns,
    StatisticsOptions, Version, WriteOptions,
};

/// The footer's `created_by`, in the "<application> version <version>"
/// form that Parquet readers parse: the files name their writer.
pub const CREATED_BY: &str = concat!("collapse version ", env!("CARGO_PKG_VERSION"));

/// Rows per row group: every generation of the shipped pipelines fits in one.
const ROW_GROUP: usize = 1 << 20;
/// Columns of fewer bytes than this are not compressed (`pages_column`).
const TINY_COLUMN: usize = 256;
/// A string column with more distinct values than this is written plain.
const SMALL_DICTIONARY: usize = 64;

/// How one column is written.
#[derive(Clone, Copy, PartialEq)]
struct Plan {
    encoding: Encoding,
    compression: CompressionOptions,
}

fn plan(dtype: &DataType) -> Plan {
    let snappy = CompressionOptions::Snappy;
    match dtype {
        DataType::Float32 | DataType::Float64 => {
            Plan { encoding: Encoding::Plain, compression: CompressionOptions::Uncompressed }
        }
        DataType::UInt64 | DataType::Int64 => Plan { encoding: Encoding::DeltaBinaryPacked, compression: snappy },
        // Dictionary where the range is small; the encoder falls back to plain itself.
        dt if dt.is_integer() => Plan { encoding: Encoding::RleDictionary, compression: snappy },
        // Strings: plain unless `column_array` made them a dictionary.
        _ => Plan { encoding: Encoding::Plain, compression: snappy },
    }
}

/// A generation's samples: `sample_id` (from runs of consecutive ids,
/// `SamplesTable::ids`) as the first column, then `df`'s.
pub fn write_samples<W: Write>(w: W, df: &mut DataFrame, ids: &[(u64, u64)]) -> PolarsResult<u64> {
    write_groups(w, df, Some(ids), ROW_GROUP)
}

/// The runs of `ids` that cover rows `offset..offset + len`.
fn runs_within(ids: &[(u64, u64)], offset: usize, len: usize) -> Vec<(u64, u64)> {
    let (start, end) = (offset as u64, (offset + len) as u64);
    let mut row = 0u64;
    let mut out = Vec::new();
    for &(first, count) in ids {
        let (lo, hi) = (row.max(start), (row + count).min(end));
        if lo < hi {
            out.push((first + (lo - row), hi - lo));
        }
        row += count;
    }
    out
}

/// What a file of one schema needs before its first row, made once per
/// schema, plans and thread: the Parquet schema, the Arrow schema as the footer's
/// `ARROW:schema` entry (an IPC message, base64), each column's plan.
/// Derived for every file, these were a third of writing a 200-row table.
struct Layout {
    arrow: ArrowSchema,
    descriptor: SchemaDescriptor,
    key: KeyValue,
    plans: Vec<Plan>,
}

thread_local! {
    /// The few schemas a run writes (samples, training, models, metrics).
    static LAYOUTS: RefCell<Vec<Rc<Layout>>> = const { RefCell::new(Vec::new()) };
}

/// The layout of `arrow` written with `plans`. Both are the key: one
/// schema is written with other plans where its columns come as other
/// kinds (`Col::F64` or `Col::F64Dict` are both Float64), and a file's
/// encoding must follow its own columns, not what the thread wrote before.
fn layout(arrow: ArrowSchema, plans: Vec<Plan>) -> PolarsResult<Rc<Layout>> {
    if let Some(found) = LAYOUTS.with_borrow(|all| all.iter().find(|l| l.arrow == arrow && l.plans == plans).cloned()) {
        return Ok(found);
    }
    let made =
        Rc::new(Layout { descriptor: to_parquet_schema(&arrow)?, key: schema_to_metadata_key(&arrow), plans, arrow });
    LAYOUTS.with_borrow_mut(|all| {
        // A bound for callers that write many schemas (tests): the run's few stay.
        if all.len() >= 32 {
            all.remove(0);
        }
        all.push(made.clone());
    });
    Ok(made)
}

fn write_groups<W: Write>(w: W, df: &mut DataFrame, ids: Option<&[(u64, u64)]>, row_group: usize) -> PolarsResult<u64> {
    df.rechunk_mut();
    let id_field = ids.map(|_| Field::new("sample_id".into(), ArrowDataType::UInt64, true));
    let arrow: ArrowSchema = id_field
        .into_iter()
        .chain(df.schema().to_arrow(CompatLevel::newest()).into_iter().map(|(_, f)| f))
        .map(|f| (f.name.clone(), f))
        .collect();
    let id_plan = ids.map(|_| plan(&DataType::UInt64));
    let layout = layout(arrow, id_plan.into_iter().chain(df.columns().iter().map(|c| plan(c.dtype()))).collect())?;
    let (id_type, fields) = match ids {
        Some(_) => layout.descriptor.fields().split_first().map(|(f, rest)| (Some(f), rest)).unwrap_or((None, &[])),
        None => (None, layout.descriptor.fields()),
    };
    let plans = &layout.plans[id_type.is_some() as usize..];
    let options = array_options(StatisticsOptions::default());
    let mut writer = file_writer(w, &layout);
    let height = df.height();
    let mut offset = 0;
    while offset < height {
        let len = row_group.min(height - offset);
        let mut columns = Vec::with_capacity(df.width() + 1);
        if let (Some(ids), Some(type_)) = (ids, id_type) {
            let runs = runs_within(ids, offset, len);
            let page = match type_ {
                ParquetType::PrimitiveType(p) => super::pages::delta_runs(&runs, p),
                _ => None,
            };
            let id = layout.plans[0]; // sample_id's, first in the layout
            match page {
                Some(page) => columns.push(pages_column(vec![page], id.compression)),
                None => {
                    let expanded: Vec<u64> = runs.iter().flat_map(|&(first, count)| first..first + count).collect();
                    let array = PrimitiveArray::from_vec(expanded).boxed();
                    columns.extend(encoded(array, type_, options, id.encoding, id.compression)?);
                }
            }
        }
        for ((column, type_), plan) in df.columns().iter().zip(fields).zip(plans) {
            let known = match type_ {
                ParquetType::PrimitiveType(p) => super::pages::known(column, offset, len, p),
                _ => None,
            };
            if let Some(pages) = known {
                columns.push(pages_column(pages, plan.compression));
                continue;
            }
            let array = column_array(column, offset, len)?;
            let encoding = match array.dtype() {
                ArrowDataType::Dictionary(..) => Encoding::RleDictionary,
                _ => plan.encoding,
            };
            columns.extend(encoded(array, type_, options, encoding, plan.compression)?);
        }
        let group: RowGroupIterColumns<'static, PolarsError> = DynIter::new(columns.into_iter());
        writer.write(len as u64, group)?;
        offset += len;
    }
    Ok(writer.end(Some(vec![layout.key.clone()]))?)
}

fn array_options(statistics: StatisticsOptions) -> WriteOptions {
    WriteOptions { statistics, compression: CompressionOptions::Snappy, version: Version::V1, data_page_size: None }
}

/// polars' low-level writer, without page-level column indexes: every
/// column chunk here is one page, whose statistics the chunk's metadata
/// already carries, so the index repeated them (and took a tenth of a
/// small file's time).
fn file_writer<W: Write>(w: W, layout: &Layout) -> ParquetFileWriter<W> {
    let options = FileWriteOptions { version: Version::V1, write_statistics: false };
    ParquetFileWriter::new(w, layout.descriptor.clone(), options, Some(CREATED_BY.to_string()))
}

type EncodedColumn = PolarsResult<DynStreamingIterator<'static, CompressedPage, PolarsError>>;

/// Hand-built pages of a column, compressed as planned unless they are
/// tiny: a run writes tens of thousands of pages of a few dozen bytes (a
/// constant column, a replicate's runs), where Snappy saves a handful of
/// bytes and its per-call setup cost a microsecond each.
fn pages_column(pages: Vec<Page>, compression: CompressionOptions) -> EncodedColumn {
    let bytes: usize = pages
        .iter()
        .map(|p| match p {
            Page::Data(d) => d.buffer().len(),
            Page::Dict(d) => d.buffer.len(),
        })
        .sum();
    let compression = if bytes < TINY_COLUMN { CompressionOptions::Uncompressed } else { compression };
    let leaf = DynIter::new(pages.into_iter().map(Ok));
    let compressed = Compressor::new(leaf, compression, vec![]).map_err(PolarsError::from);
    Ok(DynStreamingIterator::new(compressed))
}

/// An Arrow array through polars' encoders.
fn encoded(
    array: Box<dyn Array>,
    type_: &ParquetType,
    options: WriteOptions,
    encoding: Encoding,
    compression: CompressionOptions,
) -> PolarsResult<Vec<EncodedColumn>> {
    let pages = array_to_columns(array, type_.clone(), options, &[encoding])?;
    Ok(pages
        .into_iter()
        .map(|leaf| {
            let leaf =
                DynIter::new(leaf.map(|p| p.map_err(|e| polars_parquet::read::ParquetError::OutOfSpec(e.to_string()))));
            let compressed = Compressor::new(leaf, compression, vec![]).map_err(PolarsError::from);
            Ok(DynStreamingIterator::new(compressed))
        })
        .collect())
}

/// A column of a table written from plain vectors.
pub enum Col<'a> {
    U32(Vec<u32>),
    U64(Vec<u64>),
    F64(Vec<f64>),
    /// Floats with nulls (a filter's score where it has none): a value a
    /// row, and the rows as runs (count, defined) in order; a value where
    /// the row is null is not written.
    OptF64(Vec<f64>, Vec<(usize, bool)>),
    /// Floats of few values (a filter's weights): the values, then each
    /// row's index into them; a dictionary, not 8 bytes a row.
    F64Dict(Vec<f64>, Vec<u32>),
    Bool(&'a [bool]),
    /// A u32 column whose value follows a flag: (flags, [unflagged,
    /// flagged]).
    U32ByFlag(&'a [bool], [u32; 2]),
    /// A float column whose value follows a flag.
    F64ByFlag(&'a [bool], [f64; 2]),
    /// A u32 column as runs of one value (rows, value): a replicate's
    /// rows, a constant, copies that follow the flags.
    U32Runs(Vec<(usize, u32)>),
    /// u64 ids as runs of consecutive values (first, count).
    U64Runs(Vec<(u64, u64)>),
    /// A float column of this many nulls.
    NullF64(usize),
    /// A string column of few values: the values, then each row's index
    /// into them.
    Dict(Vec<&'a str>, Vec<u32>),
    /// Strings that hardly repeat (JSON, paths); `None` is null. Written
    /// plain, with a null count but no min/max: the smallest and largest
    /// JSON text bound nothing a reader would filter on.
    Text(Vec<Option<&'a str>>, Squeeze),
}

/// Whether a text column is worth Snappy: hex digests are random by
/// construction, and compressing them gained 6 bytes in 13,771.
#[derive(Clone, Copy, PartialEq)]
pub enum Squeeze {
    Snappy,
    Raw,
}

impl Col<'_> {
    fn len(&self) -> usize {
        match self {
            Col::U32(v) => v.len(),
            Col::U64(v) => v.len(),
            Col::F64(v) => v.len(),
            Col::OptF64(v, _) => v.len(),
            Col::F64Dict(_, k) => k.len(),
            Col::Bool(v) => v.len(),
            Col::U32ByFlag(f, _) | Col::F64ByFlag(f, _) => f.len(),
            Col::U32Runs(r) => r.iter().map(|r| r.0).sum(),
            Col::U64Runs(r) => r.iter().map(|r| r.1 as usize).sum(),
            Col::NullF64(n) => *n,
            Col::Dict(_, k) => k.len(),
            Col::Text(v, _) => v.len(),
        }
    }

    fn arrow_type(&self) -> ArrowDataType {
        match self {
            Col::U32(_) | Col::U32Runs(_) | Col::U32ByFlag(..) => ArrowDataType::UInt32,
            Col::U64(_) | Col::U64Runs(_) => ArrowDataType::UInt64,
            Col::F64(_) | Col::OptF64(..) | Col::F64Dict(..) | Col::F64ByFlag(..) | Col::NullF64(_) => {
                ArrowDataType::Float64
            }
            Col::Bool(_) => ArrowDataType::Boolean,
            Col::Dict(..) | Col::Text(..) => ArrowDataType::Utf8View,
        }
    }

    fn plan(&self) -> Plan {
        match self {
            Col::U32(_) => plan(&DataType::UInt32),
            Col::U64(_) | Col::U64Runs(_) => plan(&DataType::UInt64),
            Col::F64(_) | Col::OptF64(..) | Col::NullF64(_) => plan(&DataType::Float64),
            Col::F64Dict(..) | Col::U32Runs(_) => {
                Plan { encoding: Encoding::RleDictionary, compression: CompressionOptions::Snappy }
            }
            Col::U32ByFlag(..) | Col::F64ByFlag(..) => {
                Plan { encoding: Encoding::RleDictionary, compression: CompressionOptions::Uncompressed }
            }
            Col::Bool(_) => Plan { encoding: Encoding::Plain, compression: CompressionOptions::Uncompressed },
            Col::Dict(..) => Plan { encoding: Encoding::RleDictionary, compression: CompressionOptions::Snappy },
            Col::Text(_, squeeze) => Plan {
                encoding: Encoding::Plain,
                compression: match squeeze {
                    Squeeze::Snappy => CompressionOptions::Snappy,
                    Squeeze::Raw => CompressionOptions::Uncompressed,
                },
            },
        }
    }
}

/// Writes named columns of equal length as one Parquet file of one row
/// group, as `write_groups` would write the same DataFrame (the footer's schema
/// says String for both string kinds); returns its size in bytes.
pub fn write_columns<W: Write>(w: W, columns: Vec<(&str, Col<'_>)>) -> PolarsResult<u64> {
    let len = columns.first().map_or(0, |(_, c)| c.len());
    if let Some((name, _)) = columns.iter().find(|(_, c)| c.len() != len) {
        return Err(PolarsError::ShapeMismatch(format!("column {name} is not {len} rows long").into()));
    }
    let arrow: ArrowSchema = columns
        .iter()
        .map(|(name, c)| Field::new((*name).into(), c.arrow_type(), true))
        .map(|f| (f.name.clone(), f))
        .collect();
    let layout = layout(arrow, columns.iter().map(|(_, c)| c.plan()).collect())?;
    let mut writer = file_writer(w, &layout);
    let mut encoded_columns = Vec::with_capacity(columns.len());
    for (((_, column), type_), plan) in columns.into_iter().zip(layout.descriptor.fields()).zip(&layout.plans) {
        let ParquetType::PrimitiveType(p) = type_ else {
            return Err(PolarsError::ComputeError("a flat table has only primitive columns".into()));
        };
        let known = match (&column, len) {
            (_, 0) => None,
            (Col::U32(v), _) => super::pages::runs_u32(v, p),
            (Col::U64(v), _) => Some(vec![super::pages::delta_u64(v, p)]),
            (Col::F64(v), _) => Some(super::pages::plain_f64_pages(v, p)),
            (Col::U32Runs(r), _) => super::pages::u32_runs(r, p),
            (Col::U64Runs(r), _) => super::pages::delta_runs(r, p).map(|page| vec![page]),
            (Col::NullF64(n), _) => super::pages::null_f64(*n, p).map(|page| vec![page]),
            (Col::OptF64(v, defined), _) => super::pages::optional_f64_pages(v, defined, p),
            (Col::Bool(v), _) => Some(vec![super::pages::plain_bool(v, p)]),
            (Col::U32ByFlag(f, v), _) => super::pages::u32_by_flag(f, *v, p),
            (Col::F64ByFlag(f, v), _) => super::pages::f64_by_flag(f, *v, p),
            _ => None,
        };
        if let Some(pages) = known {
            encoded_columns.push(pages_column(pages, plan.compression));
            continue;
        }
        // What the hand-built pages did not take, a value a row.
        let column = match column {
            Col::U32Runs(r) => Col::U32(r.into_iter().flat_map(|(n, v)| std::iter::repeat_n(v, n)).collect()),
            Col::U64Runs(r) => Col::U64(r.into_iter().flat_map(|(first, n)| first..first + n).collect()),
            Col::NullF64(n) => Col::OptF64(vec![0.0; n], vec![(n, false)]),
            Col::U32ByFlag(f, v) => Col::U32(f.iter().map(|&f| v[usize::from(f)]).collect()),
            Col::F64ByFlag(f, v) => Col::F64(f.iter().map(|&f| v[usize::from(f)]).collect()),
            other => other,
        };
        let (array, statistics): (Box<dyn Array>, StatisticsOptions) = match column {
            Col::U32(v) => (PrimitiveArray::from_vec(v).boxed(), StatisticsOptions::default()),
            Col::U64(v) => (PrimitiveArray::from_vec(v).boxed(), StatisticsOptions::default()),
            Col::F64(v) => (PrimitiveArray::from_vec(v).boxed(), StatisticsOptions::default()),
            Col::OptF64(v, defined) => {
                let rows = defined.iter().flat_map(|&(n, d)| std::iter::repeat_n(d, n));
                let v: Vec<Option<f64>> = rows.zip(v).map(|(d, v)| d.then_some(v)).collect();
                (PrimitiveArray::<f64>::from(v).boxed(), StatisticsOptions::default())
            }
            Col::F64Dict(values, keys) => {
                (dictionary(PrimitiveArray::from_vec(values).boxed(), keys, None)?, StatisticsOptions::default())
            }
            Col::Bool(v) => (BooleanArray::from_slice(v).boxed(), StatisticsOptions::default()),
            Col::U32Runs(_) | Col::U64Runs(_) | Col::NullF64(_) | Col::U32ByFlag(..) | Col::F64ByFlag(..) => {
                return Err(PolarsError::ComputeError("run columns are expanded above".into()))
            }
            Col::Dict(values, keys) => (
                dictionary(Utf8ViewArray::from_slice_values(values).boxed(), keys, None)?,
                StatisticsOptions::default(),
            ),
            Col::Text(v, _) => (
                Utf8ViewArray::from_slice(v).boxed(),
                StatisticsOptions { min_value: false, max_value: false, ..StatisticsOptions::default() },
            ),
        };
        encoded_columns.extend(encoded(array, type_, array_options(statistics), plan.encoding, plan.compression)?);
    }
    let group: RowGroupIterColumns<'static, PolarsError> = DynIter::new(encoded_columns.into_iter());
    writer.write(len as u64, group)?;
    Ok(writer.end(Some(vec![layout.key.clone()]))?)
}

/// Rows `offset..offset + len` of a column as an Arrow array, strings as a
/// dictionary where that is cheap to know.
fn column_array(column: &Column, offset: usize, len: usize) -> PolarsResult<Box<dyn Array>> {
    if let Some(scalar) = column.as_scalar_column() {
        if let Some(s) = scalar.scalar().value().extract_str() {
            return dictionary(Utf8ViewArray::from_slice_values([s]).boxed(), vec![0; len], None);
        }
        if scalar.dtype().is_integer() {
            // One value (or null) for every row: a one-entry dictionary.
            let value = scalar.scalar().clone().into_series("".into()).to_arrow(0, CompatLevel::newest());
            let validity = value.has_nulls().then(|| polars_arrow::bitmap::Bitmap::new_zeroed(len));
            return dictionary(value, vec![0; len], validity);
        }
    }
    // Invariant: `write_groups` rechunked the frame, so chunk 0 is the whole column.
    let array = column.as_materialized_series().to_arrow(0, CompatLevel::newest()).sliced(offset, len);
    if let Some(strings) = array.as_any().downcast_ref::<Utf8ViewArray>() {
        if let Some(d) = small_dictionary(strings) {
            return d;
        }
    }
    Ok(array)
}

/// A dictionary of the column's values when it has at most
/// `SMALL_DICTIONARY` of them (`dictionary_keys`); a null row gets key 0
/// under the column's validity.
fn small_dictionary(strings: &Utf8ViewArray) -> Option<PolarsResult<Box<dyn Array>>> {
    let (values, keys) = dictionary_keys(strings.iter(), SMALL_DICTIONARY)?;
    Some(dictionary(Utf8ViewArray::from_slice_values(values).boxed(), keys, strings.validity().cloned()))
}

/// The distinct strings in order of first appearance and each row's index
/// among them (0 for a null row); `None` past `limit` distinct values. Provenance columns hold
/// one to a few values and usually repeat the previous row's; metric names
/// and model kinds cycle in a fixed order, so the entry after the previous
/// row's is tried next, then a hash lookup (distinct strings, such as JSON
/// parameters, would otherwise cost a comparison with every entry so far
/// before giving up).
pub fn dictionary_keys<'a>(
    strings: impl Iterator<Item = Option<&'a str>>,
    limit: usize,
) -> Option<(Vec<&'a str>, Vec<u32>)> {
    let mut values: Vec<&str> = Vec::new();
    let mut index: PlHashMap<&str, usize> = PlHashMap::default();
    let mut keys = Vec::with_capacity(strings.size_hint().0);
    let mut last = 0usize;
    for s in strings {
        let Some(s) = s else {
            keys.push(0);
            continue;
        };
        if !values.get(last).is_some_and(|v| same(v, s)) {
            last = if values.get(last + 1).is_some_and(|v| same(v, s)) {
                last + 1
            } else {
                match index.get(s) {
                    Some(&i) => i,
                    None if values.len() < limit => {
                        values.push(s);
                        index.insert(s, values.len() - 1);
                        values.len() - 1
                    }
                    None => return None,
                }
            };
        }
        keys.push(last as u32);
    }
    Some((values, keys))
}

/// Equal strings; interned ones (metric names, model kinds) are the same
/// pointer, which spares comparing their bytes on every row.
fn same(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

fn dictionary(
    values: Box<dyn Array>,
    keys: Vec<u32>,
    validity: Option<polars_arrow::bitmap::Bitmap>,
) -> PolarsResult<Box<dyn Array>> {
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity);
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
    Ok(DictionaryArray::try_new(dtype, keys, values)?.boxed())
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;
    use polars_parquet::parquet::compression::Compression;

    use super::*;

    fn frame(n: usize) -> DataFrame {
        let ids: Vec<u64> = (1000..1000 + n as u64).collect();
        let rep: Vec<u32> = (0..n as u32).map(|i| i / 7).collect();
        let model: Vec<Option<u32>> = (0..n).map(|i| (i % 5 != 0).then_some(3)).collect();
        let split: Vec<Option<&str>> = (0..n)
            .map(|i| {
                if i % 11 == 0 {
                    None
                } else if i % 3 == 0 {
                    Some("test")
                } else {
                    Some("train")
                }
            })
            .collect();
        let text: Vec<String> = (0..n).map(|i| format!("row {i} of a text column with many values")).collect();
        let x: Vec<Option<f64>> = (0..n).map(|i| (i % 13 != 0).then(|| (i as f64).sin() * 1e3)).collect();
        let pixels: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 4]).collect();
        DataFrame::new(
            n,
            vec![
                Column::new("sample_id".into(), ids),
                Column::new("replicate".into(), rep),
                Column::new_scalar(
                    "origin".into(),
                    Scalar::new(DataType::String, AnyValue::StringOwned("synthetic".into())),
                    n,
                ),
                Column::new("model_generation".into(), model),
                Column::new_scalar("height".into(), Scalar::new(DataType::UInt32, AnyValue::UInt32(28)), n),
                Column::new_scalar("label".into(), Scalar::null(DataType::UInt32), n),
                Column::new("split".into(), split),
                Column::new("text".into(), text),
                Column::new("x0".into(), x),
                Column::new("pixels".into(), pixels.iter().map(Vec::as_slice).collect::<Vec<_>>()),
            ],
        )
        .unwrap()
    }

    fn bytes_of(df: &DataFrame, row_group: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_groups(&mut out, &mut df.clone(), None, row_group).unwrap();
        out
    }

    fn read_back(bytes: &[u8]) -> DataFrame {
        ParquetReader::new(std::io::Cursor::new(bytes.to_vec())).finish().unwrap()
    }

    /// The same schema written as different kinds of column (a `filter`
    /// table's weights: a dictionary of a few values in one generation,
    /// plain floats in another; text as a dictionary or plain) reads back
    /// right in either order on one thread, and each file's bytes do not
    /// depend on what the thread wrote before: a resumed run, or a study
    /// cell on another rayon worker, writes the same file.
    #[test]
    fn a_file_does_not_depend_on_what_its_thread_wrote_before() {
        fn table(kind: usize) -> Vec<(&'static str, Col<'static>)> {
            let n = 300;
            let (weight, text) = match kind {
                0 => {
                    (Col::F64((0..n).map(|i| (i as f64 * 0.1).exp()).collect()), Col::Dict(vec!["a", "b"], vec![1; n]))
                }
                _ => (
                    Col::F64Dict(vec![0.0, 1.0], (0..n as u32).map(|i| i % 2).collect()),
                    Col::Text(vec![Some("a"); n], Squeeze::Raw),
                ),
            };
            vec![("weight", weight), ("kind", text)]
        }
        let fresh = |kind: usize| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                write_columns(&mut out, table(kind)).unwrap();
                out
            })
            .join()
            .unwrap()
        };
        let alone = [fresh(0), fresh(1)];
        for first in [0, 1] {
            let after = std::thread::spawn(move || {
                let mut out = Vec::new();
                write_columns(&mut Vec::new(), table(first)).unwrap();
                write_columns(&mut out, table(1 - first)).map(|_| out)
            })
            .join()
            .unwrap();
            let after = after.unwrap_or_else(|e| panic!("kind {} after kind {first}: {e}", 1 - first));
            assert!(after == alone[1 - first], "kind {} after kind {first}: other bytes than alone", 1 - first);
            assert_eq!(read_back(&after).height(), 300);
        }
    }

    /// Tables written from vectors read back as the DataFrame of the same
    /// columns would (strings as String, nulls kept), each column encoded
    /// and compressed as its kind says; an empty table too.
    #[test]
    fn column_tables_read_back_as_their_frame_would() {
        fn columns(n: usize, texts: &[String]) -> Vec<(&'static str, Col<'_>)> {
            let names = ["mean", "var", "w2"];
            vec![
                ("replicate", Col::U32((0..n as u32).map(|i| i / 3).collect())),
                ("generation", Col::U32(vec![7; n])),
                ("scattered", Col::U32((0..n as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect())),
                ("start", Col::U64((0..n as u64).map(|i| (i / 3) << 40 | i).collect())),
                ("metric", Col::Dict(names.to_vec(), (0..n as u32).map(|i| i % 3).collect())),
                (
                    "params",
                    Col::Text(
                        texts.iter().enumerate().map(|(i, t)| (i % 4 != 1).then_some(t.as_str())).collect(),
                        Squeeze::Snappy,
                    ),
                ),
                ("blake3", Col::Text(texts.iter().map(|t| Some(t.as_str())).collect(), Squeeze::Raw)),
                ("value", Col::F64((0..n).map(|i| (i as f64).cos()).collect())),
            ]
        }
        for n in [0usize, 1, 2000] {
            let texts: Vec<String> = (0..n).map(|i| format!("{{\"mean\":[{i}.5]}}")).collect();
            let want = DataFrame::new(
                n,
                vec![
                    Column::new("replicate".into(), (0..n as u32).map(|i| i / 3).collect::<Vec<_>>()),
                    Column::new("generation".into(), vec![7u32; n]),
                    Column::new(
                        "scattered".into(),
                        (0..n as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect::<Vec<_>>(),
                    ),
                    Column::new("start".into(), (0..n as u64).map(|i| (i / 3) << 40 | i).collect::<Vec<_>>()),
                    Column::new("metric".into(), (0..n).map(|i| ["mean", "var", "w2"][i % 3]).collect::<Vec<_>>()),
                    Column::new(
                        "params".into(),
                        texts.iter().enumerate().map(|(i, t)| (i % 4 != 1).then_some(t.as_str())).collect::<Vec<_>>(),
                    ),
                    Column::new("blake3".into(), texts.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
                    Column::new("value".into(), (0..n).map(|i| (i as f64).cos()).collect::<Vec<_>>()),
                ],
            )
            .unwrap();
            let mut bytes = Vec::new();
            write_columns(&mut bytes, columns(n, &texts)).unwrap();
            let back = read_back(&bytes);
            assert_eq!(back.schema(), want.schema(), "{n} rows");
            assert!(back.equals_missing(&want), "{n} rows: {back} != {want}");
            let mut again = Vec::new();
            write_columns(&mut again, columns(n, &texts)).unwrap();
            assert_eq!(bytes, again, "same columns, same bytes");
            if n == 2000 {
                let meta = polars_parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
                assert_eq!(meta.created_by.as_deref(), Some(CREATED_BY));
                assert!(CREATED_BY.starts_with("collapse version 0."), "{CREATED_BY}");
                let chunks = meta.row_groups[0].parquet_columns();
                let codec: Vec<Compression> = chunks.iter().map(|c| c.compression()).collect();
                use Compression::{Snappy, Uncompressed};
                // `generation`, one value, is a few dozen bytes: stored raw.
                assert_eq!(codec, [Snappy, Uncompressed, Snappy, Snappy, Snappy, Snappy, Uncompressed, Uncompressed]);
                assert!(chunks.iter().all(|c| c.column_index_offset().is_none()), "no page index: one page a chunk");
                use polars_parquet::parquet::statistics::Statistics;
                let Some(Ok(Statistics::Binary(s))) = chunks[5].statistics(&meta.footer_buf) else {
                    panic!("params has byte-array statistics")
                };
                assert_eq!(
                    (s.min_value, s.max_value, s.null_count),
                    (None, None, Some(500)),
                    "text: nulls, no min/max"
                );
            }
        }
        let uneven = vec![("a", Col::U32(vec![1, 2])), ("b", Col::F64(vec![1.0]))];
        let e = write_columns(Vec::new(), uneven).unwrap_err().to_string();
        assert!(e.contains("column b is not 2 rows long"), "{e}");
    }

    #[test]
    fn tables_read_back_equal_with_their_types_in_one_or_many_row_groups() {
        let df = frame(1000);
        for row_group in [ROW_GROUP, 300] {
            let back = read_back(&bytes_of(&df, row_group));
            assert_eq!(back.schema(), df.schema(), "strings stay String, not Categorical");
            assert!(back.equals_missing(&df), "row group {row_group}: {back} != {df}");
        }
        let empty = frame(0);
        assert!(read_back(&bytes_of(&empty, ROW_GROUP)).equals_missing(&empty));
    }

    #[test]
    fn each_column_is_written_as_planned_and_bytes_are_stable() {
        let df = frame(100_000);
        let bytes = bytes_of(&df, ROW_GROUP);
        assert_eq!(bytes, bytes_of(&df, ROW_GROUP), "same frame, same bytes");
        let meta = polars_parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!(meta.row_groups.len(), 1);
        let chunk = |name: &str| &meta.row_groups[0].parquet_columns()[df.get_column_index(name).unwrap()];
        // Dictionary pages where the column has few values, none elsewhere.
        for name in ["replicate", "origin", "model_generation", "height", "label", "split"] {
            assert!(chunk(name).dictionary_page_offset().is_some(), "{name} has a dictionary");
        }
        for name in ["sample_id", "text", "x0", "pixels"] {
            assert!(chunk(name).dictionary_page_offset().is_none(), "{name} is not a dictionary");
        }
        // Random floats: stored as they are; everything else through Snappy.
        assert_eq!(chunk("x0").compression(), Compression::Uncompressed);
        assert_eq!(chunk("text").compression(), Compression::Snappy);
        // Consecutive ids delta-encode to a few bytes per 128-row block
        // (plain, they would be 800 kB).
        assert!(chunk("sample_id").uncompressed_size() < 20_000, "{}", chunk("sample_id").uncompressed_size());
        // A constant column costs next to nothing.
        assert!(chunk("origin").uncompressed_size() < 1_000, "{}", chunk("origin").uncompressed_size());
    }

    /// The hand-built pages (src/data/pages.rs) read back equal, with the
    /// statistics polars would have written: long replicate runs, ids that
    /// count up with jumps, down, and across the i64 sign, constant columns,
    /// floats with signed zeros, in one or several row groups.
    #[test]
    fn hand_built_pages_read_back_with_their_statistics() {
        let n = 5000;
        let ids: Vec<u64> =
            (0..n as u64).map(|i| if i < 3000 { (i / 700) << 40 | i } else { u64::MAX - 7 * i }).collect();
        let rep: Vec<u32> = (0..n as u32).map(|i| 3 * (i / 700)).collect();
        let x: Vec<f64> = (0..n).map(|i| if i == 17 { -0.0 } else { ((i * 7919) % 1013) as f64 - 506.5 }).collect();
        let df = DataFrame::new(
            n,
            vec![
                Column::new("sample_id".into(), ids),
                Column::new("replicate".into(), rep),
                Column::new_scalar(
                    "origin".into(),
                    Scalar::new(DataType::String, AnyValue::StringOwned("real".into())),
                    n,
                ),
                Column::new_scalar("model_generation".into(), Scalar::new(DataType::UInt32, AnyValue::UInt32(41)), n),
                Column::new("x0".into(), x),
            ],
        )
        .unwrap();
        for row_group in [ROW_GROUP, 1999, 1] {
            let bytes = bytes_of(&df, row_group);
            let back = read_back(&bytes);
            assert!(back.equals_missing(&df), "row group {row_group}");
            let meta = polars_parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
            let chunk = |name: &str| &meta.row_groups[0].parquet_columns()[df.get_column_index(name).unwrap()];
            for name in ["replicate", "origin", "model_generation"] {
                assert!(chunk(name).dictionary_page_offset().is_some(), "{name} has a dictionary");
            }
            if row_group == ROW_GROUP {
                use polars_parquet::parquet::statistics::Statistics;
                let stats = |name: &str| chunk(name).statistics(&meta.footer_buf).unwrap().unwrap();
                let Statistics::Int64(s) = stats("sample_id") else { panic!("sample_id is INT64") };
                assert_eq!((s.min_value.unwrap() as u64, s.max_value.unwrap() as u64), (0, u64::MAX - 7 * 3000));
                let Statistics::Int32(s) = stats("replicate") else { panic!("replicate is INT32") };
                assert_eq!((s.min_value, s.max_value), (Some(0), Some(21)));
                let Statistics::Double(s) = stats("x0") else { panic!("x0 is DOUBLE") };
                assert_eq!((s.min_value, s.max_value), (Some(-506.5), Some(505.5)));
                let Statistics::Binary(s) = stats("origin") else { panic!("origin is BYTE_ARRAY") };
                assert_eq!(s.min_value.as_deref(), Some(&b"real"[..]));
                assert_eq!(s.null_count, Some(0));
            }
        }
    }

    /// The filter table's columns as the writer gets them (runs, flags,
    /// scores with nulls, NaN and both zeros) against polars' own
    /// `ParquetWriter` on the same values a row each: the same frame reads
    /// back, and every column's min, max and null count agree. Runs too
    /// short for a dictionary fall back to polars' encoder.
    fn filter_columns_against_polars(rows: &[(u32, bool, Option<f64>, f64, u32)]) {
        use polars_parquet::parquet::statistics::Statistics;
        let n = rows.len();
        let runs = |v: Vec<u32>| {
            let mut out: Vec<(usize, u32)> = Vec::new();
            for x in v {
                match out.last_mut() {
                    Some(last) if last.1 == x => last.0 += 1,
                    _ => out.push((1, x)),
                }
            }
            out
        };
        let flags: Vec<bool> = rows.iter().map(|r| r.1).collect();
        let columns = vec![
            ("replicate", Col::U32Runs(runs(rows.iter().map(|r| r.0).collect()))),
            ("model_generation", Col::U32Runs(vec![(n, 9)])),
            ("nothing", Col::NullF64(n)),
            ("score", {
                let mut scores = crate::filter::Scores::default();
                for r in rows {
                    scores.push(r.2.is_some(), std::iter::once(r.2.unwrap_or(0.0)));
                }
                Col::OptF64(scores.values, scores.judged)
            }),
            ("flagged", Col::Bool(&flags)),
            ("weight", Col::F64(rows.iter().map(|r| r.3).collect())),
            ("copies", Col::U32Runs(runs(rows.iter().map(|r| r.4).collect()))),
            ("flag_weight", Col::F64ByFlag(&flags, [1.0, 0.3])),
            ("flag_copies", Col::U32ByFlag(&flags, [1, 0])),
        ];
        let mut bytes = Vec::new();
        write_columns(&mut bytes, columns).unwrap();
        let mut want = DataFrame::new(
            n,
            vec![
                Column::new("replicate".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new("model_generation".into(), vec![9u32; n]),
                Column::new("nothing".into(), vec![None::<f64>; n]),
                Column::new("score".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
                Column::new("flagged".into(), flags.clone()),
                Column::new("weight".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
                Column::new("copies".into(), rows.iter().map(|r| r.4).collect::<Vec<_>>()),
                Column::new("flag_weight".into(), flags.iter().map(|&f| if f { 0.3 } else { 1.0 }).collect::<Vec<_>>()),
                Column::new("flag_copies".into(), flags.iter().map(|&f| u32::from(!f)).collect::<Vec<_>>()),
            ],
        )
        .unwrap();
        let back = read_back(&bytes);
        assert_eq!(back.schema(), want.schema());
        assert!(back.equals_missing(&want), "{back} != {want}");
        let mut theirs = Vec::new();
        ParquetWriter::new(&mut theirs).with_statistics(StatisticsOptions::full()).finish(&mut want).unwrap();
        let meta = |b: &[u8]| polars_parquet::read::read_metadata(&mut std::io::Cursor::new(b)).unwrap();
        let (ours, polars) = (meta(&bytes), meta(&theirs));
        // Statistics as comparable text: floats by value, NaN as NaN.
        let show = |m: &polars_parquet::parquet::metadata::FileMetadata, i: usize| match m.row_groups[0]
            .parquet_columns()[i]
            .statistics(&m.footer_buf)
        {
            Some(Ok(Statistics::Double(s))) => format!("{:?} {:?} {:?}", s.min_value, s.max_value, s.null_count),
            Some(Ok(Statistics::Int32(s))) => format!("{:?} {:?} {:?}", s.min_value, s.max_value, s.null_count),
            Some(Ok(Statistics::Boolean(s))) => format!("{:?} {:?} {:?}", s.min_value, s.max_value, s.null_count),
            other => format!("{other:?}"),
        };
        for (i, name) in want.get_column_names().iter().enumerate() {
            assert_eq!(show(&ours, i), show(&polars, i), "statistics of {name}");
        }
    }

    #[test]
    fn filter_columns_read_back_with_polars_statistics() {
        // A detector's drop table: long runs; then every shape at once.
        let drop: Vec<(u32, bool, Option<f64>, f64, u32)> = (0..3000u32)
            .map(|i| {
                let f = i % 97 < 9;
                (i / 1000, f, None, if f { 0.0 } else { 1.0 }, u32::from(!f))
            })
            .collect();
        filter_columns_against_polars(&drop);
        // A detector at tpr 0.1: runs of every length, the long ones RLE,
        // the short ones bit-packed between them (keys_page's hybrid).
        let mix = |i: u32| {
            let x = u64::from(i).wrapping_mul(0xff51_afd7_ed55_8ccd);
            (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53) >> 40
        };
        let scattered: Vec<(u32, bool, Option<f64>, f64, u32)> = (0..5003u32)
            .map(|i| {
                let f = mix(i) % 10 == 0 || (1000..1040).contains(&i);
                (i / 2000, f, None, if f { 0.3 } else { 1.0 }, u32::from(!f) + u32::from(i % 7 == 0))
            })
            .collect();
        filter_columns_against_polars(&scattered);
        let mixed: Vec<(u32, bool, Option<f64>, f64, u32)> = (0..700u32)
            .map(|i| {
                let score = match i % 11 {
                    0 => None,
                    1 => Some(-0.0),
                    2 => Some(0.0),
                    _ => Some((f64::from(i) * 0.37).sin() * 50.0),
                };
                (i / 300, i % 3 == 0, score, f64::from(i % 4) * 0.25, i % 5)
            })
            .collect();
        filter_columns_against_polars(&mixed);
        let mut nan = mixed.clone();
        nan[40].2 = Some(f64::NAN);
        filter_columns_against_polars(&nan);
        let all_null: Vec<(u32, bool, Option<f64>, f64, u32)> =
            (0..50).map(|i| (0, i % 2 == 0, None, 1.0, 1)).collect();
        filter_columns_against_polars(&all_null);
        filter_columns_against_polars(&all_null[..1]);
        // Scores in two pages (2^17 rows a page), a run of nulls across
        // the cut and one ending right at it.
        let cut = 1usize << 17;
        let paged: Vec<(u32, bool, Option<f64>, f64, u32)> = (0..cut + 300)
            .map(|i| {
                let null = (cut - 100..cut + 50).contains(&i) || (cut - 400..cut - 200).contains(&i);
                (0, i % 3 == 0, (!null).then(|| (i as f64 * 0.01).cos()), 1.0, 1)
            })
            .collect();
        filter_columns_against_polars(&paged);
        let mut at_cut = paged.clone();
        for r in &mut at_cut[cut - 10..cut + 50] {
            r.2 = Some(2.5);
        }
        for r in &mut at_cut[cut - 30..cut] {
            r.2 = None;
        }
        filter_columns_against_polars(&at_cut);
    }

    /// A file whose ids come as runs and one whose ids come as a column.
    fn ids_both_ways(runs: &[(u64, u64)], row_group: usize) -> (Vec<u8>, Vec<u8>) {
        let ids: Vec<u64> = runs.iter().flat_map(|&(f, c)| f..f + c).collect();
        let n = ids.len();
        let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
        let df = DataFrame::new(n, vec![Column::new("x0".into(), x.clone())]).unwrap();
        let with_ids =
            DataFrame::new(n, vec![Column::new("sample_id".into(), ids), Column::new("x0".into(), x)]).unwrap();
        let mut from_runs = Vec::new();
        write_groups(&mut from_runs, &mut df.clone(), Some(runs), row_group).unwrap();
        (from_runs, bytes_of(&with_ids, row_group))
    }

    /// Ids given as runs make the very file their column would, in one row
    /// group or in several that cut runs in two; empty runs and no rows
    /// included.
    #[test]
    fn sample_ids_from_runs_write_what_their_column_would() {
        let runs = [(1000, 250), (1 << 40, 0), ((1 << 40) + 7, 130), (5, 1), (2 << 40, 400)];
        for row_group in [ROW_GROUP, 300, 128, 1] {
            let (from_runs, direct) = ids_both_ways(&runs, row_group);
            assert_eq!(from_runs, direct, "row group {row_group}");
            let back = read_back(&from_runs);
            let ids: Vec<u64> = back.column("sample_id").unwrap().u64().unwrap().into_no_null_iter().collect();
            assert_eq!(ids, runs.iter().flat_map(|&(f, c)| f..f + c).collect::<Vec<_>>());
        }
        for empty in [&[][..], &[(9, 0)][..]] {
            let (from_runs, direct) = ids_both_ways(empty, ROW_GROUP);
            assert_eq!(from_runs, direct);
            assert_eq!(read_back(&from_runs).height(), 0);
        }
    }

    proptest::proptest! {
        /// Any runs of consecutive ids (ids that do not wrap past u64::MAX,
        /// as `first_sample_id` guarantees) encode as their column does.
        #[test]
        fn delta_encoded_runs_match_the_column(runs in proptest::collection::vec((0u64..1 << 62, 0u64..300), 1..9)) {
            let (from_runs, direct) = ids_both_ways(&runs, ROW_GROUP);
            proptest::prop_assert_eq!(from_runs, direct);
        }

        /// DELTA_BINARY_PACKED of any u64 column (any deltas, any length
        /// around the 32-value miniblocks and 128-value blocks) reads back.
        #[test]
        fn delta_encoded_ids_read_back(steps in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..700), start in proptest::prelude::any::<u64>()) {
            let ids: Vec<u64> = steps
                .iter()
                .scan(start, |v, s| {
                    // Mostly +1, sometimes any jump, as sample ids go.
                    *v = if s % 5 == 0 { *s } else { v.wrapping_add(1) };
                    Some(*v)
                })
                .collect();
            let df = DataFrame::new(ids.len(), vec![Column::new("sample_id".into(), ids)]).unwrap();
            let back = read_back(&bytes_of(&df, ROW_GROUP));
            proptest::prop_assert!(back.equals_missing(&df));
        }
    }

    #[test]
    fn a_string_column_with_many_values_is_plain() {
        let many: Vec<String> = (0..SMALL_DICTIONARY + 1).map(|i| format!("v{i}")).collect();
        let few: Vec<&str> = (0..500).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
        let s = Utf8ViewArray::from_slice_values(many.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(small_dictionary(&s).is_none());
        let d = small_dictionary(&Utf8ViewArray::from_slice_values(few)).unwrap().unwrap();
        let d = d.as_any().downcast_ref::<DictionaryArray<u32>>().unwrap();
        assert_eq!(d.values().len(), 2);
        assert_eq!(d.keys().values().iter().take(4).copied().collect::<Vec<_>>(), vec![0, 1, 0, 1]);
        // Names that cycle, as the metrics table's do, and a repeat.
        let cycle = ["mean", "var", "w2", "mean", "var", "var", "w2", "mean"];
        let d = small_dictionary(&Utf8ViewArray::from_slice_values(cycle)).unwrap().unwrap();
        let d = d.as_any().downcast_ref::<DictionaryArray<u32>>().unwrap();
        assert_eq!(d.keys().values().iter().copied().collect::<Vec<_>>(), vec![0, 1, 2, 0, 1, 1, 2, 0]);
    }
}
