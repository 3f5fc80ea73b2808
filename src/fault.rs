//! Fault injection for the crash tests: `COLLAPSE_FAULT=<point>:<generation>`
//! makes a run stop at a chosen point so a test can kill it there (or, for
//! `enospc`, fail a write as a full disk would). Unset, it costs one lookup.
//!
//! Points: `pause-sample` (while chains sample generation k+1),
//! `pause-write` (a samples file of generation k written, not yet renamed),
//! `pause-between` (generation k sealed, k+1 not started), `enospc` (the
//! samples file of generation k fails with "no space left on device").

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    PauseSample,
    PauseWrite,
    PauseBetween,
    NoSpace,
}

fn armed() -> Option<(Point, u32)> {
    static FAULT: OnceLock<Option<(Point, u32)>> = OnceLock::new();
    *FAULT.get_or_init(|| {
        let v = std::env::var("COLLAPSE_FAULT").ok()?;
        let (point, k) = v.split_once(':')?;
        let point = match point {
            "pause-sample" => Point::PauseSample,
            "pause-write" => Point::PauseWrite,
            "pause-between" => Point::PauseBetween,
            "enospc" => Point::NoSpace,
            _ => return None,
        };
        Some((point, k.parse().ok()?))
    })
}

pub fn is(point: Point, generation: u32) -> bool {
    armed() == Some((point, generation))
}

/// Announces the pause on stderr and waits to be killed.
pub fn pause_if(point: Point, generation: u32) {
    if is(point, generation) {
        tracing::error!("fault injection: paused at {point:?} generation {generation}");
        eprintln!("COLLAPSE_FAULT_PAUSED");
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}
