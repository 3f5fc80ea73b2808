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

use polars::prelude::{Column, DataType, PlHashMap};
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::parquet::page::{DataPage, DataPageHeader, DataPageHeaderV1, DictPage, Page};
use polars_parquet::parquet::schema::types::PrimitiveType;
use polars_parquet::parquet::schema::Repetition;
use polars_parquet::parquet::statistics::ParquetStatistics;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::Encoding;

use crate::simd;

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
            Some(plain_f64_pages(series.f64().ok()?.cont_slice().ok()?.get(offset..offset + len)?, type_))
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

/// Dictionary-encoded keys from their runs (run length, key): RLE runs
/// where the runs are long (a row a run in eight or fewer), else the
/// format's hybrid of RLE for long runs and bit-packed groups of eight
/// keys for the short ones between them.
fn keys_page(runs: &[(usize, u32)], entries: usize, len: usize, type_: &PrimitiveType, st: ParquetStatistics) -> Page {
    let width = bit_width(entries.saturating_sub(1) as u64);
    let key_bytes = width.div_ceil(8) as usize;
    let mut out = page_buffer(len, type_, runs.len() * (6 + key_bytes) + 1);
    out.push(width as u8);
    if runs.len() <= len / 8 + 1 {
        for &(count, key) in runs {
            uleb(&mut out, (count as u64) << 1);
            out.extend_from_slice(&key.to_le_bytes()[..key_bytes]);
        }
    } else {
        hybrid_keys(runs, width, &mut out);
    }
    data_page(out, len, Encoding::RleDictionary, st, type_)
}

/// A run this long or longer is written as an RLE run in the hybrid.
const RLE_RUN: usize = 16;

