//! Bytes per `Gc<u64>`, measured two ways in one process: with a counting
//! global allocator (what the program asks the allocator for) and with the
//! resident set size (what the machine actually pays, allocator overhead
//! included). `Rc<u64>` is measured beside it for comparison.

use std::alloc::{GlobalAlloc, Layout, System};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use rcycle::Gc;

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to `System`, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resident memory of this process in bytes (Linux; 0 elsewhere).
fn resident_bytes() -> usize {
    if cfg!(miri) {
        return 0; // Miri isolates the program from /proc
    }
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

const N: usize = if cfg!(miri) { 1_000 } else { 1_000_000 };
/// The most a chunked heap can hold beyond N slots: the unused tail of its
/// newest chunk (chunks are at most 64 KiB).
const CHUNK_SLACK: f64 = 65536.0;

#[test]
fn bytes_per_gc_u64() {
    // Warm up this thread's heap (type table, class table) so they are not
    // charged to the objects.
    drop(Gc::new(0u64));
    let mut gcs = Vec::with_capacity(N);
    let mut rcs = Vec::with_capacity(N);

    let (bytes0, rss0) = (ALLOCATED.load(Relaxed), resident_bytes());
    for i in 0..N as u64 {
        gcs.push(Gc::new(i));
    }
    let (bytes1, rss1) = (ALLOCATED.load(Relaxed), resident_bytes());
    for i in 0..N as u64 {
        rcs.push(Rc::new(i));
    }
    let (bytes2, rss2) = (ALLOCATED.load(Relaxed), resident_bytes());

    let gc_counted = (bytes1 - bytes0) as f64 / N as f64;
    let rc_counted = (bytes2 - bytes1) as f64 / N as f64;
    // The handle vectors were reserved up front but their pages become
    // resident as they fill: 8 bytes per handle, not part of the object.
    let handle = std::mem::size_of::<Gc<u64>>() as f64;
    let gc_rss = rss1.saturating_sub(rss0) as f64 / N as f64 - handle;
    let rc_rss = rss2.saturating_sub(rss1) as f64 / N as f64 - handle;
    println!("bytes per object over {N} objects:");
    println!("  Gc<u64>: {gc_counted:.3} allocated, {gc_rss:.2} resident");
    println!("  Rc<u64>: {rc_counted:.3} allocated, {rc_rss:.2} resident");

    // The object itself: a 16-byte header and the value, in a 24-byte slot.
    assert_eq!(std::mem::size_of::<Gc<u64>>(), 8);
    assert_eq!(std::mem::size_of::<Option<Gc<u64>>>(), 8);
    assert_eq!(rc_counted, 24.0);
    assert!(gc_counted >= 24.0);
    if cfg!(feature = "sites") {
        // The `sites` feature records each object's allocation site in a
        // hash map (address -> site, 16 bytes an entry, one control byte,
        // at most 7/8 full and doubling as it grows): up to about 40 bytes
        // an object on top of the slot. The 24-byte promise is for the
        // default build.
        assert!(
            gc_counted <= 24.0 + 40.0,
            "Gc<u64> with sites costs {gc_counted} bytes per object"
        );
        return;
    }
    // Everything the heap allocated for N objects: N slots of 24 bytes plus,
    // at most, the unused tail of the newest chunk (no per-object overhead).
    assert!(
        gc_counted <= 24.0 + CHUNK_SLACK / N as f64,
        "Gc<u64> costs {gc_counted} bytes per object"
    );
    if !cfg!(miri) && rss0 > 0 {
        // Resident memory: no malloc header per object, so below Rc's.
        // A sanitizer's shadow memory adds to every resident byte; .ci/run
        // says so through this variable.
        if std::env::var_os("RCYCLE_UNDER_SANITIZER").is_none() {
            assert!(gc_rss <= 24.5, "Gc<u64> resident {gc_rss} bytes per object");
        }
        assert!(gc_rss < rc_rss, "Gc {gc_rss} vs Rc {rc_rss} resident");
    }
    assert_eq!(
        gcs.iter().map(|g| **g).sum::<u64>(),
        rcs.iter().map(|r| **r).sum::<u64>()
    );
}
