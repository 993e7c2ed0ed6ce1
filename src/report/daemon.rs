//! Reports from a running daemon: on a signal, and at thread exit.
//!
//! In the story this crate is built around, the developer of a Python daemon
//! installed a `SIGINT` handler that dropped into a debugger, to look at the
//! heap of the running process. Here:
//!
//! * [`install_report_signal`] (Unix) installs a handler that only sets a
//!   flag (an atomic store: async-signal-safe), and the application polls
//!   [`report_if_requested`] at a safe point of its main loop, which clears
//!   the flag and returns a [`DaemonReport`] for that thread's heap;
//!   [`request_report`] sets the same flag from code;
//! * with `RCYCLE_REPORT_AT_EXIT=1` in the environment, each thread prints
//!   [`live_report`] to stderr when it exits, after its
//!   final collection (`at_thread_exit`, called by the heap's teardown). The
//!   main thread's report comes at process exit where the platform destroys
//!   the main thread's thread-locals (Linux with glibc does, on `exit`).

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use super::cycles::{collect_dry_run, DryRun};
use super::{live_report, outside_holders, LiveReport, OutsideHolder};

/// Set by the signal handler or [`request_report`]; cleared by
/// [`report_if_requested`].
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Outside holders shown by a [`DaemonReport`].
const TOP_HOLDERS: usize = 10;

/// What a daemon prints when asked: the live objects by type, the objects
/// held from outside the heap (the roots of everything alive, so of every
/// reachable leak), and the garbage cycles a collection would free, with the
/// fields to make weak. `Display` prints all three.
///
/// ```
/// let alive = rcycle::Gc::new(1u8);
/// rcycle::report::request_report();
/// let report = rcycle::report::report_if_requested().unwrap();
/// assert!(report.to_string().starts_with("Partition of a set of 1 object."));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DaemonReport {
    /// The live objects by type.
    pub live: LiveReport,
    /// The objects held from outside the heap with the most handles, most
    /// first (at most 10).
    pub outside_holders: Vec<OutsideHolder>,
    /// How many objects are held from outside in all.
    pub outside_total: usize,
    /// The garbage a collection would free now (nothing was freed).
    pub garbage: DryRun,
}

impl fmt::Display for DaemonReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.live)?;
        writeln!(
            f,
            "Held from outside the heap: {} objects{}",
            self.outside_total,
            if self.outside_holders.is_empty() {
                "."
            } else {
                ", most handles first:"
            }
        )?;
        for h in &self.outside_holders {
            writeln!(
                f,
                "{:7} handles {} {}",
                h.handles, h.object.id, h.object.type_name
            )?;
        }
        write!(f, "{}", self.garbage)
    }
}

/// Installs a handler for `signal` (`None`: `SIGUSR1`) that asks for a report:
/// it only sets a flag, which [`report_if_requested`] reads. Returns the
/// signal number. Unix only.
///
/// ```
/// rcycle::report::install_report_signal(None).expect("sigaction");
/// # // What `kill -USR1 <pid>` does from outside:
/// # // SAFETY: the handler only stores to an atomic.
/// # unsafe { libc::raise(libc::SIGUSR1) };
/// loop {
///     // ... the daemon's work ...
///     if let Some(report) = rcycle::report::report_if_requested() {
///         eprintln!("{report}"); // `kill -USR1 <pid>` prints this
///         break;
///     }
/// }
/// ```
///
/// # Errors
/// The error of `sigaction` (for example, for `SIGKILL`).
#[cfg(unix)]
pub fn install_report_signal(
    signal: Option<std::os::raw::c_int>,
) -> std::io::Result<std::os::raw::c_int> {
    extern "C" fn on_signal(_: std::os::raw::c_int) {
        // Async-signal-safe: a lock-free atomic store, nothing else.
        REQUESTED.store(true, Ordering::Relaxed);
    }
    let signal = signal.unwrap_or(libc::SIGUSR1);
    // SAFETY: a zeroed `sigaction` is a valid value (empty mask, no flags)
    // that is then filled in; the handler is an `extern "C" fn(c_int)` that
    // only stores to an atomic, as a signal handler may.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(std::os::raw::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(signal)
}

/// Asks for a report, as the signal of [`install_report_signal`] does: the
/// next [`report_if_requested`] (on any thread) returns one.
///
/// ```
/// rcycle::report::request_report();
/// assert!(rcycle::report::report_if_requested().is_some());
/// ```
pub fn request_report() {
    REQUESTED.store(true, Ordering::Relaxed);
}

/// If a report was asked for (by the signal of [`install_report_signal`], or
/// by [`request_report`]) since the last call, clears the request and returns
/// a report of this thread's heap; otherwise `None`, at the cost of one
/// atomic load. Call it at a safe point of the main loop: not from a signal
/// handler. Only the first thread to poll sees a request. It does not
/// collect: the garbage is reported in [`DaemonReport::garbage`], and is
/// still counted in the live report.
///
/// ```
/// assert!(rcycle::report::report_if_requested().is_none());
/// ```
pub fn report_if_requested() -> Option<DaemonReport> {
    if !REQUESTED.load(Ordering::Relaxed) || !REQUESTED.swap(false, Ordering::Relaxed) {
        return None;
    }
    let garbage = collect_dry_run();
    let holders = outside_holders();
    let outside_total = holders.len();
    Some(DaemonReport {
        live: live_report(),
        outside_holders: holders.into_iter().take(TOP_HOLDERS).collect(),
        outside_total,
        garbage,
    })
}

/// Called by the runtime's thread-exit teardown after its final collection
/// (wired at the crate root: `EXIT_HOOKS`):
/// prints the live report to stderr if `RCYCLE_REPORT_AT_EXIT` is `1` (or
/// `true`, `yes`, `on`). Written straight to the process's stderr (not
/// through `eprint!`, whose test capture may be gone at thread exit); a
/// panic from a `heap_size` impl is contained (unwinding out of a
/// thread-local destructor would abort).
pub(crate) fn at_thread_exit() {
    let on = std::env::var("RCYCLE_REPORT_AT_EXIT")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false);
    if !on {
        return;
    }
    // `live_report` reads this thread's heap: the thread's runtime pointer
    // stays set until after this call.
    let text = std::panic::catch_unwind(|| format!("{}", live_report()))
        .unwrap_or_else(|_| "a `heap_size` impl panicked while reporting".to_string());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "rcycle: live objects at thread exit\n{text}");
}