/// The RLE / bit-packed hybrid of keys given as runs. Bit-packed groups
/// hold eight keys: before an RLE run the pending short runs are topped
/// up to a whole group from it, and only the last group is padded.
fn hybrid_keys(runs: &[(usize, u32)], width: u32, out: &mut Vec<u8>) {
    let key_bytes = width.div_ceil(8) as usize;
    let mut pending: Vec<u32> = Vec::new();
    let flush = |pending: &mut Vec<u32>, out: &mut Vec<u8>| {
        if pending.is_empty() {
            return;
        }
        let groups = pending.len().div_ceil(8);
        uleb(out, ((groups as u64) << 1) | 1);
        pending.resize(groups * 8, 0);
        let (mut acc, mut bits) = (0u64, 0u32);
        for &k in pending.iter() {
            acc |= u64::from(k) << bits;
            bits += width;
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
        pending.clear();
    };
    for &(count, key) in runs {
        if count >= RLE_RUN {
            let fill = (8 - pending.len() % 8) % 8;
            pending.extend(std::iter::repeat_n(key, fill));
            flush(&mut pending, out);
            uleb(out, ((count - fill) as u64) << 1);
            out.extend_from_slice(&key.to_le_bytes()[..key_bytes]);
        } else {
            pending.extend(std::iter::repeat_n(key, count));
        }
    }
    flush(&mut pending, out);
}

/// One value for every row: a one-entry dictionary and a single run.
fn constant(dictionary: Vec<u8>, st: ParquetStatistics, len: usize, type_: &PrimitiveType) -> Vec<Page> {
    vec![Page::Dict(DictPage::new(CowBuffer::Owned(dictionary), 1, false)), keys_page(&[(len, 0)], 1, len, type_, st)]
}

/// A u32 column made of long runs (rows grouped by replicate): see
/// [`u32_runs`]. `None` when the runs are short or the values many:
/// that is polars' case.
pub(super) fn runs_u32(x: &[u32], type_: &PrimitiveType) -> Option<Vec<Page>> {
    let mut runs: Vec<(usize, u32)> = Vec::new();
    let mut i = 0;
    while i < x.len() {
        let count = super::run_length(x, i);
        runs.push((count, x[i]));
        if runs.len() > x.len() / 8 + 1 {
            return None;
        }
        i += count;
    }
    u32_runs(&runs, type_)
}

/// A u32 column given as runs of one value (rows, value), as a run's
/// tables have them (a replicate's rows, a constant): a dictionary of its
/// values in order of appearance, stored as INT32 (the UINT_32 logical
/// type) as polars writes them, and the keys from their runs
/// ([`keys_page`]), without a value a row. `None` when there are no rows
/// or the values are many.
pub(super) fn u32_runs(runs: &[(usize, u32)], type_: &PrimitiveType) -> Option<Vec<Page>> {
    let len: usize = runs.iter().map(|r| r.0).sum();
    if len == 0 {
        return None;
    }
    let mut keys: Vec<(usize, u32)> = Vec::with_capacity(runs.len());
    let mut values: Vec<u32> = Vec::new();
    // foldhash, not SipHash: four tables a generation look up a key per run.
    let mut index: PlHashMap<u32, u32> = PlHashMap::default();
    for &(count, v) in runs.iter().filter(|r| r.0 > 0) {
        let key = *index.entry(v).or_insert_with(|| {
            values.push(v);
            values.len() as u32 - 1
        });
        match keys.last_mut() {
            Some(last) if last.1 == key => last.0 += count,
            _ => keys.push((count, key)),
        }
        if values.len() > MAX_DICTIONARY {
            return None;
        }
    }
    let dictionary: Vec<u8> = values.iter().flat_map(|v| (*v as i32).to_le_bytes()).collect();
    Some(vec![
        Page::Dict(DictPage::new(CowBuffer::Owned(dictionary), values.len(), false)),
        keys_page(&keys, values.len(), len, type_, int_stats(&values)),
    ])
}

/// Statistics of u32 values stored as INT32.
fn int_stats(v: &[u32]) -> ParquetStatistics {
    let (lo, hi) = (v.iter().min().copied().unwrap_or(0), v.iter().max().copied().unwrap_or(0));
    stats((lo as i32).to_le_bytes().to_vec(), (hi as i32).to_le_bytes().to_vec())
}

/// DELTA_BINARY_PACKED, blocks of 128 deltas in four miniblocks of 32.
/// Ids that count up give deltas of 1 everywhere but at a replicate's
/// first row, so almost every miniblock is zero bits wide; the one that
/// holds a replicate's jump is packed through a register, eight bytes at
/// a time. Built wide (u64 min/max and compares need AVX-512 to vectorize);
/// integer work, so both builds write the same bytes.
pub(super) fn delta_u64(x: &[u64], type_: &PrimitiveType) -> Page {
    let mut out = page_buffer(x.len(), type_, 32 + x.len() / 8);
    let (lo, hi) = delta_blocks(x, &mut out);
    let st = stats((lo as i64).to_le_bytes().to_vec(), (hi as i64).to_le_bytes().to_vec());
    data_page(out, x.len(), Encoding::DeltaBinaryPacked, st, type_)
}

const BLOCK: usize = 128;
const MINI: usize = 32;

simd::wide! {
    /// The encoded values after the page's levels; returns the column's
    /// (min, max) for the statistics.
    fn delta_blocks / delta_blocks_plain(x: &[u64], out: &mut Vec<u8>) -> (u64, u64) {
        delta_header(x.len(), x[0], out);
        let lo = x.iter().copied().fold(u64::MAX, u64::min);
        let hi = x.iter().copied().fold(0, u64::max);
        let mut block = [0u64; BLOCK];
        for start in (1..x.len()).step_by(BLOCK) {
            let end = (start + BLOCK).min(x.len());
            let block = &mut block[..end - start];
            for (d, w) in block.iter_mut().zip(x[start - 1..end].windows(2)) {
                *d = w[1].wrapping_sub(w[0]);
            }
            delta_block(block, out);
        }
        (lo, hi)
    }
}

fn delta_header(len: usize, first: u64, out: &mut Vec<u8>) {
    uleb(out, BLOCK as u64);
    uleb(out, (BLOCK / MINI) as u64);
    uleb(out, len as u64);
    uleb(out, zigzag(first as i64));
}

/// One block of up to 128 deltas: its minimum, the four miniblocks' bit
/// widths, then the miniblocks packed.
#[inline(always)]
fn delta_block(block: &[u64], out: &mut Vec<u8>) {
    // Deltas are signed: the minimum is taken as i64, and each delta
    // is stored as its (wrapping) distance above it.
    let min = block.iter().map(|&d| d as i64).fold(i64::MAX, i64::min);
    let widths = block_head(min, out, |m| {
        let mini = block.get(m * MINI..).map_or(&[][..], |b| &b[..b.len().min(MINI)]);
        mini.iter().map(|d| d.wrapping_sub(min as u64)).fold(0, u64::max)
    });
    for (m, &width) in widths.iter().enumerate() {
        if width > 0 {
            pack_miniblock(&block[m * MINI..], min as u64, width, out);
        }
    }
}

/// A block's minimum delta and its miniblocks' bit widths, from the
/// largest distance above the minimum in each (`top`); returns the widths.
#[inline(always)]
fn block_head(min: i64, out: &mut Vec<u8>, top: impl Fn(usize) -> u64) -> [u32; BLOCK / MINI] {
    uleb(out, zigzag(min));
    let widths: [u32; BLOCK / MINI] = std::array::from_fn(|m| bit_width(top(m)));
    out.extend(widths.iter().map(|w| *w as u8));
    widths
}

/// `delta_block` of the `len` deltas from row `start` on, all 1 but at the
/// given jumps (row, delta), without looking at every delta: the block's
/// minimum and each miniblock's width follow from the jumps, and only a
/// miniblock that needs bits is filled in and packed (the one holding a
/// jump, in ids that count up).
fn ones_block(start: usize, len: usize, jumps: &[(usize, u64)], out: &mut Vec<u8>) {
    let ones = len > jumps.len();
    let min = jumps.iter().map(|&(_, d)| d as i64).fold(if ones { 1 } else { i64::MAX }, i64::min);
    let bounds = |m: usize| (start + m * MINI, start + ((m + 1) * MINI).min(len));
    let in_mini = |m: usize| {
        let (lo, hi) = bounds(m);
        jumps.iter().filter(move |(at, _)| (lo..hi).contains(at))
    };
    let widths = block_head(min, out, |m| {
        let (lo, hi) = bounds(m);
        let has_one = hi > lo && hi - lo > in_mini(m).count();
        in_mini(m)
            .map(|&(_, d)| d.wrapping_sub(min as u64))
            .fold(if has_one { 1u64.wrapping_sub(min as u64) } else { 0 }, u64::max)
    });
    for (m, &width) in widths.iter().enumerate() {
        if width > 0 {
            let (lo, hi) = bounds(m);
            let mut mini = [1u64; MINI];
            for &(at, d) in in_mini(m) {
                mini[at - lo] = d;
            }
            pack_miniblock(&mini[..hi - lo], min as u64, width, out);
        }
    }
}

/// `delta_u64` of ids given as runs of consecutive values (first id,
/// count), as a generation's blocks give them: the same bytes, without
/// the ids. Inside a run every delta is 1; a run's first row carries the
/// jump from the previous run's last id. `None` for no rows.
pub(super) fn delta_runs(runs: &[(u64, u64)], type_: &PrimitiveType) -> Option<Page> {
    let runs: Vec<(u64, u64)> = runs.iter().copied().filter(|r| r.1 > 0).collect();
    let n = runs.iter().map(|r| r.1).sum::<u64>() as usize;
    let last = |r: &(u64, u64)| r.0.wrapping_add(r.1 - 1);
    let first = runs.first()?.0;
    // Within a run ids count up: its first is its least, its last its greatest.
    let lo = runs.iter().map(|r| r.0).min()?;
    let hi = runs.iter().map(last).max()?;
    let mut out = page_buffer(n, type_, 32 + n / 8);
    delta_header(n, first, &mut out);
    let mut jumps = Vec::with_capacity(runs.len());
    let mut row = 0usize;
    for w in runs.windows(2) {
        row += w[0].1 as usize;
        jumps.push((row, w[1].0.wrapping_sub(last(&w[0]))));
    }
    // Jumps come in row order: each block takes the next few.
    let mut rest = &jumps[..];
    for start in (1..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let here = rest.iter().take_while(|(at, _)| *at < end).count();
        ones_block(start, end - start, &rest[..here], &mut out);
        rest = &rest[here..];
    }
    let st = stats((lo as i64).to_le_bytes().to_vec(), (hi as i64).to_le_bytes().to_vec());
    Some(data_page(out, n, Encoding::DeltaBinaryPacked, st, type_))
}

/// 32 values (fewer at the column's end: zeros pad), each `width` bits
/// above `min`, LSB first: exactly 4 * width bytes.
#[inline(always)]
fn pack_miniblock(deltas: &[u64], min: u64, width: u32, out: &mut Vec<u8>) {
    let mut buf = [0u8; MINI * 8];
    let (mut acc, mut bits, mut at) = (0u128, 0u32, 0usize);
    for j in 0..MINI {
        let v = deltas.get(j).map_or(0, |d| d.wrapping_sub(min));
        acc |= u128::from(v) << bits;
        bits += width;
        if bits >= 64 {
            buf[at..at + 8].copy_from_slice(&(acc as u64).to_le_bytes());
            (acc, bits, at) = (acc >> 64, bits - 64, at + 8);
        }
    }
    // 32 * width bits: whole words, and half a word when width is odd.
    let tail = (bits / 8) as usize;
    buf[at..at + tail].copy_from_slice(&(acc as u64).to_le_bytes()[..tail]);
    out.extend_from_slice(&buf[..at + tail]);
}

simd::wide! {
    /// Min, max and whether any value is NaN, over sixteen lanes.
    ///
    /// NaN is found from the bits: |v|'s bits exceed infinity's only for a
    /// NaN, so a running integer max per lane suffices. A running flag per
    /// lane (`nan |= v.is_nan()`) made the compiler shuffle masks across
    /// lanes every step: 16.5 us for 20,000 values against 0.9 us this way.
    fn min_max_f64 / min_max_f64_plain(x: &[f64]) -> (f64, f64, bool) {
        const LANES: usize = 16;
        const ABS: u64 = !(1 << 63);
        let mut lo = [f64::INFINITY; LANES];
        let mut hi = [f64::NEG_INFINITY; LANES];
        let mut mag = [0u64; LANES];
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for j in 0..LANES {
                let v = c[j];
                lo[j] = if v < lo[j] { v } else { lo[j] };
                hi[j] = if v > hi[j] { v } else { hi[j] };
                mag[j] = mag[j].max(v.to_bits() & ABS);
            }
        }
        for (j, &v) in rest.iter().enumerate() {
            lo[j] = if v < lo[j] { v } else { lo[j] };
            hi[j] = if v > hi[j] { v } else { hi[j] };
            mag[j] = mag[j].max(v.to_bits() & ABS);
        }
        let lo = lo.iter().fold(f64::INFINITY, |a, &b| if b < a { b } else { a });
        let hi = hi.iter().fold(f64::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        (lo, hi, mag.iter().any(|&m| m > f64::INFINITY.to_bits()))
    }
}

/// Booleans a bit each, LSB first: PLAIN booleans and width-1 keys.
fn pack_bits(x: &[bool], out: &mut Vec<u8>) {
    out.extend(x.chunks(8).map(|c| c.iter().rev().fold(0u8, |byte, &v| (byte << 1) | u8::from(v))));
}

/// A column whose value follows a flag (`values`: unflagged, flagged;
/// a filter's weights and copies under `drop`): a two-entry dictionary
/// whose keys are the flags themselves, one bit-packed run; a constant
/// where every flag is the same. `entry` writes a dictionary entry,
/// `statistics` reads the values present.
fn by_flag<T: Copy>(
    flags: &[bool],
    values: [T; 2],
    entry: impl Fn(T) -> Vec<u8>,
    statistics: impl Fn(&[T]) -> ParquetStatistics,
    type_: &PrimitiveType,
) -> Option<Vec<Page>> {
    let (any_set, all_set) = (flags.iter().any(|&f| f), flags.iter().all(|&f| f));
    if flags.is_empty() || !any_set || all_set || entry(values[0]) == entry(values[1]) {
        let v = values[usize::from(any_set)];
        return (!flags.is_empty()).then(|| constant(entry(v), statistics(&[v]), flags.len(), type_));
    }
    let mut out = page_buffer(flags.len(), type_, flags.len().div_ceil(8) + 8);
    out.push(1);
    uleb(&mut out, ((flags.len().div_ceil(8) as u64) << 1) | 1);
    pack_bits(flags, &mut out);
    let dictionary: Vec<u8> = values.iter().flat_map(|&v| entry(v)).collect();
    Some(vec![
        Page::Dict(DictPage::new(CowBuffer::Owned(dictionary), 2, false)),
        data_page(out, flags.len(), Encoding::RleDictionary, statistics(&values), type_),
    ])
}

/// [`by_flag`] of u32 values (copies), stored as INT32.
pub(super) fn u32_by_flag(flags: &[bool], values: [u32; 2], type_: &PrimitiveType) -> Option<Vec<Page>> {
    by_flag(flags, values, |v| (v as i32).to_le_bytes().to_vec(), int_stats, type_)
}

/// [`by_flag`] of floats (weights).
pub(super) fn f64_by_flag(flags: &[bool], values: [f64; 2], type_: &PrimitiveType) -> Option<Vec<Page>> {
    by_flag(flags, values, |v| v.to_le_bytes().to_vec(), float_stats, type_)
}

/// Booleans as PLAIN writes them, a bit a row (LSB first), with polars'
/// statistics (a byte each for min and max).
pub(super) fn plain_bool(x: &[bool], type_: &PrimitiveType) -> Page {
    let mut out = page_buffer(x.len(), type_, x.len().div_ceil(8));
    pack_bits(x, &mut out);
    let st = stats(vec![u8::from(x.iter().all(|&v| v))], vec![u8::from(x.iter().any(|&v| v))]);
    data_page(out, x.len(), Encoding::Plain, st, type_)
}

/// Floats with nulls (a filter's scores, null where it judged nothing):
/// definition levels as RLE runs, the values PLAIN, statistics as
/// [`plain_f64`] takes them over the values; in pages of
/// `FLOAT_PAGE_ROWS`. `x` holds a value a row, `defined` the rows as runs
/// (count, defined) in order (rows past its runs are null). `None` for a
/// required field, which has no levels to mark a null with.
pub(super) fn optional_f64_pages(x: &[f64], defined: &[(usize, bool)], type_: &PrimitiveType) -> Option<Vec<Page>> {
    let mut runs = defined.iter().copied().filter(|r| r.0 > 0);
    let mut carry = None;
    let mut pages = Vec::with_capacity(x.len().div_ceil(FLOAT_PAGE_ROWS));
    for chunk in x.chunks(FLOAT_PAGE_ROWS) {
        let mut levels: Vec<(usize, bool)> = Vec::new();
        let mut values = Vec::with_capacity(chunk.len());
        let mut at = 0;
        while at < chunk.len() {
            let (n, d) = carry.take().or_else(|| runs.next()).unwrap_or((chunk.len() - at, false));
            let take = n.min(chunk.len() - at);
            if take < n {
                carry = Some((n - take, d));
            }
            match levels.last_mut() {
                Some(last) if last.1 == d => last.0 += take,
                _ => levels.push((take, d)),
            }
            if d {
                values.extend_from_slice(&chunk[at..at + take]);
            }
            at += take;
        }
        pages.push(levels_f64(&levels, &values, type_)?);
    }
    Some(pages)
}

/// [`optional_f64_pages`]' page of `len` nulls (a detector's scores).
pub(super) fn null_f64(len: usize, type_: &PrimitiveType) -> Option<Page> {
    levels_f64(&[(len, false)], &[], type_)
}

/// A page of [`optional_f64_pages`] from its definition levels as runs
/// (rows, defined) and the defined values.
fn levels_f64(defined: &[(usize, bool)], values: &[f64], type_: &PrimitiveType) -> Option<Page> {
    if type_.field_info.repetition != Repetition::Optional {
        return None;
    }
    let len: usize = defined.iter().map(|r| r.0).sum();
    let mut levels = Vec::with_capacity(defined.len() * 4);
    for &(count, d) in defined {
        uleb(&mut levels, (count as u64) << 1);
        levels.push(u8::from(d));
    }
    let mut out = Vec::with_capacity(4 + levels.len() + values.len() * 8);
    out.extend_from_slice(&(levels.len() as u32).to_le_bytes());
    out.extend_from_slice(&levels);
    // Sized once and filled in place (a copy on little-endian machines),
    // not a capacity check a value.
    let start = out.len();
    out.resize(start + values.len() * 8, 0);
    for (o, v) in out[start..].chunks_exact_mut(8).zip(values) {
        o.copy_from_slice(&v.to_le_bytes());
    }
    let nulls = Some((len - values.len()) as i64);
    let st = if values.is_empty() {
        ParquetStatistics { null_count: nulls, max_value: None, min_value: None, ..stats(Vec::new(), Vec::new()) }
    } else {
        ParquetStatistics { null_count: nulls, ..float_stats(values) }
    };
    Some(data_page(out, len, Encoding::Plain, st, type_))
}

/// Floats in pages of `FLOAT_PAGE_ROWS`.
pub(super) fn plain_f64_pages(x: &[f64], type_: &PrimitiveType) -> Vec<Page> {
    x.chunks(FLOAT_PAGE_ROWS).map(|c| plain_f64(c, type_)).collect()
}

/// Floats as they are (PLAIN), with polars' statistics: NaN when any value
/// is NaN, and the signed zeros the Parquet specification asks for.
fn plain_f64(x: &[f64], type_: &PrimitiveType) -> Page {
    let mut out = page_buffer(x.len(), type_, x.len() * 8);
    let start = out.len();
    out.resize(start + x.len() * 8, 0);
    for (o, v) in out[start..].chunks_exact_mut(8).zip(x) {
        o.copy_from_slice(&v.to_le_bytes());
    }
    data_page(out, x.len(), Encoding::Plain, float_stats(x), type_)
}

/// polars' statistics of floats: NaN when any value is NaN, and the
/// signed zeros the Parquet specification asks for.
fn float_stats(x: &[f64]) -> ParquetStatistics {
    let (lo, hi, nan) = min_max_f64(x);
    let (lo, hi) = if nan { (f64::NAN, f64::NAN) } else { (lo, hi) };
    let lo = if lo == 0.0 { -0.0 } else { lo };
    let hi = if hi == 0.0 { 0.0 } else { hi };
    stats(lo.to_le_bytes().to_vec(), hi.to_le_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_statistics_are_the_same_from_the_wide_and_plain_builds() {
        for n in [1usize, 7, 8, 9, 15, 16, 17, 33, 1000] {
            let x: Vec<f64> = (0..n).map(|i| ((i * 37 % 101) as f64 - 50.0) * 0.25).collect();
            let (a, b) = (min_max_f64(&x), min_max_f64_plain(&x));
            assert_eq!((a.0.to_bits(), a.1.to_bits(), a.2), (b.0.to_bits(), b.1.to_bits(), b.2));
            let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((a.0, a.1, a.2), (lo, hi, false), "n = {n}");
        }
        // Infinities are values, not NaN; a NaN of either sign is found in
        // the sixteen-wide part and in the remainder alike.
        let x = vec![f64::NEG_INFINITY, 1.0, f64::INFINITY];
        assert_eq!(min_max_f64(&x), (f64::NEG_INFINITY, f64::INFINITY, false));
        for at in [0, 13, 15, 16, 19] {
            for nan in [f64::NAN, -f64::NAN] {
                let mut x = vec![1.0; 20];
                x[at] = nan;
                assert!(min_max_f64(&x).2, "NaN at {at}");
                assert!(min_max_f64_plain(&x).2, "NaN at {at}");
                assert_eq!(min_max_f64(&x).0, 1.0, "NaN is no minimum");
            }
        }
    }

    /// The packing against the format's definition, value by value: bit
    /// `j * width + b` of the miniblock is bit `b` of value `j`. Widths 1 to
    /// 64, odd ones leaving half a word, and a short last miniblock.
    #[test]
    fn miniblocks_pack_lsb_first() {
        for width in 1..=64u32 {
            for n in [32usize, 5] {
                let mask = if width == 64 { u64::MAX } else { (1 << width) - 1 };
                let v: Vec<u64> = (0..n as u64).map(|j| j.wrapping_mul(0x9E37_79B9_7F4A_7C15) & mask).collect();
                let mut out = Vec::new();
                pack_miniblock(&v, 0, width, &mut out);
                assert_eq!(out.len(), 4 * width as usize, "width {width}");
                for j in 0..32 {
                    let want = v.get(j).copied().unwrap_or(0);
                    let got = (0..width as usize).fold(0u64, |acc, b| {
                        let bit = j * width as usize + b;
                        acc | (u64::from(out[bit / 8] >> (bit % 8) & 1) << b)
                    });
                    assert_eq!(got, want, "width {width}, value {j} of {n}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Integer work: the wide and plain builds of the delta encoding
        /// write the same bytes and find the same min and max.
        #[test]
        fn delta_blocks_are_the_same_from_the_wide_and_plain_builds(x in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..600)) {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ends = (delta_blocks(&x, &mut a), delta_blocks_plain(&x, &mut b));
            proptest::prop_assert_eq!(a, b);
            proptest::prop_assert_eq!(ends.0, ends.1);
            proptest::prop_assert_eq!(ends.0, (*x.iter().min().unwrap(), *x.iter().max().unwrap()));
        }
    }

    /// The format's RLE / bit-packed hybrid read back by its definition
    /// (a header's low bit: 0 RLE run of `header >> 1` copies of one
    /// key, 1 `header >> 1` groups of eight keys bit-packed LSB first).
    fn decode_hybrid(mut b: &[u8], width: u32, len: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let key_bytes = width.div_ceil(8) as usize;
        while out.len() < len {
            let (mut header, mut shift) = (0u64, 0);
            loop {
                let byte = b[0];
                b = &b[1..];
                header |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    break;
                }
            }
            if header & 1 == 0 {
                let mut key = [0u8; 4];
                key[..key_bytes].copy_from_slice(&b[..key_bytes]);
                b = &b[key_bytes..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(key), (header >> 1) as usize));
            } else {
                let n = (header >> 1) as usize * 8;
                let bytes = &b[..n * width as usize / 8];
                b = &b[n * width as usize / 8..];
                for j in 0..n {
                    let key = (0..width as usize).fold(0u32, |acc, bit| {
                        let at = j * width as usize + bit;
                        acc | (u32::from(bytes[at / 8] >> (at % 8) & 1) << bit)
                    });
                    out.push(key);
                }
            }
        }
        assert!(b.is_empty(), "{} bytes left", b.len());
        out.truncate(len);
        out
    }

    proptest::proptest! {
        /// Runs of any length (long ones RLE, short ones bit-packed, the
        /// group before a long run topped up from it) read back as the
        /// keys they stand for, at every key width a dictionary has.
        #[test]
        fn hybrid_keys_read_back(runs in proptest::collection::vec((1usize..40, 0u32..1 << 17), 1..60), width in 1u32..18) {
            let runs: Vec<(usize, u32)> = runs.into_iter().map(|(c, k)| (c, k & ((1 << width) - 1))).collect();
            let mut out = Vec::new();
            hybrid_keys(&runs, width, &mut out);
            let want: Vec<u32> = runs.iter().flat_map(|&(c, k)| std::iter::repeat_n(k, c)).collect();
            proptest::prop_assert_eq!(decode_hybrid(&out, width, want.len()), want);
        }
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
