//! Running the pass's pure work where it does not hold up the batches: on the runtime's
//! blocking threads, off the task that drives them, a part per core ([`off_task_map`], with a
//! [`Handoff`] for what the caller keeps).

use std::sync::PoisonError;

/// Pages at least this large are computed on every core.
const PARALLEL_FROM: usize = 1000;

/// The parts a large batch is split into: the cores this process may use (at most 8), read
/// once (the standard library reads the cgroup's CPU quota from files at each call).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// A value handed out of work done off the task, beside the result the store receives.
pub(super) struct Handoff<T>(std::sync::Arc<std::sync::Mutex<T>>);

impl<T> Clone for Handoff<T> {
    fn clone(&self) -> Self {
        Handoff(self.0.clone())
    }
}

impl<T: Default> Default for Handoff<T> {
    fn default() -> Self {
        Handoff(std::sync::Arc::default())
    }
}

impl<T: Default> Handoff<T> {
    /// Leaves `value` for [`Handoff::take`].
    pub(super) fn put(&self, value: T) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = value;
    }

    /// What was put (the default if nothing was).
    pub(super) fn take(&self) -> T {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// `f` over `items` on the runtime's blocking threads, a part per core when there are many
/// (at least `PARALLEL_FROM`), the results in the items' order; the task that awaits it, and
/// the batches it drives side by side, are not held up meanwhile. The threads stay between
/// the batches of a pass (tokio keeps an idle one 10 s), so their allocator keeps its pages
/// (threads started per batch began with none: a tenth of a fire batch's
/// decisions went to page faults). Every part is awaited; then a panic in `f` is resumed here,
/// or, if the runtime cancelled a part (shutting down), nothing comes back and the batch or
/// page that asked rolls back on the count mismatch.
pub(super) async fn off_task_map<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
{
    let threads = if items.len() < PARALLEL_FROM {
        1
    } else {
        cores()
    };
    let n = items.len();
    let f = std::sync::Arc::new(f);
    let span = tracing::Span::current();
    let mut rest = items.into_iter();
    let mut parts = Vec::with_capacity(threads);
    for _ in 0..threads {
        let part: Vec<T> = rest.by_ref().take(n.div_ceil(threads)).collect();
        let (f, span) = (f.clone(), span.clone());
        parts.push(tokio::task::spawn_blocking(move || {
            span.in_scope(|| part.into_iter().map(|x| f(x)).collect::<Vec<R>>())
        }));
    }
    let (mut out, mut panic, mut cancelled) = (Vec::with_capacity(n), None, false);
    for part in parts {
        match part.await {
            Ok(done) => out.extend(done),
            Err(e) => match e.try_into_panic() {
                Ok(p) => panic = panic.or(Some(p)),
                Err(_) => cancelled = true,
            },
        }
    }
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
    if cancelled { Vec::new() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn off_task_map_keeps_the_order_and_runs_the_parts_of_a_large_batch_at_once() {
        let cores = cores();
        let n = 2 * PARALLEL_FROM + 7;
        let part = n.div_ceil(cores);
        // The first item of each part waits (up to 10 s) until every part has begun.
        let begun = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = begun.clone();
        let out = off_task_map((0..n).collect(), move |i: usize| {
            let mut together = true;
            if i.is_multiple_of(part) {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while seen.load(std::sync::atomic::Ordering::SeqCst) < cores {
                    if std::time::Instant::now() > until {
                        together = false;
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            (i * 3, together)
        })
        .await;
        let values: Vec<usize> = out.iter().map(|(v, _)| *v).collect();
        assert_eq!(values, (0..n).map(|i| i * 3).collect::<Vec<_>>());
        assert!(
            out.iter().all(|(_, together)| *together),
            "parts ran one after another"
        );
        assert_eq!(begun.load(std::sync::atomic::Ordering::SeqCst), cores);
    }

    #[tokio::test]
    async fn off_task_map_runs_a_small_batch_in_one_part_off_the_task_and_an_empty_one_to_nothing()
    {
        let caller = std::thread::current().id();
        let out = off_task_map((0..10).collect(), |_: i32| std::thread::current().id()).await;
        assert_eq!(out.len(), 10);
        assert!(out.iter().all(|t| *t == out[0]), "one part");
        assert_ne!(out[0], caller, "off the task");
        assert!(off_task_map(Vec::<i32>::new(), |i| i).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn off_task_map_resumes_a_panic_of_one_part_after_every_part_ended() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        let cores = cores();
        let n = 2 * PARALLEL_FROM;
        let (ended, release) = (
            std::sync::Arc::new(AtomicUsize::new(0)),
            std::sync::Arc::new(AtomicBool::new(false)),
        );
        let (count, released) = (ended.clone(), release.clone());
        // The first part fails at once; the last item of the last part waits to be released.
        let run = tokio::spawn(off_task_map((0..n).collect(), move |i: usize| {
            if i == 0 {
                panic!("claim {i} broke");
            }
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while i == n - 1 && !released.load(SeqCst) && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            count.fetch_add(1, SeqCst);
            i
        }));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if cores > 1 {
            assert!(!run.is_finished(), "came back while a part still ran");
        }
        release.store(true, SeqCst);
        let payload = run.await.expect_err("the panic comes back").into_panic();
        let message = payload.downcast_ref::<String>().map(String::as_str);
        assert_eq!(message, Some("claim 0 broke"));
        assert_eq!(
            ended.load(SeqCst),
            n - n.div_ceil(cores),
            "the other parts ran to their end"
        );
    }
}
