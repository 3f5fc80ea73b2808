//! `kind = "vae"`: a variational autoencoder for images, the paper's
//! convolutional one or a quick MLP.

use std::path::Path;

use toml::{Table, Value};

use crate::keys::{int, string, Family, Keys};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// The paper's: conv 1->64->128 (4x4, stride 2), mirrored decoder.
    Conv,
    /// pixels-hidden-latent, for quick runs.
    Mlp,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Conv => "conv",
            Arch::Mlp => "mlp",
        }
    }
}

/// Validated VAE settings (pipeline keys under [model]).
#[derive(Clone, Debug, PartialEq)]
pub struct VaeSettings {
    pub arch: Arch,
    pub latent: usize,
    /// Hidden width of the MLP variant.
    pub hidden: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub beta: f64,
}

impl Default for VaeSettings {
    /// The paper's settings.
    fn default() -> Self {
        VaeSettings {
            arch: Arch::Conv,
            latent: 20,
            hidden: 400,
            epochs: 30,
            batch: 256,
            lr: 1e-3,
            weight_decay: 1e-5,
            beta: 1.0,
        }
    }
}

impl Family for VaeSettings {
    const KIND: &'static str = "vae";
    const KEYS: &'static [&'static str] =
        &["arch", "latent", "hidden", "epochs", "batch-size", "lr", "weight-decay", "beta"];

    fn read(keys: &mut impl Keys, _base: &Path) -> Option<Self> {
        let d = VaeSettings::default();
        let arch: String = keys.opt("arch").unwrap_or_else(|| d.arch.name().to_string());
        let latent: u64 = keys.opt("latent").unwrap_or(d.latent as u64);
        let hidden: u64 = keys.opt("hidden").unwrap_or(d.hidden as u64);
        let epochs: u64 = keys.opt("epochs").unwrap_or(d.epochs as u64);
        let batch: u64 = keys.opt("batch-size").unwrap_or(d.batch as u64);
        let lr: f64 = keys.opt("lr").unwrap_or(d.lr);
        let weight_decay: f64 = keys.opt("weight-decay").unwrap_or(d.weight_decay);
        let beta: f64 = keys.opt("beta").unwrap_or(d.beta);
        let mut ok = true;
        let arch = match arch.as_str() {
            "conv" => Arch::Conv,
            "mlp" => Arch::Mlp,
            other => {
                keys.problem(
                    "arch",
                    &format!("unknown value {other:?}; use \"conv\" (the paper's) or \"mlp\" (quick)"),
                );
                ok = false;
                Arch::Conv
            }
        };
        for (key, v, hi) in [
            ("latent", latent, 4096),
            ("hidden", hidden, 65536),
            ("epochs", epochs, 100_000),
            ("batch-size", batch, 1 << 20),
        ] {
            if !(1..=hi).contains(&v) {
                keys.problem(key, &format!("must be in [1, {hi}], got {v}"));
                ok = false;
            }
        }
        for (key, v) in [("lr", lr), ("beta", beta)] {
            if !(v > 0.0 && v.is_finite()) {
                keys.problem(key, &format!("must be a finite number > 0, got {v}"));
                ok = false;
            }
        }
        if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
            keys.problem("weight-decay", &format!("must be a finite number >= 0, got {weight_decay}"));
            ok = false;
        }
        ok.then_some(VaeSettings {
            arch,
            latent: latent as usize,
            hidden: hidden as usize,
            epochs: epochs as usize,
            batch: batch as usize,
            lr,
            weight_decay,
            beta,
        })
    }

    fn write(&self, table: &mut Table) {
        table.insert("kind".into(), string(Self::KIND));
        table.insert("arch".into(), string(self.arch.name()));
        table.insert("latent".into(), int(self.latent));
        table.insert("hidden".into(), int(self.hidden));
        table.insert("epochs".into(), int(self.epochs));
        table.insert("batch-size".into(), int(self.batch));
        table.insert("lr".into(), Value::Float(self.lr));
        table.insert("weight-decay".into(), Value::Float(self.weight_decay));
        table.insert("beta".into(), Value::Float(self.beta));
    }
}
