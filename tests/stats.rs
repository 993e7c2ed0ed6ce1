//! Collection statistics (`gc.get_stats`), cumulative counters and collection
//! callbacks (`gc.callbacks`). Every test runs on its own thread, so its heap
//! is its own and every number below is exact.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcycle::report::CollectorCounters;
use rcycle::{
    add_collect_callback, candidate_count, collect, collect_with_stats, object_count,
    remove_collect_callback, CollectPhase, CollectStats, Finalize, Gc, Trace,
};

#[derive(Trace)]
struct Pair {
    other: RefCell<Option<Gc<Pair>>>,
}

#[derive(Trace)]
struct Ring {
    next: RefCell<Option<Gc<Ring>>>,
}

/// Two `Pair`s pointing at each other, dropped: 2 garbage objects, 1 root
/// (only `a` is dropped to a non-zero count; `b` moves into `a`).
fn pair_cycle() {
    let a = Gc::new(Pair {
        other: RefCell::new(None),
    });
    let b = Gc::new(Pair {
        other: RefCell::new(Some(a.clone())),
    });
    *a.other.borrow_mut() = Some(b);
}

/// A ring of `n` `Ring`s, dropped: `n` garbage objects, 1 root.
fn ring(n: usize) {
    let first = Gc::new(Ring {
        next: RefCell::new(None),
    });
    let mut last = first.clone();
    for _ in 1..n {
        last = Gc::new(Ring {
            next: RefCell::new(Some(last)),
        });
    }
    *first.next.borrow_mut() = Some(last);
}

/// 3 separate 2-cycles and one 4-ring: 10 objects, 4 roots.
fn ten_garbage_objects() {
    for _ in 0..3 {
        pair_cycle();
    }
    ring(4);
}

#[test]
fn stats_of_one_collection_are_exact() {
    ten_garbage_objects();
    assert_eq!(candidate_count(), 4);
    let stats = collect_with_stats();
    assert_eq!(stats.freed, 10);
    assert_eq!(stats.resurrected, 0);
    assert_eq!(stats.roots, 4);
    assert_eq!(stats.examined, 10);
    assert_eq!(
        stats.freed_by_type,
        [("stats::Pair", 6), ("stats::Ring", 4)]
    );
    assert_eq!(object_count(), 0);
    assert!(stats.to_string().starts_with("freed 10 objects (6 stats::Pair, 4 stats::Ring); 0 resurrected; 4 roots, 10 objects examined in "));

    // Nothing left: a collection over an empty buffer.
    let empty = collect_with_stats();
    assert_eq!(
        (
            empty.freed,
            empty.roots,
            empty.examined,
            empty.freed_by_type.len()
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn live_objects_are_examined_not_freed() {
    let keep = Gc::new(Pair {
        other: RefCell::new(None),
    });
    let other = Gc::new(Pair {
        other: RefCell::new(Some(keep.clone())),
    });
    *keep.other.borrow_mut() = Some(other);
    drop(keep.clone()); // 3 -> 2: `keep` is a candidate
    pair_cycle();
    let stats = collect_with_stats();
    // `keep` and the garbage pair were buffered; `keep <-> other` is live.
    assert_eq!((stats.roots, stats.examined, stats.freed), (2, 4, 2));
    assert_eq!(stats.freed_by_type, [("stats::Pair", 2)]);
    drop(keep);
    assert_eq!(collect(), 2);
}

#[test]
fn plain_collect_counts_no_types_but_reports_the_same() {
    ten_garbage_objects();
    assert_eq!(collect(), 10);
}

thread_local! {
    static STASH: RefCell<Vec<Gc<Phoenix>>> = const { RefCell::new(Vec::new()) };
}

/// Resurrects itself once, from its finalizer.
#[derive(Trace)]
#[trace(finalize)]
struct Phoenix {
    other: RefCell<Option<Gc<Phoenix>>>,
}

impl Finalize for Phoenix {
    fn finalize(&self) {
        if let Some(other) = self.other.borrow().as_ref() {
            STASH.with(|s| s.borrow_mut().push(other.clone()));
        }
    }
}

#[test]
fn resurrected_objects_are_counted_and_totalled() {
    let before = CollectorCounters::read();
    let a = Gc::new(Phoenix {
        other: RefCell::new(None),
    });
    let b = Gc::new(Phoenix {
        other: RefCell::new(Some(a.clone())),
    });
    *a.other.borrow_mut() = Some(b.clone());
    drop((a, b));
    let stats = collect_with_stats();
    // Each finalizer stashes its neighbour: both survive.
    assert_eq!((stats.freed, stats.resurrected), (0, 2));
    assert!(stats.freed_by_type.is_empty());
    let after = CollectorCounters::read();
    assert_eq!(after.collections, before.collections + 1);
    assert_eq!(after.resurrected, before.resurrected + 2);
    assert_eq!(after.freed, before.freed);
    assert!(after.duration >= before.duration + stats.duration);

    // Finalizers never run twice: once the stash goes, both are freed.
    STASH.with(|s| s.borrow_mut().clear());
    let stats = collect_with_stats();
    assert_eq!((stats.freed, stats.resurrected), (2, 0));
    assert_eq!(stats.freed_by_type, [("stats::Phoenix", 2)]);
    assert_eq!(CollectorCounters::read().freed, before.freed + 2);
}

/// Every callback call, as (phase, stats).
type Calls = Rc<RefCell<Vec<(CollectPhase, CollectStats)>>>;

/// Registers a callback that records every call.
fn recorder() -> (Calls, rcycle::CallbackId) {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let seen = calls.clone();
    let id = add_collect_callback(move |phase, stats| {
        seen.borrow_mut().push((phase, stats.clone()));
    });
    (calls, id)
}

#[test]
fn callbacks_are_called_twice_per_collection() {
    let (calls, id) = recorder();
    ten_garbage_objects();
    let freed = collect(); // a plain collect: the callback still sees per-type counts
    assert_eq!(freed, 10);
    {
        let calls = calls.borrow();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0], (CollectPhase::Start, CollectStats::default()));
        let (phase, stats) = &calls[1];
        assert_eq!(*phase, CollectPhase::Stop);
        assert_eq!((stats.freed, stats.roots, stats.examined), (10, 4, 10));
        assert_eq!(
            stats.freed_by_type,
            [("stats::Pair", 6), ("stats::Ring", 4)]
        );
    }
    // `collect_with_stats` returns what the callback saw.
    pair_cycle();
    let stats = collect_with_stats();
    assert_eq!(calls.borrow().len(), 4);
    assert_eq!(calls.borrow()[3], (CollectPhase::Stop, stats));

    assert!(remove_collect_callback(id));
    assert!(!remove_collect_callback(id));
    collect();
    assert_eq!(calls.borrow().len(), 4, "a removed callback is not called");
}

#[test]
fn automatic_collections_call_callbacks() {
    let (calls, _id) = recorder();
    rcycle::set_threshold(4);
    for _ in 0..3 {
        pair_cycle(); // 1 candidate each
    }
    assert!(calls.borrow().is_empty());
    pair_cycle(); // the 4th candidate starts a collection
    let calls = calls.borrow();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, CollectPhase::Start);
    assert_eq!((calls[1].0, calls[1].1.freed), (CollectPhase::Stop, 8));
    assert_eq!(object_count(), 0);
}

