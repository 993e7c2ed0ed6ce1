//! # rcycle — the `Rc` that collects its own cycles
//!
//! [`Gc<T>`] and [`WeakGc<T>`] are used exactly like [`std::rc::Rc`] and
//! [`std::rc::Weak`]: an object is freed the moment its last handle goes. In
//! addition, objects that only keep *each other* alive — a parent and a child
//! pointing at each other, a ring, a graph — are found and freed by a cycle
//! collector: [`collect()`] (which also runs automatically) returns how many
//! objects it freed.
//!
//! ```
//! use rcycle::{collect, Gc, Trace, WeakGc};
//! use std::cell::RefCell;
//!
//! #[derive(Trace)]
//! struct Node {
//!     name: String,
//!     parent: RefCell<Option<Gc<Node>>>, // strong: a cycle with `children`
//!     children: RefCell<Vec<Gc<Node>>>,
//! }
//!
//! let root = Gc::new(Node { name: "root".into(), parent: RefCell::new(None), children: RefCell::new(vec![]) });
//! for i in 0..3 {
//!     let child = Gc::new(Node { name: format!("c{i}"), parent: RefCell::new(Some(root.clone())), children: RefCell::new(vec![]) });
//!     root.children.borrow_mut().push(child);
//! }
//! drop(root);               // an `Rc` would leak all four nodes here
//! assert_eq!(collect(), 4); // rcycle frees them
//! ```
//!
//! ## How it works
//!
//! Each thread has its own heap. Objects are allocated from size-class chunks
//! with a 16-byte header (32-bit strong and weak counts, a scratch word for
//! the collector, state bits and a type index), so a `Gc<u64>` object is 24
//! bytes, like an `Rc<u64>`. When a count drops to a non-zero value the object
//! is remembered as a *candidate*; a collection runs synchronous trial
//! deletion (Bacon & Rajan 2001) over the subgraph reachable from the
//! candidates only; the garbage it finds is freed in a fixed order that keeps
//! `Drop` impls, finalizers and panics sound (see `src/collect.rs`).
//!
//! ## What is alive, and why
//!
//! The leak reporter lives in [`report`]. The four calls a leak hunt starts
//! with are also here: [`live_report`] (what is alive, by type),
//! [`Snapshot`] (what grew), [`collect_dry_run`] (what a collection would
//! free, and which field to make weak) and [`why_alive`] (who holds an
//! object, through which fields).
//!
//! ```
//! use rcycle::{why_alive, Gc, Trace};
//!
//! #[derive(Trace)]
//! struct Dispatcher { expected: Vec<Gc<u64>> }
//!
//! let iq = Gc::new(42u64);
//! let d = Gc::new(Dispatcher { expected: vec![iq.clone()] });
//! assert!(why_alive(&iq).unwrap().to_string().ends_with(".expected[0] -> u64"));
//! assert_eq!(rcycle::report::count::<Dispatcher>(), 1);
//! ```
//!
//! ## Implementing `Trace`
//!
//! Every value in a `Gc` implements [`Trace`]. Use `#[derive(Trace)]`; mark
//! fields that hold no `Gc` with `#[trace(skip)]` if their type has no `Trace`
//! impl. Hand-written impls are `unsafe`: see the trait's safety contract.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate self as rcycle;

mod addr_map;
mod alloc;
mod collect;
mod gc;
mod header;
mod heap;
mod policy;
pub mod report;
mod runtime;
#[cfg(feature = "sites")]
mod sites;
mod stats;
mod trace;
mod types;
mod weak;
mod weak_collections;

pub use crate::gc::{Gc, GcMut};
// The four calls of the README's leak hunt, one per question it starts
// with; the rest of the reporter is under `rcycle::report`.
pub use crate::report::{collect_dry_run, live_report, why_alive, Snapshot};
pub use crate::stats::{CallbackId, CollectPhase, CollectStats};
pub use crate::trace::{Finalize, Label, Trace, Tracer};
pub use crate::weak::WeakGc;
pub use crate::weak_collections::{
    WeakKeyMap, WeakKeyMapIter, WeakSet, WeakSetIter, WeakValueMap, WeakValueMapIter,
};
pub use rcycle_derive::Trace;

