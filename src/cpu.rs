//! CPU-bound work off the async workers: RSA signatures (ID tokens, SAML Responses) run on a
//! bounded blocking pool, one job per core this process may run on, so that a burst of
//! sign-ins queues for the pool instead of holding the workers that answer every other request
//! (discovery, JWKS, health checks, the token endpoint's database work).
//!
//! The size follows the CPU affinity mask and cgroup quota (`available_parallelism`), like the
//! tokio runtime's worker count: a server pinned to one core (`taskset -c 0`) gets one signing
//! job at a time, two cores two. Imports no room.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

/// Work handed to the pool did not come back: it panicked, or the runtime is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the signing pool lost the job (a panic, or the runtime is stopping)")]
pub struct CpuError;

/// A bound on CPU-heavy jobs running at once, over tokio's blocking threads.
pub struct CpuPool {
    permits: Arc<Semaphore>,
    size: usize,
}

impl CpuPool {
    pub fn new(size: usize) -> CpuPool {
        let size = size.max(1);
        CpuPool {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// How many jobs run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Run `work` on a blocking thread once a slot is free. Waiting for a slot is fair (first
    /// come, first served) and costs the caller's task nothing but a place in the queue. A
    /// caller that gives up (its request dropped) while the job runs leaves the job to finish;
    /// the slot is freed when it does.
    pub async fn run<T, F>(&self, work: F) -> Result<T, CpuError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| CpuError)?;
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            work()
        })
        .await
        .map_err(|_| CpuError)
    }
}

/// The cores this process may run on (affinity mask, cgroup quota), at least one.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The process's signing pool, sized to [`cores`] when first used.
pub fn pool() -> &'static CpuPool {
    static POOL: OnceLock<CpuPool> = OnceLock::new();
    POOL.get_or_init(|| CpuPool::new(cores()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn never_more_jobs_than_slots_and_every_job_comes_back() {
        let pool = Arc::new(CpuPool::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for i in 0..12 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
                .await
            }));
        }
        let mut results = Vec::new();
        for job in jobs {
            results.push(job.await.unwrap().unwrap());
        }
        assert_eq!(results, (0..12).collect::<Vec<_>>());
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "the bound holds and is used"
        );
    }

    /// The point of the pool: on a single-threaded runtime (a server pinned to one core has one
    /// worker), a queue of CPU-heavy jobs does not stop other tasks from being answered.
    #[tokio::test(flavor = "current_thread")]
    async fn the_async_worker_keeps_answering_while_the_pool_is_saturated() {
        let pool = Arc::new(CpuPool::new(1));
        let busy = Duration::from_millis(40);
        let mut jobs = Vec::new();
        for _ in 0..8 {
            let pool = pool.clone();
            jobs.push(tokio::spawn(async move {
                pool.run(move || std::thread::sleep(busy)).await
            }));
        }
        tokio::task::yield_now().await;
        // 8 jobs x 40 ms = 320 ms of work queued; a timer task still gets its turn at once.
        let started = Instant::now();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let answered = started.elapsed();
        let unfinished = jobs.iter().filter(|j| !j.is_finished()).count();
        assert!(
            unfinished > 0,
            "the jobs should still be running when the other task is answered"
        );
        assert!(
            answered < busy * 3,
            "another task waited {answered:?} behind the pool"
        );
        for job in jobs {
            job.await.unwrap().unwrap();
        }
    }

    #[test]
    fn the_pool_is_sized_to_the_cores_this_process_may_use() {
        assert_eq!(pool().size(), cores());
        assert!(cores() >= 1);
    }
}