#[test]
fn callbacks_may_report_and_collect() {
    let inner = Rc::new(RefCell::new(Vec::new()));
    let log = inner.clone();
    let _id = add_collect_callback(move |phase, _| {
        // Collecting from inside a collection does nothing.
        let nested = collect();
        let nested_stats = collect_with_stats();
        let dry = rcycle::collect_dry_run();
        let report = rcycle::live_report();
        log.borrow_mut().push((
            phase,
            nested,
            nested_stats.freed,
            dry.garbage.objects,
            report.count(),
        ));
    });
    pair_cycle();
    assert_eq!(collect(), 2);
    assert_eq!(
        *inner.borrow(),
        [
            (CollectPhase::Start, 0, 0, 0, 2),
            (CollectPhase::Stop, 0, 0, 0, 0)
        ]
    );
}

#[test]
fn callbacks_may_add_and_remove_callbacks() {
    let calls = Rc::new(RefCell::new(Vec::<&str>::new()));
    let added = Rc::new(Cell::new(None));
    let (log, slot) = (calls.clone(), added.clone());
    let first = add_collect_callback(move |phase, _| {
        log.borrow_mut().push("first");
        if phase == CollectPhase::Start && slot.get().is_none() {
            let log = log.clone();
            slot.set(Some(add_collect_callback(move |_, _| {
                log.borrow_mut().push("added");
            })));
        }
    });
    // A callback that removes itself.
    let me = Rc::new(Cell::new(None));
    let (log, me2) = (calls.clone(), me.clone());
    me.set(Some(add_collect_callback(move |_, _| {
        log.borrow_mut().push("once");
        if let Some(id) = me2.take() {
            assert!(remove_collect_callback(id));
        }
    })));

    collect();
    // Changes take effect from the next collection; each callback that saw
    // Start sees Stop.
    assert_eq!(*calls.borrow(), ["first", "once", "first", "once"]);
    calls.borrow_mut().clear();
    collect();
    assert_eq!(*calls.borrow(), ["first", "added", "first", "added"]);
    assert!(remove_collect_callback(first));
    assert!(remove_collect_callback(added.get().unwrap()));
}

#[test]
fn a_panicking_callback_leaves_the_heap_consistent() {
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let panicky = add_collect_callback(|phase, _| {
        if phase == CollectPhase::Start {
            panic!("callback panic");
        }
    });
    let _counter = add_collect_callback(move |_, _| c.set(c.get() + 1));
    ten_garbage_objects();
    let result = catch_unwind(AssertUnwindSafe(collect));
    let payload = result.expect_err("the callback's panic resumes");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"callback panic"));
    // The collection ran to the end anyway, and so did the other callback.
    assert_eq!(calls.get(), 2);
    assert_eq!(object_count(), 0);
    assert_eq!(candidate_count(), 0);

    assert!(remove_collect_callback(panicky));
    // The heap is usable: not stuck "collecting".
    pair_cycle();
    assert_eq!(collect(), 2);
    assert_eq!(calls.get(), 4);
}

#[test]
fn the_final_collections_at_thread_exit_call_no_callback() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    std::thread::spawn(move || {
        let _id = add_collect_callback(move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        pair_cycle(); // left for the thread-exit collection
    })
    .join()
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
