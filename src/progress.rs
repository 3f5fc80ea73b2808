//! Where a run stands, for a progress display. The runner and the chains
//! tell a [`Tracker`] what they finished (a base epoch, a replicate's
//! training epoch, a replicate's stage, a generation); it turns that into
//! a fraction of the run and hands a [`Progress`] to the display, if any.
//! Chains run in parallel, so the state is atomic.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Where a network's training stands, told after every batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trained {
    /// The epoch under way, from 1.
    pub epoch: usize,
    pub epochs: usize,
    /// Share of all the training's batches done, in [0, 1].
    pub fraction: f64,
}

impl Trained {
    /// After batch `batch` (from 1) of `batches` in epoch `epoch` (from 0).
    pub fn after(epoch: usize, epochs: usize, batch: usize, batches: usize) -> Trained {
        let done = epoch * batches + batch;
        Trained { epoch: epoch + 1, epochs, fraction: done as f64 / (epochs * batches).max(1) as f64 }
    }
}

pub type TrainingHook<'a> = &'a (dyn Fn(Trained) + Sync);

/// For fits nobody watches.
pub fn unwatched(_: Trained) {}

/// What the run is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Pretraining the base model (text runs with `model.base-path`),
    /// before generation 0.
    Base,
    /// The generations themselves.
    Generations,
}

/// A snapshot for the display.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub phase: Phase,
    /// The generation being computed (0 ..= generations).
    pub generation: u32,
    pub generations: u32,
    /// Replicates whose stage of this generation is finished.
    pub replicates_done: u32,
    pub replicates: u32,
    /// Base phase: the epoch under way and the number of epochs.
    pub epoch: Option<(usize, usize)>,
    /// Share of the phase done, in [0, 1].
    pub fraction: f64,
    /// Sample rows computed so far.
    pub rows: u64,
    /// Seconds since the phase began.
    pub elapsed_s: f64,
}

impl Progress {
    /// Seconds left if the rest goes as fast as what is done.
    pub fn eta_s(&self) -> Option<f64> {
        (self.fraction > 0.0).then(|| self.elapsed_s * (1.0 - self.fraction) / self.fraction)
    }

    /// The last generation is computed and queued for writing.
    pub fn finished(&self) -> bool {
        self.phase == Phase::Generations && self.fraction >= 1.0
    }
}

pub type Display = Box<dyn Fn(Progress) + Send + Sync>;

/// Shares of a generation, in 1/1000: a replicate's training counts for
/// up to `TRAINING_SHARE`, its finished stage for `STAGE_SHARE`, and the
/// generation for all once its tables are queued (a guess at where the
/// time goes: the bar only needs to move while a network trains).
const TRAINING_SHARE: u32 = 900;
const STAGE_SHARE: u32 = 990;

pub struct Tracker<'a> {
    display: Option<&'a (dyn Fn(Progress) + Send + Sync)>,
    generations: u32,
    replicates: u32,
    generation: AtomicU32,
    /// Per replicate, its share of the current stage done, in 1/1000.
    stage: Vec<AtomicU32>,
    rows: AtomicU64,
    phase_start: Mutex<Instant>,
    /// Held from snapshot to display: replicates report from several
    /// threads, and a snapshot taken earlier but shown later would make the
    /// display step back.
    showing: Mutex<()>,
}

impl<'a> Tracker<'a> {
    pub fn new(display: Option<&'a (dyn Fn(Progress) + Send + Sync)>, generations: u32, replicates: u32) -> Self {
        Tracker {
            display,
            generations,
            replicates,
            generation: AtomicU32::new(0),
            stage: (0..replicates).map(|_| AtomicU32::new(0)).collect(),
            rows: AtomicU64::new(0),
            phase_start: Mutex::new(Instant::now()),
            showing: Mutex::new(()),
        }
    }

