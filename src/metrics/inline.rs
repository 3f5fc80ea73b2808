//! Running a small Polars query on the calling thread.
//!
//! polars hands every parallel step of a query to its thread pool and
//! waits; on a 20,000-row generation the handoffs (a futex wake and a sleep
//! each, a dozen a query) cost more than the work they spread, and a
//! quarter of the query's time went to the scheduler. polars' runtime runs
//! a thread's work on a one-thread pool of that same thread when the
//! thread-local `ALLOW_RAYON_THREADS` is false (what polars' own async
//! executor threads set); this scopes that switch to one call.

/// Rows up to which a generation's metric query stays on the calling
/// thread. On this 2-core machine (`cargo run --release --example
/// metrics_query -- M R N`, medians of alternating runs) the query took
/// 0.27 ms inline against 0.33 ms on the pool at 20,000 rows, about the
/// same at 100,000 to 300,000 (2-5% apart, while the pool spends two
/// cores), and 8.0 against 6.9 ms at 1,000,000.
pub const INLINE_ROWS: usize = 1 << 18;

/// Runs `f` with polars' thread pool off for this thread, then restores
/// the switch as it was (also when `f` panics).
pub fn on_this_thread<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            polars_async::executor::ALLOW_RAYON_THREADS.set(self.0);
        }
    }
    let _restore = Restore(polars_async::executor::ALLOW_RAYON_THREADS.replace(false));
    f()
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;

    fn per_group_means() -> DataFrame {
        let df = df!("g" => [0u32, 0, 1, 1, 2], "x" => [1.0, 3.0, 2.0, 6.0, 5.0]).unwrap();
        df.lazy().group_by_stable([col("g")]).agg([col("x").mean()]).collect().unwrap()
    }

    /// The same numbers on this thread as on the pool, and the switch is
    /// back as it was afterwards, after a panic too.
    #[test]
    fn a_query_gives_the_same_frame_and_the_switch_is_restored() {
        let pooled = per_group_means();
        let inline = on_this_thread(per_group_means);
        assert!(inline.equals_missing(&pooled));
        assert!(polars_async::executor::ALLOW_RAYON_THREADS.get());
        let inside = on_this_thread(|| polars_async::executor::ALLOW_RAYON_THREADS.get());
        assert!(!inside);
        let caught = std::panic::catch_unwind(|| on_this_thread(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(polars_async::executor::ALLOW_RAYON_THREADS.get());
    }
}
