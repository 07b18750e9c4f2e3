//! What a running job reports to its front.

/// Receives a job's progress. Jobs call it from their worker threads, hence `Sync`; every
/// method has a default that ignores the event, so a front implements only what it shows.
///
/// A job runs as a sequence of phases (audio files measured, rows tokenized, blocks written):
/// [`begin`](Observer::begin) opens one with its size, [`advance`](Observer::advance) counts
/// items done in it, [`end`](Observer::end) closes it. Phases do not nest. Warnings are facts
/// the user should see that do not fail the job (a default taken, a batch redone).
pub trait Observer: Sync {
    /// A phase named `phase` of `total` items counted in `unit` (e.g. "files", "rows") begins.
    fn begin(&self, phase: &str, total: u64, unit: &str) {
        let _ = (phase, total, unit);
    }
    /// `n` more items of the open phase are done.
    fn advance(&self, n: u64) {
        let _ = n;
    }
    /// The open phase is over.
    fn end(&self) {}
    /// A message for the user that does not fail the job.
    fn warn(&self, message: &str) {
        let _ = message;
    }
}

/// An observer that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

/// An observer that keeps every event as a line of text (`begin PHASE TOTAL UNIT`,
/// `advance N`, `end`, `warn MESSAGE`), for tests of a job's progress.
#[derive(Debug, Default)]
pub struct Recorder(std::sync::Mutex<Vec<String>>);

impl Recorder {
    /// The events so far, in order.
    pub fn events(&self) -> Vec<String> {
        self.lines().clone()
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Observer for Recorder {
    fn begin(&self, phase: &str, total: u64, unit: &str) {
        self.lines().push(format!("begin {phase} {total} {unit}"));
    }
    fn advance(&self, n: u64) {
        self.lines().push(format!("advance {n}"));
    }
    fn end(&self) {
        self.lines().push("end".into());
    }
    fn warn(&self, message: &str) {
        self.lines().push(format!("warn {message}"));
    }
}

/// Closes the phase it was made for when dropped, so a phase ends on every return path.
pub struct Phase<'a> {
    observer: &'a dyn Observer,
}

impl<'a> Phase<'a> {
    /// Begins a phase on `observer` (see [`Observer::begin`]).
    pub fn begin(observer: &'a dyn Observer, phase: &str, total: u64, unit: &str) -> Self {
        observer.begin(phase, total, unit);
        Self { observer }
    }

    /// `n` more items done.
    pub fn advance(&self, n: u64) {
        self.observer.advance(n);
    }
}

impl Drop for Phase<'_> {
    fn drop(&mut self) {
        self.observer.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_phase_ends_when_dropped_even_on_early_return() {
        let log = Recorder::default();
        let run = |fail: bool| -> Result<(), ()> {
            let p = Phase::begin(&log, "rows", 2, "rows");
            p.advance(1);
            if fail {
                return Err(());
            }
            p.advance(1);
            Ok(())
        };
        assert!(run(true).is_err());
        assert!(run(false).is_ok());
        let got = log.events();
        assert_eq!(
            got,
            ["begin rows 2 rows", "advance 1", "end", "begin rows 2 rows", "advance 1", "advance 1", "end"]
        );
    }
}
