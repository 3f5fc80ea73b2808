//! A few long-lived threads that run independent jobs (file writes) while
//! the run computes. Idle threads block on a channel instead of spinning:
//! on two cores a spinning pool (rayon's) took a third more CPU time from
//! the model than the writes it overlapped.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Task<J, R> = (usize, J, Sender<(usize, R)>);

pub struct Pool<J: Send + 'static, R: Send + 'static> {
    work: Arc<dyn Fn(J) -> R + Send + Sync>,
    tx: Option<Sender<Task<J, R>>>,
    threads: Vec<JoinHandle<()>>,
}

impl<J: Send + 'static, R: Send + 'static> Pool<J, R> {
    /// Up to `n` threads named `name-i`; fewer if the OS refuses some, and
    /// with none every job runs on the caller's thread.
    pub fn new(n: usize, name: &str, work: impl Fn(J) -> R + Send + Sync + 'static) -> Self {
        let work: Arc<dyn Fn(J) -> R + Send + Sync> = Arc::new(work);
        let (tx, rx) = channel::<Task<J, R>>();
        let rx = Arc::new(Mutex::new(rx));
        let threads: Vec<JoinHandle<()>> = (0..n)
            .filter_map(|i| {
                let (work, rx) = (work.clone(), rx.clone());
                std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || serve(&*work, &rx)).ok()
            })
            .collect();
        Pool { work, tx: Some(tx), threads }
    }

    /// Runs every job; results in job order. A job whose thread died (a
    /// panic) gives `None`.
    pub fn map(&self, jobs: Vec<J>) -> Vec<Option<R>> {
        let n = jobs.len();
        let tx = match &self.tx {
            Some(tx) if n > 1 && !self.threads.is_empty() => tx,
            _ => return jobs.into_iter().map(|j| Some((self.work)(j))).collect(),
        };
        let (reply, results) = channel();
        for (i, job) in jobs.into_iter().enumerate() {
            if tx.send((i, job, reply.clone())).is_err() {
                break;
            }
        }
        drop(reply);
        let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
        // Ends when every reply sender is gone: each job answered or dropped.
        for (i, r) in results {
            out[i] = Some(r);
        }
        out
    }
}

fn serve<J, R>(work: &(dyn Fn(J) -> R + Send + Sync), rx: &Mutex<Receiver<Task<J, R>>>) {
    loop {
        // The lock is held only while taking one task.
        let task = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((i, job, reply)) = task else { return };
        let _ = reply.send((i, work(job)));
    }
}

impl<J: Send + 'static, R: Send + 'static> Drop for Pool<J, R> {
    fn drop(&mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
