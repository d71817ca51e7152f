//! Running the pass's pure work where it does not hold up the batches: on a blocking thread
//! off the task that drives them ([`off_task`], with a [`Handoff`] for what the caller keeps),
//! and on every core ([`par_map`]).

use std::sync::PoisonError;

/// Pages at least this large are computed on every core.
const PARALLEL_FROM: usize = 1000;

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

/// `work` (pure computation) on a blocking thread, in the caller's tracing span: the task
/// that awaits it, and the batches it drives side by side, are not held up meanwhile. A panic
/// in `work` is resumed here; if the runtime cancels it (shutting down), the default (empty)
/// result comes back and the batch that asked rolls back on the count mismatch.
pub(super) async fn off_task<R: Default + Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> R {
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(work)).await {
        Ok(done) => done,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => R::default(),
        },
    }
}

/// `f` over `items` on every core when there are many (at least `PARALLEL_FROM`), the results
/// in the items' order.
pub(super) fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || items.len() < PARALLEL_FROM {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut parts: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items.into_iter();
    loop {
        let part: Vec<T> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
