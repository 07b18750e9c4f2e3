//! Running cases: a child process per batch of cases, supervised by the parent.
//!
//! The child (`audiotok-fuzz child TARGET BASE FROM TO WORK`) runs under `ulimit -v` (address space
//! bounded, so an allocation driven by a header's size fails instead of taking the machine), makes
//! each case's input under `WORK/TARGET/case/`, prints `START n` before reading it and
//! `DONE n OK|ERR|PANIC message` after. A panic is caught (`catch_unwind`) and the case's input
//! moved to `WORK/failures/`. The parent reads those lines: when the child dies in a case (an
//! abort: allocation failure, stack overflow, a signal) or stops making progress for longer than the
//! per-case limit (then it is killed), that case is recorded with the child's last stderr, its input
//! is moved to `WORK/failures/`, and a new child goes on from the next case.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::mutate::{case_seed, describe, mutate, Rng};
use crate::targets::{self, Seed, Target};

/// How a failed case failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A panic, caught in the child.
    Panic,
    /// The child died (abort, allocation failure, stack overflow, signal).
    Abort,
    /// The case ran past the per-case time limit; the child was killed.
    Timeout,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureKind::Panic => "PANIC",
            FailureKind::Abort => "ABORT",
            FailureKind::Timeout => "TIMEOUT",
        })
    }
}

/// One failed case.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The target.
    pub target: String,
    /// The case number.
    pub case: u64,
    /// The campaign seed.
    pub base: u64,
    /// How it failed.
    pub kind: FailureKind,
    /// The panic message and location, or the child's exit status and last stderr.
    pub message: String,
    /// The seed and the mutations.
    pub input: String,
    /// The kept input, to replay.
    pub kept: PathBuf,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} case {} (campaign seed {}; {}): {}\n    input kept at {}\n    replay: AUDIOTOK_FUZZ_REPLAY={} \
             AUDIOTOK_FUZZ_TARGET={} cargo test -p audiotok-fuzz --test fuzz replay -- --ignored --nocapture",
            self.kind,
            self.target,
            self.case,
            self.base,
            self.input,
            self.message,
            self.kept.display(),
            self.kept.display(),
            self.target
        )
    }
}

/// The results of one target's cases.
#[derive(Debug, Clone, Default)]
pub struct TargetReport {
    /// The target.
    pub target: String,
    /// Cases run.
    pub cases: u64,
    /// Cases that ended in `Ok`.
    pub ok: u64,
    /// Cases that ended in a typed error.
    pub errors: u64,
    /// The others.
    pub failures: Vec<Failure>,
    /// Wall time.
    pub seconds: f64,
}

impl TargetReport {
    fn count(&self, kind: FailureKind) -> usize {
        self.failures.iter().filter(|f| f.kind == kind).count()
    }
}

/// Campaign settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `audiotok-fuzz` binary (run as the child).
    pub exe: PathBuf,
    /// Where seeds, cases and failures go.
    pub work: PathBuf,
    /// The campaign seed (`AUDIOTOK_FUZZ_SEED`).
    pub base: u64,
    /// Cases of a target of weight 1 (`AUDIOTOK_FUZZ_CASES`).
    pub cases: u64,
    /// Per-case time limit (`AUDIOTOK_FUZZ_TIMEOUT`, seconds).
    pub timeout: Duration,
    /// Address-space limit of the child, bytes (`AUDIOTOK_FUZZ_MEMORY`, MiB).
    pub memory: u64,
    /// Targets run at once (`AUDIOTOK_FUZZ_JOBS`).
    pub jobs: usize,
    /// Only targets whose name contains one of these (`AUDIOTOK_FUZZ_TARGETS`, comma-separated).
    pub only: Vec<String>,
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

