//! Parquet pages built by hand for the column shapes a run writes millions
//! of times: a value fixed for the whole file (`origin`, `split`,
//! `model_generation`), long runs of one value (`replicate`), ids that
//! count up (`sample_id`) and plain floats (`x0`...). polars' general
//! encoders look at every row of these (hybrid RLE decisions per eight
//! keys, generic bit packing, a scalar min/max pass for the statistics);
//! here the work is per run, and the float statistics come from a wide
//! loop. The pages are ordinary Parquet (V1 data pages, dictionary pages,
//! RLE and DELTA_BINARY_PACKED as the format specifies them), read back by
//! polars, pyarrow and DuckDB in the tests; every other column goes through
//! polars' own encoders.

use polars::prelude::{Column, DataType};
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::parquet::page::{DataPage, DataPageHeader, DataPageHeaderV1, DictPage, Page};
use polars_parquet::parquet::schema::types::PrimitiveType;
use polars_parquet::parquet::schema::Repetition;
use polars_parquet::parquet::statistics::ParquetStatistics;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::Encoding;

use crate::model::kernels;

/// Rows per float page: 1 MiB of values, polars' own page size.
const FLOAT_PAGE_ROWS: usize = 1 << 17;
/// A column with more distinct values than this keeps polars' encoder.
const MAX_DICTIONARY: usize = 1 << 16;

/// The pages of rows `offset..offset + len` of `column`, when its shape is
/// one of those above and it has no nulls; `None` sends it to polars.
pub(super) fn known(column: &Column, offset: usize, len: usize, type_: &PrimitiveType) -> Option<Vec<Page>> {
    if len == 0 || column.has_nulls() {
        return None;
    }
    if let Some(scalar) = column.as_scalar_column() {
        let value = scalar.scalar().value();
        return match (value.extract_str(), scalar.dtype()) {
            (Some(s), _) => Some(constant(plain_bytes(s.as_bytes()), stats_bytes(s.as_bytes()), len, type_)),
            (None, DataType::UInt32) => {
                let v = value.extract::<u32>()? as i32;
                Some(constant(v.to_le_bytes().to_vec(), stats_bytes(&v.to_le_bytes()), len, type_))
            }
            _ => None,
        };
    }
    let series = column.as_materialized_series();
    match series.dtype() {
        DataType::UInt32 => runs_u32(series.u32().ok()?.cont_slice().ok()?.get(offset..offset + len)?, type_),
        DataType::UInt64 => {
            Some(vec![delta_u64(series.u64().ok()?.cont_slice().ok()?.get(offset..offset + len)?, type_)])
        }
        DataType::Float64 => {
            let x = series.f64().ok()?.cont_slice().ok()?.get(offset..offset + len)?;
            Some(x.chunks(FLOAT_PAGE_ROWS).map(|c| plain_f64(c, type_)).collect())
        }
        _ => None,
    }
}

/// A string as PLAIN byte-array encoding writes it: length, then bytes.
fn plain_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + b.len());
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
    out
}

fn stats_bytes(v: &[u8]) -> ParquetStatistics {
    stats(v.to_vec(), v.to_vec())
}

fn stats(min: Vec<u8>, max: Vec<u8>) -> ParquetStatistics {
    ParquetStatistics {
        null_count: Some(0),
        distinct_count: None,
        max_value: Some(max),
        min_value: Some(min),
        max: None,
        min: None,
        is_max_value_exact: None,
        is_min_value_exact: None,
    }
}

/// ULEB128, as RLE run headers and the delta encoding's header use it.
fn uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Bits to store values up to `max`.
fn bit_width(max: u64) -> u32 {
    64 - max.leading_zeros()
}

/// The start of a data page: V1 definition levels (all defined) for an
/// optional field, nothing for a required one.
fn page_buffer(len: usize, type_: &PrimitiveType, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity + 16);
    if type_.field_info.repetition == Repetition::Optional {
        let mut levels = Vec::with_capacity(12);
        uleb(&mut levels, (len as u64) << 1);
        levels.push(1);
        out.extend_from_slice(&(levels.len() as u32).to_le_bytes());
        out.extend_from_slice(&levels);
    }
    out
}

