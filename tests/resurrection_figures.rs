//! `collect_with_stats` figures agree with what the collection did when
//! finalizers change the garbage set (issue 19, section 4, item 1): an object
//! whose value the collection dropped counts as freed, one handed back alive
//! counts as resurrected.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use rcycle::report::CollectorCounters;
use rcycle::{
    add_collect_callback, collect, collect_with_stats, object_count, remove_collect_callback,
    CollectPhase, Finalize, Gc, Trace, Tracer,
};

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
    static STASH: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
    static TRACE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// What a node's finalizer does.
#[derive(Clone, Copy, PartialEq)]
enum OnFinalize {
    /// Drops the node's handle to its neighbour.
    DropNext,
    /// Leaks a mutable borrow of its own cell: the node cannot be traced any
    /// more, so the recount finds it held from outside.
    LeakBorrow,
    /// Stashes a clone of its handle to its neighbour in `STASH`.
    StashNext,
    /// Makes every later `trace` panic.
    PanicTrace,
}

struct Node {
    on_finalize: OnFinalize,
    next: RefCell<Option<Gc<Node>>>,
}

// SAFETY: reports `next` once (or panics before reporting anything).
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer<'_>) {
        if TRACE_PANICS.get() {
            panic!("trace panics");
        }
        t.field("next", &self.next);
    }
    fn has_finalizer() -> bool {
        true
    }
    fn finalize(&self) {
        Finalize::finalize(self)
    }
}

impl Finalize for Node {
    fn finalize(&self) {
        match self.on_finalize {
            OnFinalize::DropNext => drop(self.next.borrow_mut().take()),
            OnFinalize::LeakBorrow => std::mem::forget(self.next.borrow_mut()),
            OnFinalize::StashNext => {
                let next = self.next.borrow().clone();
                STASH.with(|s| s.borrow_mut().extend(next));
            }
            OnFinalize::PanicTrace => TRACE_PANICS.set(true),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        DROPS.set(DROPS.get() + 1);
    }
}

/// A ring of nodes, in this order, each pointing to the next; no handle to
/// it is returned.
fn ring(kinds: &[OnFinalize]) -> Vec<Gc<Node>> {
    let nodes: Vec<Gc<Node>> = kinds
        .iter()
        .map(|&on_finalize| {
            Gc::new(Node {
                on_finalize,
                next: RefCell::new(None),
            })
        })
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        *n.next.borrow_mut() = Some(nodes[(i + 1) % nodes.len()].clone());
    }
    nodes
}

fn take_drops() -> usize {
    DROPS.replace(0)
}

#[test]
fn a_member_dropped_by_a_finalizer_counts_as_freed() {
    collect();
    take_drops();
    let before = CollectorCounters::read();
    let objects = object_count();
    // A's finalizer drops the only handle to B; B's leaks a borrow of B.
    let nodes = ring(&[OnFinalize::DropNext, OnFinalize::LeakBorrow]);
    drop(nodes);
    let stats = collect_with_stats();
    // The recount finds B (untraceable) and A (held by B) alive, but B has
    // no handle left: both values go in this collection.
    assert_eq!(take_drops(), 2);
    assert_eq!(object_count(), objects);
    assert_eq!((stats.freed, stats.resurrected), (2, 0));
    assert_eq!(stats.freed_by_type, [("resurrection_figures::Node", 2)]);
    let after = CollectorCounters::read();
    assert_eq!(after.freed, before.freed + 2);
    assert_eq!(after.resurrected, before.resurrected);
}

#[test]
fn survivors_that_go_in_the_same_collection_count_as_freed() {
    collect();
    take_drops();
    let objects = object_count();
    // A drops its handle to B, B leaks a borrow of itself, C stashes A.
    let nodes = ring(&[
        OnFinalize::DropNext,
        OnFinalize::LeakBorrow,
        OnFinalize::StashNext,
    ]);
    drop(nodes);
    let stats = collect_with_stats();
    // The recount finds all three alive (B untraceable holds C, C holds A).
    // B had no handle left: it goes, and C with it (only B held it); A is
    // stashed.
    assert_eq!(take_drops(), 2);
    assert_eq!(object_count(), objects + 1);
    assert_eq!((stats.freed, stats.resurrected), (2, 1));
    assert_eq!(stats.freed_by_type, [("resurrection_figures::Node", 2)]);
    assert!(stats
        .to_string()
        .starts_with("freed 2 objects (2 resurrection_figures::Node); 1 resurrected; "));

    let a = STASH.with(|s| s.borrow_mut().pop()).unwrap();
    assert!(a.next.borrow().is_none());
    drop(a);
    assert_eq!(take_drops(), 1);
    assert_eq!(object_count(), objects);
}

#[test]
fn a_panic_in_the_recount_hands_every_member_back_as_resurrected() {
    collect();
    take_drops();
    let objects = object_count();
    let seen: Rc<RefCell<Vec<(usize, usize)>>> = Rc::default();
    let record = seen.clone();
    let id = add_collect_callback(move |phase, stats| {
        if phase == CollectPhase::Stop {
            record.borrow_mut().push((stats.freed, stats.resurrected));
        }
    });
    // Resets the flag however the test ends (the thread's final collection
    // traces these nodes again).
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            TRACE_PANICS.set(false);
        }
    }
    let reset = Reset;
    drop(ring(&[OnFinalize::PanicTrace, OnFinalize::PanicTrace]));
    let result = catch_unwind(AssertUnwindSafe(collect_with_stats));
    assert!(result.is_err());
    // Nothing was dropped: both members were handed back alive.
    assert_eq!(take_drops(), 0);
    assert_eq!(object_count(), objects + 2);
    assert_eq!(*seen.borrow(), [(0, 2)]);

    // Finalizers never rerun, so there is no recount this time.
    drop(reset);
    let stats = collect_with_stats();
    assert_eq!((stats.freed, stats.resurrected), (2, 0));
    assert_eq!(take_drops(), 2);
    assert_eq!(object_count(), objects);
    assert_eq!(*seen.borrow(), [(0, 2), (2, 0)]);
    assert!(remove_collect_callback(id));
}