impl Config {
    /// The settings, from the environment where set; `cases` is the default budget.
    pub fn from_env(exe: PathBuf, cases: u64) -> Config {
        let work = std::env::var_os("AUDIOTOK_FUZZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/audiotok-fuzz"));
        Config {
            exe,
            work,
            base: env_num("AUDIOTOK_FUZZ_SEED").unwrap_or(0),
            cases: env_num("AUDIOTOK_FUZZ_CASES").unwrap_or(cases),
            timeout: Duration::from_secs(env_num("AUDIOTOK_FUZZ_TIMEOUT").unwrap_or(20)),
            memory: env_num("AUDIOTOK_FUZZ_MEMORY").unwrap_or(4096) << 20,
            jobs: env_num("AUDIOTOK_FUZZ_JOBS").unwrap_or(2).max(1) as usize,
            only: std::env::var("AUDIOTOK_FUZZ_TARGETS")
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
                .unwrap_or_default(),
        }
    }

    /// The targets this campaign runs.
    pub fn targets(&self) -> Vec<Target> {
        targets::all()
            .into_iter()
            .filter(|t| self.only.is_empty() || self.only.iter().any(|o| t.name.contains(o.as_str())))
            .collect()
    }

    /// The cases of `t`.
    pub fn cases_of(&self, t: &Target) -> u64 {
        ((self.cases as f64 * t.weight).ceil() as u64).max(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Making a case.

/// Makes case `case` of `target` under `dir` (emptied first): the input path and what was done.
pub fn make_case(
    target: &Target,
    seeds: &[Seed],
    base: u64,
    case: u64,
    dir: &Path,
) -> Result<(PathBuf, String), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let seed = seeds.get((case % seeds.len().max(1) as u64) as usize).ok_or("the target has no seeds")?;
    let mut rng = Rng::new(case_seed(target.name, base, case));
    let file_name = seed.path.file_name().ok_or("a seed without a name")?;
    let input = dir.join(file_name);
    if seed.files.is_empty() {
        let mut data = fs::read(&seed.path).map_err(|e| io(&seed.path, e))?;
        let regions = target.regions(&seed.path, &data);
        let mut ops = mutate(&mut data, &regions, &mut rng);
        if let Some(fix) = target.fixup.filter(|_| rng.chance(3, 4)) {
            fix(&mut data);
            ops.push("checksums repaired".into());
        }
        fs::write(&input, &data).map_err(|e| io(&input, e))?;
        return Ok((input, format!("seed {}: {}", seed.name, describe(&ops))));
    }
    for (rel, _) in &seed.files {
        let to = input.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        fs::copy(seed.path.join(rel), &to).map_err(|e| io(&to, e))?;
    }
    let total: u64 = seed.files.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut pick = rng.next_u64() % total.max(1);
    let mut chosen = &seed.files[0].0;
    for (rel, w) in &seed.files {
        if pick < u64::from(*w) {
            chosen = rel;
            break;
        }
        pick -= u64::from(*w);
    }
    let target_file = input.join(chosen);
    if seed.files.len() > 1 && rng.chance(1, 20) {
        fs::remove_file(&target_file).map_err(|e| io(&target_file, e))?;
        return Ok((input, format!("seed {}: removed {}", seed.name, chosen.display())));
    }
    let mut data = fs::read(&target_file).map_err(|e| io(&target_file, e))?;
    let regions = target.regions(&target_file, &data);
    let ops = mutate(&mut data, &regions, &mut rng);
    fs::write(&target_file, &data).map_err(|e| io(&target_file, e))?;
    Ok((input, format!("seed {}, {}: {}", seed.name, chosen.display(), describe(&ops))))
}

// ---------------------------------------------------------------------------------------------
// The child.

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Records panics (message and location) instead of printing them.
fn quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "(non-string panic payload)".to_string()
        };
        let mut at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        if at.starts_with("/rustc/") || at.contains("/.cargo/registry/") {
            // Inside std or a dependency: name the first frames of this workspace's readers too.
            let bt = std::backtrace::Backtrace::force_capture().to_string();
            let ours: Vec<&str> = bt
                .lines()
                .filter_map(|l| l.trim().strip_prefix("at "))
                .filter(|l| l.contains("/crates/audiotok-") && !l.contains("audiotok-fuzz/src/"))
                .take(2)
                .collect();
            if !ours.is_empty() {
                at = format!("{at}, called from {}", ours.join(" < "));
            }
        }
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("panicked at {at} (thread {thread}): {msg}"));
        }
    }));
}

fn one_line(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().count() > 400 {
        s.chars().take(400).collect::<String>() + "..."
    } else {
        s
    }
}

/// Runs `target.run` on `input`, a panic caught: `Ok(outcome)` or `Err(panic message)`.
pub fn run_caught(target: &Target, input: &Path) -> Result<targets::Outcome, String> {
    if let Ok(mut last) = LAST_PANIC.lock() {
        *last = None;
    }
    catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|_| {
        LAST_PANIC.lock().ok().and_then(|mut l| l.take()).unwrap_or_else(|| "panicked (no message)".to_string())
    })
}