fn data_page(buffer: Vec<u8>, len: usize, encoding: Encoding, stats: ParquetStatistics, type_: &PrimitiveType) -> Page {
    let header = DataPageHeader::V1(DataPageHeaderV1 {
        num_values: len as i32,
        encoding: encoding.into(),
        definition_level_encoding: Encoding::Rle.into(),
        repetition_level_encoding: Encoding::Rle.into(),
        statistics: Some(stats),
    });
    let descriptor = Descriptor { primitive_type: type_.clone(), max_def_level: 0, max_rep_level: 0 };
    Page::Data(DataPage::new(header, CowBuffer::Owned(buffer), descriptor, len))
}

/// Dictionary-encoded keys as RLE runs: (run length, key) pairs.
fn keys_page(runs: &[(usize, u32)], entries: usize, len: usize, type_: &PrimitiveType, st: ParquetStatistics) -> Page {
    let width = bit_width(entries.saturating_sub(1) as u64);
    let key_bytes = width.div_ceil(8) as usize;
    let mut out = page_buffer(len, type_, runs.len() * (6 + key_bytes) + 1);
    out.push(width as u8);
    for &(count, key) in runs {
        uleb(&mut out, (count as u64) << 1);
        out.extend_from_slice(&key.to_le_bytes()[..key_bytes]);
    }
    data_page(out, len, Encoding::RleDictionary, st, type_)
}

/// One value for every row: a one-entry dictionary and a single run.
fn constant(dictionary: Vec<u8>, st: ParquetStatistics, len: usize, type_: &PrimitiveType) -> Vec<Page> {
    vec![Page::Dict(DictPage::new(CowBuffer::Owned(dictionary), 1, false)), keys_page(&[(len, 0)], 1, len, type_, st)]
}

/// A u32 column made of long runs (rows grouped by replicate): a
/// dictionary of its values in order of appearance, keys as runs. `None`
/// when the runs are short or the values many: that is polars' case.
fn runs_u32(x: &[u32], type_: &PrimitiveType) -> Option<Vec<Page>> {
    let mut runs: Vec<(usize, u32)> = Vec::new();
    let mut values: Vec<u32> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut i = 0;
    while i < x.len() {
        let v = x[i];
        let count = x[i..].iter().take_while(|&&y| y == v).count();
        let key = *index.entry(v).or_insert_with(|| {
            values.push(v);
            values.len() as u32 - 1
        });
        runs.push((count, key));
        if runs.len() > x.len() / 8 + 1 || values.len() > MAX_DICTIONARY {
            return None;
        }
        i += count;
    }
    // Stored as INT32 (the UINT_32 logical type), as polars writes u32.
    let dictionary: Vec<u8> = values.iter().flat_map(|v| (*v as i32).to_le_bytes()).collect();
    let (min, max) = (values.iter().min()?, values.iter().max()?);
    let st = stats((*min as i32).to_le_bytes().to_vec(), (*max as i32).to_le_bytes().to_vec());
    let entries = values.len();
    Some(vec![
        Page::Dict(DictPage::new(CowBuffer::Owned(dictionary), entries, false)),
        keys_page(&runs, entries, x.len(), type_, st),
    ])
}

