//! Soundness probes: user code (`Drop`, finalizers, `Trace`) that pokes at the
//! heap while the collector is freeing garbage, panics at awkward moments,
//! leaked `RefCell` borrows, thread teardown, `new_cyclic` unwinding, and
//! `Gc<dyn Trait>` cycles.
//!
//! Every test asserts exact numbers: what `collect()` returned, which `Drop`
//! impls and finalizers ran (and in which order, when the order is defined),
//! what values were observed, and `object_count()` relative to a baseline
//! taken at the start of the test. Tests run on separate threads and every
//! thread has its own heap, so the baselines are independent.
//!
//! `Trace` is implemented by hand everywhere (no derive).
//!
//! Where the collector drops the members of a garbage set in an unspecified
//! order, a test records what happened and asserts that it is exactly one of
//! the allowed outcomes.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use rcycle::{candidate_count, coerce_gc, collect, object_count, Gc, Trace, Tracer, WeakGc};

mod drop_hooks;
mod finalizers;
mod get_mut;
mod handles;
mod panics;
mod reentrancy;
mod teardown;

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

thread_local! {
    /// What `Drop` impls and finalizers did, in order.
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Strong handles stashed by `Drop` impls / finalizers.
    static STASH: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
    static FSTASH: RefCell<Vec<Gc<FNode>>> = const { RefCell::new(Vec::new()) };
    /// Weak handles stashed by `Drop` impls / closures.
    static WEAK_STASH: RefCell<Vec<WeakGc<Node>>> = const { RefCell::new(Vec::new()) };
    /// A weak handle to a live object *outside* the garbage set, upgraded from
    /// `Drop` as a control.
    static CONTROL: RefCell<WeakGc<Node>> = const { RefCell::new(WeakGc::new()) };
}

fn log(s: impl Into<String>) {
    LOG.with(|l| l.borrow_mut().push(s.into()));
}

fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn take_stash() -> Vec<Gc<Node>> {
    STASH.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

fn take_fstash() -> Vec<Gc<FNode>> {
    FSTASH.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// Collects once (so leftovers of this thread do not count) and returns the
/// object count to compare against.
fn baseline() -> usize {
    collect();
    take_log();
    object_count()
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Runs `f`, expecting a panic; returns its message.
fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(p) => panic_message(&*p),
    }
}

// ---------------------------------------------------------------------------
// `Node`: a general cycle member whose `Drop` logs and then runs a hook.
// ---------------------------------------------------------------------------

struct Node {
    name: &'static str,
    next: RefCell<Option<Gc<Node>>>,
    extra: RefCell<Vec<Gc<Node>>>,
    weak: RefCell<WeakGc<Node>>,
    on_drop: fn(&Node),
}

// SAFETY: reports each owned `Gc` exactly once (`next`, each of `extra`);
// `WeakGc` reports nothing.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
        t.field("extra", &self.extra);
        t.field("weak", &self.weak);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
        (self.on_drop)(self);
    }
}

fn noop(_: &Node) {}

fn node(name: &'static str, on_drop: fn(&Node)) -> Gc<Node> {
    Gc::new(Node {
        name,
        next: RefCell::new(None),
        extra: RefCell::new(Vec::new()),
        weak: RefCell::new(WeakGc::new()),
        on_drop,
    })
}

/// `from.next = to`.
fn link(from: &Gc<Node>, to: &Gc<Node>) {
    *from.next.borrow_mut() = Some(to.clone());
}

/// A clone of `n.next` (works on handles to dropped values too: cloning does
/// not read the value).
fn next_of(n: &Node) -> Gc<Node> {
    n.next.borrow().clone().expect("node has a next")
}

/// Builds the 2-cycle `a <-> b` and returns both handles.
fn pair(on_drop_a: fn(&Node), on_drop_b: fn(&Node)) -> (Gc<Node>, Gc<Node>) {
    let a = node("a", on_drop_a);
    let b = node("b", on_drop_b);
    link(&a, &b);
    link(&b, &a);
    (a, b)
}

// ---------------------------------------------------------------------------
// `FNode`: like `Node`, with a finalizer that logs and then runs a hook.
// ---------------------------------------------------------------------------

struct FNode {
    name: &'static str,
    next: RefCell<Option<Gc<FNode>>>,
    extra: RefCell<Vec<Gc<FNode>>>,
    weak: RefCell<WeakGc<FNode>>,
    on_finalize: fn(&FNode),
}

// SAFETY: as for `Node`.
unsafe impl Trace for FNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
        t.field("extra", &self.extra);
        t.field("weak", &self.weak);
    }
    fn has_finalizer() -> bool {
        true
    }
    fn finalize(&self) {
        log(format!("finalize {}", self.name));
        (self.on_finalize)(self);
    }
}

impl Drop for FNode {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
    }
}

fn fnoop(_: &FNode) {}

fn fnode(name: &'static str, on_finalize: fn(&FNode)) -> Gc<FNode> {
    Gc::new(FNode {
        name,
        next: RefCell::new(None),
        extra: RefCell::new(Vec::new()),
        weak: RefCell::new(WeakGc::new()),
        on_finalize,
    })
}

fn flink(from: &Gc<FNode>, to: &Gc<FNode>) {
    *from.next.borrow_mut() = Some(to.clone());
}

fn fnext_of(n: &FNode) -> Gc<FNode> {
    n.next.borrow().clone().expect("fnode has a next")
}
