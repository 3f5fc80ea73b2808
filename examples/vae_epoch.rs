//! Times VAE training epochs on MNIST, for benches/peer_torch_vae.py:
//! `vae_epoch IMAGES.idx.gz N ARCH EPOCHS BATCH` prints one JSON line with
//! the seconds of each epoch and the final mean loss.

use std::time::Instant;

use collapse::model::{Arch, Vae, VaeSettings};
use collapse::rng::Rng;
use collapse::values::Values;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// As the `collapse` binary: mimalloc, and freed memory kept for reuse.
fn keep_freed_memory() {
    // `mi_option_purge_delay` in the bundled mimalloc.h (v2 and v3), which
    // libmimalloc-sys does not name.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a process-wide integer option; no pointers involved.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

fn main() -> anyhow::Result<()> {
    keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 6, "usage: vae_epoch IMAGES N ARCH(conv|mlp) EPOCHS BATCH");
    let Values::Images { h, w, pixels, .. } = collapse::data::idx::read(args[1].as_ref(), None)? else {
        anyhow::bail!("not images");
    };
    let n: usize = args[2].parse()?;
    let pixels = &pixels[..n * h * w];
    let arch = if args[3] == "mlp" { Arch::Mlp } else { Arch::Conv };
    let epochs: usize = args[4].parse()?;
    let batch: usize = args[5].parse()?;
    let mut times = Vec::new();
    let mut loss = 0.0;
    for e in 0..epochs {
        // One epoch per fit, timed alone; the seed moves so each differs.
        let s = VaeSettings { arch, epochs: 1, batch, ..VaeSettings::default() };
        let t = Instant::now();
        let v = Vae::fit(pixels, h, w, &s, &mut Rng::from_seed(e as u64), &collapse::progress::unwatched)?;
        times.push(t.elapsed().as_secs_f64());
        loss = v.epoch_loss[0];
    }
    println!("{}", serde_json::json!({ "epoch_s": times, "loss": loss, "images": n, "batch": batch, "arch": args[3] }));
    Ok(())
}
