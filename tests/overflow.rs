//! A strong count that would overflow aborts the process, like `Rc`: a
//! wrapped count would later free memory that is still in use.
//!
//! The abort is observed from outside: the test re-runs this test binary as a
//! child process that clones one `Gc` `u32::MAX` times.

use std::process::Command;

use rcycle::Gc;

const CHILD_VAR: &str = "RCYCLE_OVERFLOW_CHILD";

/// Runs in the child only: leaks clones until the count would overflow.
#[test]
fn overflow_child() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let g = Gc::new(0u8);
    for _ in 0..u32::MAX {
        std::mem::forget(std::hint::black_box(g.clone()));
    }
    // Unreachable if the count aborts: u32::MAX clones plus `g` itself is one
    // more handle than a 32-bit count can hold.
    println!("count did not overflow: {}", Gc::strong_count(&g));
}

#[test]
#[cfg_attr(miri, ignore = "4 billion clones")]
fn strong_count_overflow_aborts() {
    if std::env::var_os(CHILD_VAR).is_some() || std::env::var_os("RCYCLE_UNDER_SANITIZER").is_some()
    {
        return; // (too slow under a sanitizer)
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "overflow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("did not overflow"), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(6),
            "expected SIGABRT, got {:?}",
            out.status
        );
    }
    #[cfg(not(unix))]
    assert!(!out.status.success());
}
