//! Host-side pieces of the fused network ops (the VAE's, the transformer's,
//! the dense layer), by idea: host views of tensors, elementary functions,
//! gemm, a dense layer's loops. The SIMD loop macro is crate-wide
//! ([`crate::simd`]).

mod gemm;
mod host;
mod layer;
mod math;

pub(crate) use crate::simd::wide;
pub use gemm::{matmul, product, Mat, Threads};
pub use host::*;
pub use layer::*;
pub use math::{exp_fast, ln_1p_unit};