/// Runs a collection now on this thread's heap and returns the number of
/// objects it freed (objects resurrected by a finalizer are not counted).
///
/// Only the subgraph reachable from objects whose count dropped since the last
/// collection is examined, so the cost depends on those objects, not on the
/// size of the heap. Called while a collection is already running (from a
/// `Drop` impl or a finalizer), it does nothing and returns 0.
///
/// ```
/// use rcycle::{collect, Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Ring { next: RefCell<Option<Gc<Ring>>> }
///
/// let a = Gc::new(Ring { next: RefCell::new(None) });
/// let b = Gc::new(Ring { next: RefCell::new(Some(a.clone())) });
/// *a.next.borrow_mut() = Some(b);
/// assert_eq!(collect(), 0); // `a` is still held by this function
/// drop(a);
/// assert_eq!(collect(), 2);
/// ```
pub fn collect() -> usize {
    crate::runtime::collect_now()
}

/// Stops automatic collection on this thread ([`collect()`] still works).
///
/// ```
/// rcycle::disable();
/// assert!(!rcycle::is_enabled());
/// rcycle::enable();
/// ```
pub fn disable() {
    let rt = crate::runtime::runtime();
    rt.collector.policy.set_enabled(&rt.heap, false);
    crate::runtime::setting_changed()
}

/// Turns automatic collection back on for this thread (it is on by default).
///
/// ```
/// rcycle::enable();
/// assert!(rcycle::is_enabled());
/// ```
pub fn enable() {
    let rt = crate::runtime::runtime();
    rt.collector.policy.set_enabled(&rt.heap, true);
    crate::runtime::setting_changed()
}

/// Whether automatic collection is on for this thread.
///
/// ```
/// assert!(rcycle::is_enabled());
/// ```
pub fn is_enabled() -> bool {
    crate::runtime::existing_runtime().is_none_or(|rt| rt.collector.policy.is_enabled())
}

/// Sets how many candidates (objects whose count dropped to a non-zero value)
/// this thread buffers before it collects automatically. The default is
/// 10,000. After each collection the trigger adapts: it is raised to the
/// number of live objects the collection had to walk, so a large live graph
/// that keeps being revisited does not make collection quadratic; after a
/// collection that found no garbage at all, it is raised to the number of
/// objects (a program walking its live data makes every object it touches a
/// candidate, and collecting halfway through such a walk finds nothing).
///
/// Independently of this threshold, waiting candidates are also collected
/// when the number of objects has grown since the last collection by 8,192,
/// or by half, or by as many live objects as that collection walked,
/// whichever is most: a single candidate can be the last way into a big
/// dead structure, so counting candidates alone would let any amount of
/// garbage wait.
///
/// Called after this thread's thread-local teardown (from another
/// thread-local's destructor), a setting lasts only while the thread's heap
/// holds objects.
///
/// ```
/// rcycle::set_threshold(100);
/// assert_eq!(rcycle::threshold(), 100);
/// # rcycle::set_threshold(10_000);
/// ```
pub fn set_threshold(candidates: usize) {
    let rt = crate::runtime::runtime();
    rt.collector.policy.set_threshold(&rt.heap, candidates);
    crate::runtime::setting_changed()
}

/// The threshold set by [`set_threshold`].
///
/// ```
/// assert!(rcycle::threshold() >= 1);
/// ```
pub fn threshold() -> usize {
    crate::runtime::existing_runtime().map_or(crate::policy::DEFAULT_THRESHOLD, |rt| {
        rt.collector.policy.threshold()
    })
}

/// Objects currently allocated on this thread's heap: live values plus dead
/// boxes (objects whose value went with a collected cycle while a handle to
/// them remained).
///
/// ```
/// let before = rcycle::object_count();
/// let g = rcycle::Gc::new(1u8);
/// assert_eq!(rcycle::object_count(), before + 1);
/// drop(g);
/// assert_eq!(rcycle::object_count(), before);
/// ```
pub fn object_count() -> usize {
    crate::runtime::existing_runtime().map_or(0, |rt| rt.heap.live_objects())
}

