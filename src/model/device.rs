//! Where networks run. The CPU unless the crate is built with the `cuda`
//! feature and a GPU is present; `COLLAPSE_DEVICE=cpu` forces the CPU.
//! Random numbers are drawn on the host by the project's RNG either way,
//! so a seed means the same draws on both; CUDA kernels sum in their own
//! order, so GPU results are not bit-identical to CPU results (the CPU path
//! is the reproducible one).

use std::sync::OnceLock;

use candle_core::Device;

static DEVICE: OnceLock<Device> = OnceLock::new();

pub fn device() -> &'static Device {
    DEVICE.get_or_init(|| {
        if std::env::var("COLLAPSE_DEVICE").is_ok_and(|v| v.eq_ignore_ascii_case("cpu")) {
            return Device::Cpu;
        }
        // Without the `cuda` feature candle reports no GPU and this is the CPU.
        match Device::cuda_if_available(0) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("no usable GPU ({e}); networks run on the CPU");
                Device::Cpu
            }
        }
    })
}

/// "cpu" or "cuda", for run.json.
pub fn name() -> &'static str {
    if device().is_cuda() {
        "cuda"
    } else {
        "cpu"
    }
}
