//! A job per input on a rayon pool of the job's own, results in input order.

use rayon::prelude::*;

use crate::observer::{Observer, Phase};
use crate::{reason_about, CoreError, Input};

/// The most worker threads a job may ask for: far past any core count, far below what the
/// system's thread limit or the stacks' memory would refuse.
pub const MAX_JOBS: usize = 1024;

/// The result of one input's job: its value, or the reason it failed (naming the file).
pub type Outcome<T> = Result<T, String>;

/// `jobs` if it is a valid thread count (0: one per core), else [`CoreError::TooManyJobs`].
pub fn check_jobs(jobs: usize) -> Result<usize, CoreError> {
    if jobs > MAX_JOBS {
        return Err(CoreError::TooManyJobs(jobs));
    }
    Ok(jobs)
}

/// A pool of `jobs` worker threads (0: one per core) for one job. Jobs build their own pool
/// rather than use rayon's global one, so nothing is started before a job runs.
pub fn thread_pool(jobs: usize) -> Result<rayon::ThreadPool, CoreError> {
    Ok(rayon::ThreadPoolBuilder::new().num_threads(check_jobs(jobs)?).build()?)
}

/// Runs `job` on every input with `jobs` threads (0: all cores), each thread owning a state made
/// by `init` (planned FFTs, buffers); `job` gets the input's index. Results come back in input
/// order, whatever the scheduling. An input the walk could not read fails with its reason,
/// without `job`. Progress goes to `observer` as the phase `phase`, counted in files.
pub fn run_parallel<S, T, I, F>(
    inputs: &[Input],
    jobs: usize,
    phase: &str,
    observer: &dyn Observer,
    init: I,
    job: F,
) -> Result<Vec<Outcome<T>>, CoreError>
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, &Input) -> Outcome<T> + Sync + Send,
{
    let pool = thread_pool(jobs)?;
    let progress = Phase::begin(observer, phase, inputs.len() as u64, "files");
    let out = pool.install(|| {
        inputs
            .par_iter()
            .enumerate()
            .map_init(&init, |state, (i, input)| {
                let r = input.readable().and_then(|()| job(state, i, input)).map_err(|e| reason_about(&input.path, e));
                progress.advance(1);
                r
            })
            .collect()
    });
    drop(progress);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Silent;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Count(AtomicU64);
    impl Observer for Count {
        fn advance(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[test]
    fn results_keep_input_order_and_unreadable_inputs_fail_without_the_job() {
        let mut inputs: Vec<Input> = (0..100).map(|i| Input::file(format!("{i}.wav"))).collect();
        inputs[7].unreadable = Some("7.wav: dangling symlink".into());
        let seen = Count(AtomicU64::new(0));
        let out = run_parallel(
            &inputs,
            2,
            "test",
            &seen,
            || 0usize,
            |calls, i, _| {
                *calls += 1;
                Ok(i * 2)
            },
        )
        .unwrap();
        assert_eq!(seen.0.load(Ordering::Relaxed), 100);
        for (i, r) in out.iter().enumerate() {
            match i {
                7 => assert_eq!(r.as_ref().unwrap_err(), "7.wav: dangling symlink"),
                _ => assert_eq!(*r.as_ref().unwrap(), i * 2),
            }
        }
        assert!(run_parallel(&inputs, MAX_JOBS + 1, "t", &Silent, || (), |_, _, _| Ok(())).is_err());
    }

    #[test]
    fn jobs_are_bounded() {
        assert_eq!(check_jobs(0).unwrap(), 0);
        assert_eq!(check_jobs(1024).unwrap(), 1024);
        assert_eq!(check_jobs(1025).unwrap_err().to_string(), "1025 threads: at most 1024 (0 uses one per core)");
    }
}