/// Objects currently waiting in this thread's candidate buffer.
///
/// ```
/// use rcycle::Gc;
/// let a = Gc::new(Some(Gc::new(1u8)));
/// let b = a.clone();
/// drop(b); // count 2 -> 1: `a` may now be the root of a cycle
/// assert!(rcycle::candidate_count() >= 1);
/// ```
pub fn candidate_count() -> usize {
    crate::runtime::existing_runtime().map_or(0, |rt| rt.heap.candidate_count())
}

/// Runs a collection now on this thread's heap, like
/// [`collect`](crate::collect()), and returns what it did, including the
/// freed objects per type (Python's `gc.get_stats()`, per collection).
/// Called while a collection is already running, it does nothing and returns
/// all zeros.
///
/// ```
/// use rcycle::{Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Ring { next: RefCell<Option<Gc<Ring>>> }
///
/// let a = Gc::new(Ring { next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone()); // a self-loop
/// drop(a);
/// let stats = rcycle::collect_with_stats();
/// assert_eq!(stats.freed, 1);
/// assert!(stats.roots >= 1 && stats.examined >= 1);
/// ```
pub fn collect_with_stats() -> CollectStats {
    crate::runtime::collect_now_with_stats()
}

/// Registers `callback` to be called on this thread with
/// [`CollectPhase::Start`] before and [`CollectPhase::Stop`] after every
/// collection, automatic or explicit (Python's `gc.callbacks`).
///
/// A callback may take reports ([`live_report`] and the
/// like), call [`collect`](crate::collect()) (which returns 0: a collection is
/// running) and add or remove callbacks (that takes effect from the next
/// collection). If a callback panics, the other callbacks and the collection
/// still run to the end, then the panic resumes from the call that collected.
/// The final collections at thread exit call no callback. Registered after
/// this thread's thread-local teardown (from another thread-local's
/// destructor), a callback lasts only while the thread's heap holds objects,
/// as a setting does ([`set_threshold`]).
///
/// ```
/// use rcycle::{CollectPhase, Gc, Trace};
/// use std::cell::{Cell, RefCell};
/// use std::rc::Rc;
///
/// #[derive(Trace)]
/// struct Ring { next: RefCell<Option<Gc<Ring>>> }
///
/// let freed = Rc::new(Cell::new(0));
/// let seen = freed.clone();
/// let id = rcycle::add_collect_callback(move |phase, stats| {
///     if phase == CollectPhase::Stop {
///         seen.set(seen.get() + stats.freed);
///     }
/// });
/// let a = Gc::new(Ring { next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone());
/// drop(a);
/// rcycle::collect();
/// assert_eq!(freed.get(), 1);
/// rcycle::remove_collect_callback(id);
/// ```
pub fn add_collect_callback(
    callback: impl Fn(CollectPhase, &CollectStats) + 'static,
) -> CallbackId {
    crate::runtime::add_collect_callback(std::rc::Rc::new(callback))
}

/// Removes a callback registered with [`add_collect_callback`] on this
/// thread. Returns whether it was registered.
///
/// ```
/// let id = rcycle::add_collect_callback(|phase, stats| println!("{phase:?}: {stats}"));
/// assert!(rcycle::remove_collect_callback(id));
/// assert!(!rcycle::remove_collect_callback(id));
/// ```
pub fn remove_collect_callback(id: CallbackId) -> bool {
    crate::runtime::remove_collect_callback(id)
}

/// The one call that goes up from the runtime, wired here at the crate root
/// (which sees every layer; the runtime names none above it): the report
/// printed at thread exit with `RCYCLE_REPORT_AT_EXIT=1`.
static EXIT_HOOKS: crate::runtime::ExitHooks = crate::runtime::ExitHooks {
    at_thread_exit: crate::report::daemon::at_thread_exit,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::header::GcBox;
}

/// The README's examples, compiled and run as doctests so it never lies.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
