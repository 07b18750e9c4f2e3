//! A job's [`Observer`] events forwarded to a Python callable.

use std::sync::Mutex;

use audiotok_core::Observer;
use pyo3::prelude::*;

/// Calls `callback(phase, done, total)` as a job advances (at most about a hundred times a
/// phase, and once when it ends) and `warnings.warn(message)` for a job's warnings. Calls come
/// from the job's threads, each taking the GIL for the call only; an exception raised by the
/// callback is printed (`sys.unraisablehook`), not propagated: the job goes on.
pub(crate) struct PyProgress {
    callback: Option<Py<PyAny>>,
    state: Mutex<State>,
    /// Held while the callback runs, with the count last reported: calls from several threads
    /// are made one at a time and never report a count lower than one already reported.
    calls: Mutex<u64>,
}

#[derive(Default)]
struct State {
    phase: String,
    total: u64,
    done: u64,
    reported: u64,
}

impl PyProgress {
    pub(crate) fn new(callback: Option<Py<PyAny>>) -> Self {
        Self { callback, state: Mutex::new(State::default()), calls: Mutex::new(0) }
    }

    fn call(&self, phase: &str, done: u64, total: u64) {
        if let Some(cb) = &self.callback {
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (phase, done, total)) {
                    e.write_unraisable(py, Some(cb.bind(py)));
                }
            });
        }
    }

    /// Reports the phase's current count unless a count as high was reported already.
    fn report(&self, force_zero: bool) {
        let mut last = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let (phase, done, total) = self.with(|s| (s.phase.clone(), s.done, s.total));
        if force_zero {
            *last = 0;
        } else if done <= *last {
            return;
        }
        *last = done;
        self.call(&phase, done, total);
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        match self.state.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

impl Observer for PyProgress {
    fn begin(&self, phase: &str, total: u64, _unit: &str) {
        self.with(|s| *s = State { phase: phase.to_string(), total, done: 0, reported: 0 });
        self.report(true);
    }

    fn advance(&self, n: u64) {
        let due = self.with(|s| {
            s.done += n;
            let step = (s.total / 100).max(1);
            let due = s.done >= s.reported + step;
            if due {
                s.reported = s.done;
            }
            due
        });
        if due {
            self.report(false);
        }
    }

    fn end(&self) {
        self.report(false);
    }

    fn warn(&self, message: &str) {
        Python::attach(|py| {
            let warned = py
                .import("warnings")
                .and_then(|w| w.getattr("warn"))
                .and_then(|warn| warn.call1((message, py.get_type::<pyo3::exceptions::PyUserWarning>())));
            if let Err(e) = warned {
                e.write_unraisable(py, None);
            }
        });
    }
}