/// DELTA_BINARY_PACKED, blocks of 128 deltas in four miniblocks of 32.
/// Ids that count up give deltas of 1 everywhere but at a replicate's
/// first row, so almost every miniblock is zero bits wide.
fn delta_u64(x: &[u64], type_: &PrimitiveType) -> Page {
    const BLOCK: usize = 128;
    const MINI: usize = 32;
    let mut out = page_buffer(x.len(), type_, 32 + x.len() / 8);
    uleb(&mut out, BLOCK as u64);
    uleb(&mut out, (BLOCK / MINI) as u64);
    uleb(&mut out, x.len() as u64);
    uleb(&mut out, zigzag(x[0] as i64));
    // The statistics' min and max come from the same pass as the deltas.
    let (mut lo, mut hi) = (x[0], x[0]);
    let mut block = [0i64; BLOCK];
    for start in (1..x.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(x.len());
        let block = &mut block[..end - start];
        for (d, i) in block.iter_mut().zip(start..end) {
            *d = (x[i] as i64).wrapping_sub(x[i - 1] as i64);
            (lo, hi) = (lo.min(x[i]), hi.max(x[i]));
        }
        let min = block.iter().copied().min().unwrap_or(0);
        uleb(&mut out, zigzag(min));
        if block.iter().all(|&d| d == min) {
            // Every delta the same (ids counting up): zero-width miniblocks.
            out.extend_from_slice(&[0; BLOCK / MINI]);
            continue;
        }
        let widths: [u32; BLOCK / MINI] = std::array::from_fn(|m| {
            let mini = block.get(m * MINI..).map_or(&[][..], |b| &b[..b.len().min(MINI)]);
            bit_width(mini.iter().map(|d| d.wrapping_sub(min) as u64).max().unwrap_or(0))
        });
        out.extend(widths.iter().map(|w| *w as u8));
        for (m, &width) in widths.iter().enumerate() {
            let Some(mini) = block.get(m * MINI..) else { break };
            if width == 0 {
                continue;
            }
            // LSB first; a partly filled last miniblock is padded with zeros.
            let mut acc: u128 = 0;
            let mut bits = 0;
            for j in 0..MINI {
                let v = mini.get(j).map_or(0, |d| d.wrapping_sub(min) as u64);
                acc |= (v as u128) << bits;
                bits += width;
                while bits >= 8 {
                    out.push(acc as u8);
                    acc >>= 8;
                    bits -= 8;
                }
            }
        }
    }
    let st = stats((lo as i64).to_le_bytes().to_vec(), (hi as i64).to_le_bytes().to_vec());
    data_page(out, x.len(), Encoding::DeltaBinaryPacked, st, type_)
}

kernels::wide! {
    /// Min, max and whether any value is NaN, over eight lanes.
    fn min_max_f64 / min_max_f64_plain(x: &[f64]) -> (f64, f64, bool) {
        let mut lo = [f64::INFINITY; 8];
        let mut hi = [f64::NEG_INFINITY; 8];
        let mut nan = [false; 8];
        let chunks = x.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for j in 0..8 {
                let v = c[j];
                lo[j] = if v < lo[j] { v } else { lo[j] };
                hi[j] = if v > hi[j] { v } else { hi[j] };
                nan[j] |= v.is_nan();
            }
        }
        for (j, &v) in rest.iter().enumerate() {
            lo[j] = if v < lo[j] { v } else { lo[j] };
            hi[j] = if v > hi[j] { v } else { hi[j] };
            nan[j] |= v.is_nan();
        }
        let lo = lo.iter().fold(f64::INFINITY, |a, &b| if b < a { b } else { a });
        let hi = hi.iter().fold(f64::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        (lo, hi, nan.iter().any(|&n| n))
    }
}

/// Floats as they are (PLAIN), with polars' statistics: NaN when any value
/// is NaN, and the signed zeros the Parquet specification asks for.
fn plain_f64(x: &[f64], type_: &PrimitiveType) -> Page {
    let mut out = page_buffer(x.len(), type_, x.len() * 8);
    for v in x {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let (lo, hi, nan) = min_max_f64(x);
    let (lo, hi) = if nan { (f64::NAN, f64::NAN) } else { (lo, hi) };
    let lo = if lo == 0.0 { -0.0 } else { lo };
    let hi = if hi == 0.0 { 0.0 } else { hi };
    let st = stats(lo.to_le_bytes().to_vec(), hi.to_le_bytes().to_vec());
    data_page(out, x.len(), Encoding::Plain, st, type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_statistics_are_the_same_from_the_wide_and_plain_builds() {
        for n in [1usize, 7, 8, 9, 1000] {
            let x: Vec<f64> = (0..n).map(|i| ((i * 37 % 101) as f64 - 50.0) * 0.25).collect();
            let (a, b) = (min_max_f64(&x), min_max_f64_plain(&x));
            assert_eq!((a.0.to_bits(), a.1.to_bits(), a.2), (b.0.to_bits(), b.1.to_bits(), b.2));
            let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((a.0, a.1, a.2), (lo, hi, false), "n = {n}");
        }
        let mut x = vec![1.0; 20];
        x[13] = f64::NAN;
        assert!(min_max_f64(&x).2);
    }

    #[test]
    fn uleb_and_zigzag_follow_the_format() {
        let mut out = Vec::new();
        uleb(&mut out, 300);
        assert_eq!(out, vec![0xac, 0x02]);
        assert_eq!((zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)), (0, 1, 2, 3));
        assert_eq!((bit_width(0), bit_width(1), bit_width(255), bit_width(256)), (0, 1, 8, 9));
    }
}