/// The child's loop (see the module docs). Returns the process exit code.
pub fn child(target_name: &str, base: u64, from: u64, to: u64, work: &Path) -> i32 {
    quiet_panic_hook();
    let Some(target) = targets::all().into_iter().find(|t| t.name == target_name) else {
        eprintln!("unknown target {target_name}");
        return 2;
    };
    let seeds = match target.seeds(work) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("making the seeds of {target_name}: {e}");
            return 2;
        }
    };
    let case_dir = work.join(target.name).join("case");
    let stdout = std::io::stdout();
    for case in from..to {
        let (input, what) = match make_case(&target, &seeds, base, case, &case_dir) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("making case {case}: {e}");
                return 2;
            }
        };
        {
            let mut out = stdout.lock();
            let _ = writeln!(out, "START {case} {}", one_line(&what));
            let _ = out.flush();
        }
        let line = match run_caught(&target, &input) {
            Ok(Ok(summary)) => format!("DONE {case} OK {}", one_line(&summary)),
            Ok(Err(e)) => format!("DONE {case} ERR {}", one_line(&e)),
            Err(panic) => {
                let kept = keep_failure(work, target.name, case, &case_dir, &input);
                format!("DONE {case} PANIC {}\t{}", one_line(&panic), kept.display())
            }
        };
        let mut out = stdout.lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    0
}

/// Moves a failed case's folder to `WORK/failures/TARGET-caseN`; the path of the input there.
fn keep_failure(work: &Path, target: &str, case: u64, case_dir: &Path, input: &Path) -> PathBuf {
    let dest = work.join("failures").join(format!("{target}-case{case}"));
    let _ = fs::remove_dir_all(&dest);
    let _ = fs::create_dir_all(work.join("failures"));
    match fs::rename(case_dir, &dest) {
        Ok(()) => input.strip_prefix(case_dir).map(|rel| dest.join(rel)).unwrap_or(dest),
        Err(_) => input.to_path_buf(),
    }
}

// ---------------------------------------------------------------------------------------------
// The parent.

enum Event {
    Line(String),
    Eof,
}

