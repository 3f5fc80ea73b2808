//! Host views of candle tensors for the fused ops: their f32 values
//! without a copy, new tensors shaped like old ones, parameters read out
//! and written back, gradients handed to candle.

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, Var};

pub fn error(op: &str, what: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: {what}"))
}

pub fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(error(op, "expects contiguous f32 tensors")),
    }
}

/// The three inputs of a three-tensor op as host slices.
pub fn f32_slices3<'a>(
    (s1, l1): (&'a CpuStorage, &Layout),
    (s2, l2): (&'a CpuStorage, &Layout),
    (s3, l3): (&'a CpuStorage, &Layout),
    op: &str,
) -> Result<(&'a [f32], &'a [f32], &'a [f32])> {
    Ok((f32_slice(s1, l1, op)?, f32_slice(s2, l2, op)?, f32_slice(s3, l3, op)?))
}

/// A tensor's host values without copying them (it is made contiguous
/// first, which is free when it already is).
pub fn with_host<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(f32_slice(s, layout, op)?),
        _ => Err(error(op, "runs on the CPU only")),
    }
}

pub fn tensor(v: Vec<f32>, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(v, like.shape(), like.device())
}

/// Whether backpropagation wants this input's gradient.
pub fn wanted(t: &Tensor) -> bool {
    t.is_variable() || t.track_op()
}

/// The values of a network's parameters on the host, in order (the host
/// training steps work on these and hand them back with `store_values`).
pub fn host_values(vars: &[(String, Var)]) -> Result<Vec<Vec<f32>>> {
    vars.iter().map(|(_, v)| v.as_tensor().flatten_all()?.to_vec1::<f32>()).collect()
}

/// Writes host values back into the parameters' tensors.
pub fn store_values(vars: &[(String, Var)], values: &[Vec<f32>]) -> Result<()> {
    for ((_, var), v) in vars.iter().zip(values) {
        let t = var.as_tensor();
        var.set(&Tensor::from_vec(v.clone(), t.shape(), t.device())?)?;
    }
    Ok(())
}

/// What a fused layer's backward pass gives: the gradient of its input
/// (None where the input needs none) and of its weight (in the weight's
/// own layout) and bias.
pub struct Grads {
    pub x: Option<Vec<f32>>,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// `g` as the candle op's three input gradients, shaped as `x`, `w`, `b`.
pub fn into_tensors(
    g: Grads,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let gx = g.x.map(|v| tensor(v, x)).transpose()?;
    Ok((gx, Some(tensor(g.w, w)?), Some(tensor(g.b, b)?)))
}
