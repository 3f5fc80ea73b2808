//! The safetensors format, written by hand so the bytes are fixed (names
//! sorted, no metadata): an 8-byte little-endian header length, a JSON
//! header (padded with spaces to a multiple of 8), then the raw
//! little-endian data. Any safetensors reader (candle, PyTorch) loads it.

use std::collections::BTreeMap;

use candle_core::Var;

/// A network's named variables as a safetensors file.
pub fn from_vars(vars: &[(String, Var)]) -> candle_core::Result<Vec<u8>> {
    let mut named = Vec::with_capacity(vars.len());
    for (name, var) in vars {
        let t = var.as_tensor();
        named.push((name.clone(), t.dims().to_vec(), t.flatten_all()?.to_vec1::<f32>()?));
    }
    Ok(serialize(named))
}

/// How many numbers a network's variables hold.
pub fn parameter_count(vars: &[(String, Var)]) -> usize {
    vars.iter().map(|(_, v)| v.as_tensor().elem_count()).sum()
}

/// (name, shape, f32 values) -> file bytes.
pub fn serialize(tensors: Vec<(String, Vec<usize>, Vec<f32>)>) -> Vec<u8> {
    let sorted: BTreeMap<String, (Vec<usize>, Vec<f32>)> =
        tensors.into_iter().map(|(n, shape, v)| (n, (shape, v))).collect();
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, (shape, values)) in &sorted {
        let end = offset + values.len() * 4;
        header
            .insert(name.clone(), serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, values) in sorted.values() {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn candle_reads_what_we_write() {
        let bytes = super::serialize(vec![
            ("b".into(), vec![2], vec![1.0, -2.5]),
            ("a".into(), vec![1, 3], vec![0.5, 0.25, 4.0]),
        ]);
        let loaded = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu).unwrap();
        assert_eq!(loaded["a"].dims(), &[1, 3]);
        assert_eq!(loaded["a"].flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![0.5, 0.25, 4.0]);
        assert_eq!(loaded["b"].to_vec1::<f32>().unwrap(), vec![1.0, -2.5]);
    }
}