/// Runs every case of `target` in child processes.
pub fn run_target(cfg: &Config, target: &Target) -> Result<TargetReport, String> {
    let start = Instant::now();
    let cases = cfg.cases_of(target);
    let dir = cfg.work.join(target.name);
    let _ = fs::remove_dir_all(&dir);
    if let Ok(old) = fs::read_dir(cfg.work.join("failures")) {
        let prefix = format!("{}-case", target.name);
        for e in old.flatten() {
            if e.file_name()
                .to_str()
                .is_some_and(|n| n.strip_prefix(&prefix).is_some_and(|r| r.bytes().all(|b| b.is_ascii_digit())))
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    // Seeds are made once here, so that children only read them.
    target.seeds(&cfg.work).map_err(|e| format!("{}: making the seeds: {e}", target.name))?;
    let mut report = TargetReport { target: target.name.to_string(), cases, ..TargetReport::default() };
    let mut next = 0u64;
    while next < cases {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v \"$0\" 2>/dev/null; exec \"$@\"")
            .arg((cfg.memory >> 10).to_string())
            .arg(&cfg.exe)
            .args(["child", target.name, &cfg.base.to_string(), &next.to_string(), &cases.to_string()])
            .arg(&cfg.work)
            .env("RAYON_NUM_THREADS", "1")
            // Panics are caught and located by the hook; this gives an allocation failure's backtrace.
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", cfg.exe.display()))?;
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(Event::Line(l)).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send(Event::Eof);
        });
        let stderr_tail = Arc::new(Mutex::new(Vec::<u8>::new()));
        let mut stderr = child.stderr.take().ok_or("no child stderr")?;
        let tail = stderr_tail.clone();
        let err_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = tail.lock() {
                    t.extend_from_slice(&buf[..n]);
                    let excess = t.len().saturating_sub(1 << 16);
                    t.drain(..excess);
                }
            }
        });
        let mut current: Option<(u64, String)> = None;
        let mut progressed = false;
        let mut timed_out = false;
        loop {
            match rx.recv_timeout(cfg.timeout) {
                Ok(Event::Line(l)) => {
                    progressed = true;
                    if let Some(rest) = l.strip_prefix("START ") {
                        let (n, what) = rest.split_once(' ').unwrap_or((rest, ""));
                        current = n.parse().ok().map(|n| (n, what.to_string()));
                    } else if let Some(rest) = l.strip_prefix("DONE ") {
                        let mut parts = rest.splitn(3, ' ');
                        let n: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(next);
                        let verdict = parts.next().unwrap_or("");
                        let msg = parts.next().unwrap_or("");
                        let what = current.take().map(|c| c.1).unwrap_or_default();
                        match verdict {
                            "OK" => report.ok += 1,
                            "ERR" => report.errors += 1,
                            _ => {
                                let (message, kept) = msg.split_once('\t').unwrap_or((msg, ""));
                                report.failures.push(Failure {
                                    target: target.name.to_string(),
                                    case: n,
                                    base: cfg.base,
                                    kind: FailureKind::Panic,
                                    message: message.to_string(),
                                    input: what,
                                    kept: PathBuf::from(kept),
                                });
                            }
                        }
                        next = n + 1;
                    }
                }
                Ok(Event::Eof) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if current.is_some() {
                        timed_out = true;
                        let _ = child.kill();
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child.wait().map_err(|e| format!("waiting for the child: {e}"))?;
        let _ = reader.join();
        let _ = err_reader.join();
        let tail = stderr_tail.lock().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
        if let Some((n, what)) = current {
            let case_dir = dir.join("case");
            let input_name = fs::read_dir(&case_dir)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .map(|e| e.path())
                .unwrap_or_else(|| case_dir.clone());
            let kept = keep_failure(&cfg.work, target.name, n, &case_dir, &input_name);
            let (kind, message) = if timed_out {
                (FailureKind::Timeout, format!("no result after {} s; killed", cfg.timeout.as_secs()))
            } else {
                (FailureKind::Abort, format!("child died ({status}); {}", abort_summary(&tail)))
            };
            report.failures.push(Failure {
                target: target.name.to_string(),
                case: n,
                base: cfg.base,
                kind,
                message,
                input: what,
                kept,
            });
            next = n + 1;
        } else if next < cases && (!status.success() || !progressed) {
            return Err(format!("{}: the child stopped before case {next} ({status}): {}", target.name, tail.trim()));
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The child's last stderr as one line: its first message and the first frames of our crates.
fn abort_summary(stderr: &str) -> String {
    let first = stderr.lines().find(|l| !l.trim().is_empty() && !l.starts_with("stack backtrace")).unwrap_or("");
    let ours: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("at "))
        .filter(|l| l.contains("/crates/audiotok-") && !l.contains("audiotok-fuzz/src/"))
        .take(3)
        .collect();
    if ours.is_empty() {
        format!("stderr: {}", one_line(first.trim()))
    } else {
        format!("stderr: {}, in {}", one_line(first.trim()), ours.join(" < "))
    }
}

/// Runs every target of `cfg`, `cfg.jobs` at a time, in the order of [`targets::all`].
pub fn run_all(cfg: &Config) -> Result<Vec<TargetReport>, String> {
    let targets = cfg.targets();
    let queue = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<TargetReport, String>>>> = Mutex::new(vec![None; targets.len()]);
    std::thread::scope(|s| {
        for _ in 0..cfg.jobs.min(targets.len().max(1)) {
            s.spawn(|| loop {
                let i = {
                    let Ok(mut q) = queue.lock() else { return };
                    let i = *q;
                    *q += 1;
                    i
                };
                let Some(t) = targets.get(i) else { return };
                let r = run_target(cfg, t);
                if let Ok(mut res) = results.lock() {
                    res[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().map_err(|_| "a worker panicked".to_string())?;
    results.into_iter().map(|r| r.unwrap_or_else(|| Err("a target did not run".into()))).collect()
}

/// The results as a Markdown table.
pub fn table(reports: &[TargetReport]) -> String {
    let mut s = String::from(
        "| target | cases | Ok | typed errors | panics | aborts | timeouts | seconds |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in reports {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} |\n",
            r.target,
            r.cases,
            r.ok,
            r.errors,
            r.count(FailureKind::Panic),
            r.count(FailureKind::Abort),
            r.count(FailureKind::Timeout),
            r.seconds
        );
    }
    s
}

/// Replays a kept input of `target` in this process (a panic propagates): the outcome.
pub fn replay(target_name: &str, input: &Path) -> Result<targets::Outcome, String> {
    let target = targets::all()
        .into_iter()
        .find(|t| t.name == target_name)
        .ok_or_else(|| format!("unknown target {target_name}; known: {}", names().join(", ")))?;
    Ok((target.run)(input))
}

/// The names of every target.
pub fn names() -> Vec<&'static str> {
    targets::all().iter().map(|t| t.name).collect()
}