    fn elapsed(&self) -> f64 {
        self.phase_start.lock().map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0)
    }

    /// The base model's training moved on.
    pub fn base(&self, t: Trained) {
        if let Some(show) = self.display {
            show(Progress {
                phase: Phase::Base,
                generation: 0,
                generations: self.generations,
                replicates_done: 0,
                replicates: self.replicates,
                epoch: Some((t.epoch, t.epochs)),
                fraction: t.fraction,
                rows: 0,
                elapsed_s: self.elapsed(),
            });
        }
    }

    /// A phase begins (the base model's training, then the generations):
    /// the clock restarts, so each ETA counts only its own phase's work.
    pub fn start(&self) {
        if let Ok(mut t) = self.phase_start.lock() {
            *t = Instant::now();
        }
    }

    /// Generation `k` begins.
    pub fn generation(&self, k: u32) {
        self.generation.store(k, Ordering::Relaxed);
        for s in &self.stage {
            s.store(0, Ordering::Relaxed);
        }
    }

    /// Replicate `r`'s training moved on.
    pub fn training(&self, r: u32, t: Trained) {
        if let Some(s) = self.stage.get(r as usize) {
            let share = (f64::from(TRAINING_SHARE) * t.fraction.clamp(0.0, 1.0)) as u32;
            // Shown only when the display would move: the hook runs every batch.
            if s.swap(share, Ordering::Relaxed) / 10 == share / 10 {
                return;
            }
        }
        self.show();
    }

    /// Replicate `r` finished its stage of the current generation.
    pub fn replicate_done(&self, r: u32) {
        if let Some(s) = self.stage.get(r as usize) {
            s.store(STAGE_SHARE, Ordering::Relaxed);
        }
        self.show();
    }

    /// The current generation's rows (`rows` in all so far) are computed
    /// and queued for writing.
    pub fn generation_done(&self, rows: u64) {
        self.rows.store(rows, Ordering::Relaxed);
        for s in &self.stage {
            s.store(1000, Ordering::Relaxed);
        }
        self.show();
    }

    pub fn snapshot(&self) -> Progress {
        let k = self.generation.load(Ordering::Relaxed);
        let shares: Vec<u32> = self.stage.iter().map(|s| s.load(Ordering::Relaxed)).collect();
        let done = shares.iter().filter(|&&s| s >= STAGE_SHARE).count() as u32;
        let in_generation =
            shares.iter().map(|&s| f64::from(s) / 1000.0).sum::<f64>() / f64::from(self.replicates.max(1));
        Progress {
            phase: Phase::Generations,
            generation: k,
            generations: self.generations,
            replicates_done: done,
            replicates: self.replicates,
            epoch: None,
            fraction: ((f64::from(k) + in_generation) / f64::from(self.generations + 1)).min(1.0),
            rows: self.rows.load(Ordering::Relaxed),
            elapsed_s: self.elapsed(),
        }
    }

    fn show(&self) {
        if let Some(show) = self.display {
            let _one_at_a_time = self.showing.lock();
            show(self.snapshot());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_counts_generations_replicates_and_epochs() {
        let seen = Mutex::new(Vec::new());
        let show = |p: Progress| seen.lock().unwrap().push(p);
        // 3 generations (0, 1, 2) x 2 replicates.
        let t = Tracker::new(Some(&show), 2, 2);
        t.base(Trained::after(0, 2, 1, 2));
        t.start();
        t.generation(0);
        t.training(0, Trained::after(0, 2, 3, 3));
        t.training(0, Trained::after(0, 2, 3, 3));
        t.replicate_done(1);
        t.replicate_done(0);
        t.generation_done(10);
        t.generation(1);
        t.generation(2);
        t.replicate_done(0);
        t.replicate_done(1);
        t.generation_done(30);
        let seen = seen.into_inner().unwrap();
        let fractions: Vec<f64> = seen.iter().map(|p| p.fraction).collect();
        // Base 1/4; then (0 + (0.45 + 0)/2)/3, (0 + (0.45 + 0.99)/2)/3,
        // 0.99/3, 1/3, (2 + 0.99/2)/3, 2.99/3, 1.
        let want = [0.25, 0.225 / 3.0, 0.72 / 3.0, 0.99 / 3.0, 1.0 / 3.0, 2.495 / 3.0, 2.99 / 3.0, 1.0];
        assert_eq!(fractions.len(), want.len());
        for (got, want) in fractions.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{fractions:?}");
        }
        assert_eq!(seen[0].phase, Phase::Base);
        assert_eq!(seen[0].epoch, Some((1, 2)));
        assert_eq!((seen[2].replicates_done, seen[3].replicates_done), (1, 2));
        assert_eq!((seen[3].rows, seen[4].rows, seen[7].rows), (0, 10, 30));
        assert!(seen[7].finished() && !seen[6].finished());
        assert_eq!(seen[7].eta_s(), Some(0.0));
    }

    /// Replicates training on several threads at once: what the display is
    /// shown never steps back (a snapshot is shown before the next is taken).
    #[test]
    fn concurrent_reports_reach_the_display_in_order() {
        let seen = Mutex::new(Vec::new());
        let show = |p: Progress| seen.lock().unwrap().push(p.fraction);
        let replicates = 8;
        let t = Tracker::new(Some(&show), 1, replicates);
        t.generation(0);
        std::thread::scope(|scope| {
            for r in 0..replicates {
                let t = &t;
                scope.spawn(move || {
                    for batch in 1..=200 {
                        t.training(r, Trained::after(0, 1, batch, 200));
                    }
                    t.replicate_done(r);
                });
            }
        });
        let seen = seen.into_inner().unwrap();
        assert!(seen.len() > replicates as usize * 9, "{} reports", seen.len());
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "stepped back: {seen:?}");
    }
}
