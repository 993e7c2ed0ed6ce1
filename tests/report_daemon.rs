//! Reports from a running daemon: a signal asks, the main loop polls
//! (`install_report_signal` + `report_if_requested`), and
//! `RCYCLE_REPORT_AT_EXIT=1` prints the live report when a thread exits.

use std::cell::RefCell;
use std::process::Command;

use rcycle::report::{report_if_requested, request_report};
use rcycle::{Gc, Trace};

#[derive(Trace)]
struct Pair {
    other: RefCell<Option<Gc<Pair>>>,
}

fn pair_cycle() {
    let a = Gc::new(Pair {
        other: RefCell::new(None),
    });
    let b = Gc::new(Pair {
        other: RefCell::new(Some(a.clone())),
    });
    *a.other.borrow_mut() = Some(b);
}

#[derive(Trace)]
struct Dispatcher {
    pending: RefCell<Vec<Gc<String>>>,
}

/// The request flag is process-wide: everything that sets or polls it is in
/// this one test, so parallel tests cannot steal a request.
#[test]
#[cfg(unix)]
#[cfg_attr(miri, ignore = "Miri cannot install signal handlers")]
fn a_signal_asks_and_the_main_loop_reports() {
    assert!(report_if_requested().is_none());
    assert_eq!(
        rcycle::report::install_report_signal(None).unwrap(),
        libc::SIGUSR1
    );

    let dispatcher = Gc::new(Dispatcher {
        pending: RefCell::new((0..3).map(|i| Gc::new(format!("iq {i}"))).collect()),
    });
    pair_cycle();

    // SAFETY: raising a signal whose handler only stores to an atomic.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
    let report = report_if_requested().expect("the signal asked for a report");
    assert!(report_if_requested().is_none(), "the request is consumed");

    // Live: the dispatcher, its 3 strings, and the garbage pair (a report
    // does not collect).
    assert_eq!(report.live.count(), 6);
    assert_eq!(report.outside_total, 1);
    assert_eq!(report.outside_holders.len(), 1);
    assert!(report.outside_holders[0]
        .object
        .type_name
        .ends_with("Dispatcher"));
    assert_eq!(report.outside_holders[0].handles, 1);
    assert_eq!(
        (
            report.garbage.garbage.objects,
            report.garbage.garbage.cycles
        ),
        (2, 1)
    );
    let text = report.to_string();
    assert!(
        text.starts_with("Partition of a set of 6 objects."),
        "{text}"
    );
    assert!(text.contains("Held from outside the heap: 1 objects, most handles first:\n"));
    assert!(text.contains("report_daemon::Dispatcher"));
    assert!(text.contains("consider WeakGc for the field 'other'"));
    // Nothing was freed by the report.
    assert_eq!(rcycle::collect(), 2);

    // From code, too.
    request_report();
    assert!(report_if_requested().is_some());
    assert!(report_if_requested().is_none());

    // A signal that cannot be caught is refused.
    assert!(rcycle::report::install_report_signal(Some(libc::SIGKILL)).is_err());
    drop(dispatcher);
}

/// Run as a child process by `report_at_thread_exit`: a thread leaks one
/// string and leaves a garbage cycle behind, then exits.
#[test]
fn thread_exit_child() {
    if std::env::var_os("RCYCLE_REPORT_AT_EXIT_TEST").is_none() {
        return;
    }
    std::thread::spawn(|| {
        std::mem::forget(Gc::new(String::from("leaked")));
        pair_cycle(); // freed by the final collection, before the report
    })
    .join()
    .unwrap();
}

fn run_child(report_at_exit: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "thread_exit_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RCYCLE_REPORT_AT_EXIT_TEST", "1")
        .env("RCYCLE_REPORT_AT_EXIT", report_at_exit)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot run a child process")]
fn report_at_thread_exit() {
    let stderr = run_child("1");
    assert!(
        stderr.contains(
            "rcycle: live objects at thread exit\nPartition of a set of 1 object. Total size = "
        ),
        "{stderr}"
    );
    assert!(stderr.contains("alloc::string::String"), "{stderr}");
    assert!(!stderr.contains("Pair"), "collected first: {stderr}");
    assert_eq!(stderr.matches("Partition of a set of").count(), 1);

    let quiet = run_child("0");
    assert!(!quiet.contains("Partition of a set of"), "{quiet}");
}
