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

// ===========================================================================
// drop-deref
// ===========================================================================

/// A's `Drop` (and B's) reads its neighbour through `Gc::try_deref`. The
/// member dropped first sees the other intact; the one dropped second sees
/// `None` (its neighbour's value is already gone). Which one goes first is
/// unspecified.
#[test]
fn drop_try_deref_sees_neighbour_intact_or_none() {
    let base = baseline();
    fn peek(n: &Node) {
        let next = next_of(n);
        match Gc::try_deref(&next) {
            Some(v) => log(format!("{} saw {} intact", n.name, v.name)),
            None => log(format!("{} saw its neighbour dropped", n.name)),
        }
    }
    let (a, b) = pair(peek, peek);
    drop((a, b));
    assert_eq!(object_count(), base + 2);
    assert_eq!(collect(), 2);
    let got = take_log();
    let a_first = [
        "drop a",
        "a saw b intact",
        "drop b",
        "b saw its neighbour dropped",
    ];
    let b_first = [
        "drop b",
        "b saw a intact",
        "drop a",
        "a saw its neighbour dropped",
    ];
    assert!(
        got == a_first || got == b_first,
        "unexpected outcome: {got:?}"
    );
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
}

/// Same, with a plain deref inside `catch_unwind`: the member dropped second
/// panics (caught inside its own `Drop`) with "already been dropped"; the
/// collection still frees both.
#[test]
fn drop_plain_deref_panics_when_neighbour_already_dropped() {
    let base = baseline();
    fn peek(n: &Node) {
        let next = next_of(n);
        match catch_unwind(AssertUnwindSafe(|| next.name)) {
            Ok(name) => log(format!("{} saw {name} intact", n.name)),
            Err(p) => {
                let msg = panic_message(&*p);
                if msg.contains("already been dropped") {
                    log(format!("{} deref panicked: already been dropped", n.name));
                } else {
                    log(format!(
                        "{} deref panicked with unexpected message: {msg}",
                        n.name
                    ));
                }
            }
        }
    }
    let (a, b) = pair(peek, peek);
    drop((a, b));
    assert_eq!(collect(), 2);
    let got = take_log();
    let a_first = [
        "drop a",
        "a saw b intact",
        "drop b",
        "b deref panicked: already been dropped",
    ];
    let b_first = [
        "drop b",
        "b saw a intact",
        "drop a",
        "a deref panicked: already been dropped",
    ];
    assert!(
        got == a_first || got == b_first,
        "unexpected outcome: {got:?}"
    );
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
}

// ===========================================================================
// drop-clone-and-stash
// ===========================================================================

fn stash_next(n: &Node) {
    let next = next_of(n);
    STASH.with(|s| s.borrow_mut().push(next));
}

/// A's `Drop` clones its handle to B and stashes it in a thread-local: B
/// becomes a dead box (value dropped, memory kept) that the stash owns.
#[test]
fn drop_clone_and_stash_leaves_a_dead_box() {
    let base = baseline();
    let (a, b) = pair(stash_next, noop);
    drop((a, b));
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop a", "drop b"]);

    let mut stash = take_stash();
    assert_eq!(stash.len(), 1);
    let dead = stash.pop().unwrap();
    // The dead box is still allocated; A is gone.
    assert_eq!(object_count(), base + 1);
    assert!(Gc::try_deref(&dead).is_none());
    let msg = expect_panic(|| dead.name);
    assert!(msg.contains("already been dropped"), "{msg}");
    assert_eq!(Gc::strong_count(&dead), 1);
    assert_eq!(Gc::weak_count(&dead), 0);
    // No way to get at the value again.
    let w = Gc::downgrade(&dead);
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    drop(w);
    let dead = match Gc::try_unwrap(dead) {
        Ok(_) => panic!("try_unwrap returned the value of a dead box"),
        Err(g) => g,
    };
    let mut dead2 = dead.clone();
    assert_eq!(Gc::strong_count(&dead), 2);
    assert!(Gc::get_mut(&mut dead2).is_none());
    drop(dead2);
    assert_eq!(Gc::strong_count(&dead), 1);
    assert_eq!(collect(), 0);
    assert_eq!(object_count(), base + 1);

    // Dropping the last handle frees the dead box, without running any Drop.
    drop(dead);
    assert_eq!(object_count(), base);
    assert_eq!(take_log(), Vec::<String>::new());
    assert_eq!(collect(), 0);
}

/// A's `Drop` stashes a *weak* handle to B: B's memory is kept for the weak
/// handle, which never upgrades.
#[test]
fn drop_stashes_weak_handle_to_member() {
    let base = baseline();
    fn stash_weak(n: &Node) {
        let next = next_of(n);
        WEAK_STASH.with(|s| s.borrow_mut().push(Gc::downgrade(&next)));
        assert!(WEAK_STASH.with(|s| s.borrow()[0].upgrade().is_none()));
    }
    let (a, b) = pair(stash_weak, noop);
    drop((a, b));
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop a", "drop b"]);
    let w = WEAK_STASH.with(|s| s.borrow_mut().pop().unwrap());
    assert_eq!(object_count(), base + 1);
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    assert_eq!(w.weak_count(), 0);
    drop(w);
    assert_eq!(object_count(), base);
}

/// Takes `next` out in `Drop`, so that if the value were dropped a second
/// time its (already released) `Gc` field would not be released again: the
/// second drop then only shows up in the log instead of corrupting memory.
fn stash_next_then_take(n: &Node) {
    stash_next(n);
    n.next.borrow_mut().take();
}
fn take_next(n: &Node) {
    n.next.borrow_mut().take();
}

/// A dead box (from drop-clone-and-stash) that later becomes reachable only
/// from a new garbage cycle must not have its value dropped a second time.
#[test]
fn dead_box_reachable_from_new_garbage_is_not_dropped_twice() {
    let base = baseline();
    let (a, b) = pair(stash_next_then_take, take_next);
    drop((a, b));
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop a", "drop b"]);
    let dead_b = take_stash().pop().unwrap();
    assert!(Gc::try_deref(&dead_b).is_none());
    assert_eq!(object_count(), base + 1);

    // x -> x (self-loop), x.extra = [dead b]: the dead box's only handle now
    // lives inside a garbage cycle.
    let x = node("x", noop);
    link(&x, &x);
    x.extra.borrow_mut().push(dead_b);
    drop(x);
    let freed = collect();
    // b's Drop must not run again...
    assert_eq!(
        take_log(),
        ["drop x"],
        "the dead box's value was dropped a second time"
    );
    // ...and one value is dropped (x's): b's value went with the first
    // collection and was counted there; its memory goes with its last handle
    // (x's `extra`).
    assert_eq!(freed, 1);
    assert_eq!(object_count(), base);
}

/// The same with a value that owns heap memory: dropping the dead box's value
/// a second time would free its `String` twice (a regression aborts the whole
/// binary with "free(): double free detected"; ASan and Miri pinpoint it).
#[test]
fn dead_box_with_heap_data_reachable_from_new_garbage() {
    struct Bag {
        data: String,
        next: RefCell<Option<Gc<Bag>>>,
        extra: RefCell<Vec<Gc<Bag>>>,
    }
    // SAFETY: reports `next` and each of `extra` once.
    unsafe impl Trace for Bag {
        fn trace(&self, t: &mut Tracer<'_>) {
            t.field("next", &self.next);
            t.field("extra", &self.extra);
        }
    }
    thread_local! {
        static BAGS: RefCell<Vec<Gc<Bag>>> = const { RefCell::new(Vec::new()) };
        static BAG_DROPS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }
    impl Drop for Bag {
        fn drop(&mut self) {
            BAG_DROPS.with(|d| d.borrow_mut().push(self.data.clone()));
            if self.data == "a" {
                let next = self.next.borrow().clone().unwrap();
                BAGS.with(|s| s.borrow_mut().push(next));
            }
            self.next.borrow_mut().take();
        }
    }
    let base = baseline();
    let bag = |s: &str| {
        Gc::new(Bag {
            data: s.to_string(),
            next: RefCell::new(None),
            extra: RefCell::new(Vec::new()),
        })
    };
    let a = bag("a");
    let b = bag("b");
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    drop((a, b));
    assert_eq!(collect(), 2);
    let dead_b = BAGS.with(|s| s.borrow_mut().pop().unwrap());
    let x = bag("x");
    *x.next.borrow_mut() = Some(x.clone());
    x.extra.borrow_mut().push(dead_b);
    drop(x);
    let freed = collect();
    let mut drops = BAG_DROPS.with(|d| std::mem::take(&mut *d.borrow_mut()));
    drops.sort();
    assert_eq!(drops, ["a", "b", "x"]);
    assert_eq!(freed, 1);
    assert_eq!(object_count(), base);
}

// ===========================================================================
// try_unwrap / get_mut on members from inside Drop during a collection
// ===========================================================================

/// Inside a `Drop` run by the collector, `try_unwrap` of the only handle to
/// another member must fail (the collector owns that value: moving it out
/// would drop it twice) and `get_mut` must return `None`.
#[test]
fn try_unwrap_and_get_mut_of_member_inside_drop_fail() {
    let base = baseline();
    fn unwrap_next(n: &Node) {
        let Some(next) = n.next.borrow_mut().take() else {
            log(format!("{} has no next", n.name));
            return;
        };
        assert_eq!(Gc::strong_count(&next), 1);
        match Gc::try_unwrap(next) {
            Ok(v) => {
                log(format!("{} unwrapped {}", n.name, v.name));
                std::mem::forget(v); // do not make it worse
            }
            Err(mut g) => {
                log(format!("{} try_unwrap: Err", n.name));
                if Gc::get_mut(&mut g).is_none() {
                    log(format!("{} get_mut: None", n.name));
                } else {
                    log(format!("{} get_mut: Some", n.name));
                }
            }
        }
    }
    let (a, b) = pair(unwrap_next, noop);
    drop((a, b));
    assert_eq!(collect(), 2);
    let got = take_log();
    let a_first = ["drop a", "a try_unwrap: Err", "a get_mut: None", "drop b"];
    let b_first = ["drop b", "drop a", "a try_unwrap: Err", "a get_mut: None"];
    assert!(
        got == a_first || got == b_first,
        "unexpected outcome: {got:?}"
    );
    assert_eq!(object_count(), base);
}

// ===========================================================================
// finalizer resurrection (PEP 442)
// ===========================================================================

/// `a <-> b`, both with finalizers; a's finalizer stores a handle to `a`
/// (reached through `b`) in a thread-local. Nothing is freed, both stay
/// usable, no finalizer runs again; once the stash goes, both are freed.
#[test]
fn finalizer_resurrects_its_own_cycle() {
    let base = baseline();
    fn resurrect_self(n: &FNode) {
        let b = fnext_of(n);
        let me = fnext_of(&b);
        assert!(std::ptr::eq(&*me, n));
        FSTASH.with(|s| s.borrow_mut().push(me));
    }
    let a = fnode("a", resurrect_self);
    let b = fnode("b", fnoop);
    flink(&a, &b);
    flink(&b, &a);
    let wa = Gc::downgrade(&a);
    let wb = Gc::downgrade(&b);
    drop((a, b));

    assert_eq!(collect(), 0, "resurrected objects are not counted");
    assert_eq!(sorted(take_log()), ["finalize a", "finalize b"]);
    assert_eq!(object_count(), base + 2);
    let mut stash = take_fstash();
    assert_eq!(stash.len(), 1);
    let a = stash.pop().unwrap();
    assert_eq!(a.name, "a");
    assert_eq!(fnext_of(&a).name, "b");
    assert_eq!(Gc::strong_count(&a), 2); // b's edge + ours
    assert!(Gc::ptr_eq(&wa.upgrade().unwrap(), &a));
    assert_eq!(wb.upgrade().unwrap().name, "b");

    // Collecting again while we hold `a` changes nothing, runs no finalizer.
    assert_eq!(collect(), 0);
    assert_eq!(take_log(), Vec::<String>::new());

    drop(a);
    assert_eq!(collect(), 2);
    assert_eq!(
        sorted(take_log()),
        ["drop a", "drop b"],
        "finalizers must not run twice"
    );
    assert!(wa.upgrade().is_none());
    assert!(wb.upgrade().is_none());
    assert_eq!(object_count(), base + 2); // memory held by wa, wb
    drop((wa, wb));
    assert_eq!(object_count(), base);
    assert_eq!(take_fstash().len(), 0);
}

/// Ring `a -> b -> c -> a`; `c.extra = [d]`; `d <-> e`. Only a's finalizer
/// resurrects, and what it resurrects is `d` (reachable from c): d and e
/// survive, a, b, c are freed.
#[test]
fn finalizer_resurrects_part_of_the_garbage() {
    let base = baseline();
    fn resurrect_d(n: &FNode) {
        let b = fnext_of(n);
        let c = fnext_of(&b);
        let d = c.extra.borrow()[0].clone();
        FSTASH.with(|s| s.borrow_mut().push(d));
    }
    let a = fnode("a", resurrect_d);
    let b = fnode("b", fnoop);
    let c = fnode("c", fnoop);
    let d = fnode("d", fnoop);
    let e = fnode("e", fnoop);
    flink(&a, &b);
    flink(&b, &c);
    flink(&c, &a);
    c.extra.borrow_mut().push(d.clone());
    flink(&d, &e);
    flink(&e, &d);
    let weak: Vec<WeakGc<FNode>> = [&a, &b, &c, &d, &e]
        .iter()
        .map(|g| Gc::downgrade(g))
        .collect();
    drop((a, b, c, d, e));
    assert_eq!(object_count(), base + 5);

    assert_eq!(collect(), 3);
    assert_eq!(
        sorted(take_log()),
        [
            "drop a",
            "drop b",
            "drop c",
            "finalize a",
            "finalize b",
            "finalize c",
            "finalize d",
            "finalize e",
        ]
    );
    let alive: Vec<bool> = weak.iter().map(|w| w.upgrade().is_some()).collect();
    assert_eq!(alive, [false, false, false, true, true]);
    let d = take_fstash().pop().unwrap();
    assert_eq!(d.name, "d");
    assert_eq!(fnext_of(&d).name, "e");
    assert_eq!(Gc::strong_count(&d), 2); // e's edge + ours (c's went)
    assert_eq!(weak[4].strong_count(), 1);
    assert_eq!(object_count(), base + 5); // a, b, c held by weak handles
    let mut weak = weak;
    weak.drain(..3);
    assert_eq!(object_count(), base + 2);

    drop(d);
    assert_eq!(collect(), 2);
    assert_eq!(
        sorted(take_log()),
        ["drop d", "drop e"],
        "d and e finalized once only"
    );
    assert!(weak.iter().all(|w| w.upgrade().is_none()));
    drop(weak);
    assert_eq!(object_count(), base);
}

/// a's finalizer creates a *new* object `n -> a` and stores it in `b`:
/// a is referenced from outside the garbage set, so a and b survive this
/// collection (0 freed). But nothing outside refers to the three of them any
/// more: they are garbage again, with finalizers already run for a and b.
/// A later collection must find them (as CPython's would): 3 freed.
#[test]
fn finalizer_resurrection_into_new_garbage_is_collected_later() {
    let base = baseline();
    fn hide_self_in_new_object(n: &FNode) {
        let b = fnext_of(n);
        let me = fnext_of(&b);
        let fresh = fnode("n", fnoop);
        *fresh.next.borrow_mut() = Some(me);
        b.extra.borrow_mut().push(fresh);
    }
    let a = fnode("a", hide_self_in_new_object);
    let b = fnode("b", fnoop);
    flink(&a, &b);
    flink(&b, &a);
    drop((a, b));
    assert_eq!(collect(), 0);
    assert_eq!(sorted(take_log()), ["finalize a", "finalize b"]);
    assert_eq!(object_count(), base + 3);

    assert_eq!(collect(), 3, "the resurrected-but-unreachable cycle leaks");
    assert_eq!(
        sorted(take_log()),
        ["drop a", "drop b", "drop n", "finalize n"]
    );
    assert_eq!(object_count(), base);
}

// ===========================================================================
// weak handles into a garbage cycle
// ===========================================================================

#[test]
fn weak_into_garbage_is_none_in_drop() {
    let base = baseline();
    fn upgrade_weak(n: &Node) {
        let w = n.weak.borrow().clone();
        log(format!(
            "{} upgrade: {}",
            n.name,
            if w.upgrade().is_some() {
                "some"
            } else {
                "none"
            }
        ));
        log(format!("{} strong_count: {}", n.name, w.strong_count()));
        let control = CONTROL.with(|c| c.borrow().upgrade().map(|g| g.name));
        log(format!("{} control: {control:?}", n.name));
    }
    let live = node("live", noop);
    CONTROL.with(|c| *c.borrow_mut() = Gc::downgrade(&live));
    let (a, b) = pair(upgrade_weak, upgrade_weak);
    *a.weak.borrow_mut() = Gc::downgrade(&b);
    *b.weak.borrow_mut() = Gc::downgrade(&a);
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    assert_eq!(Gc::weak_count(&a), 2);
    drop((a, b));
    assert_eq!(collect(), 2);
    assert_eq!(
        sorted(take_log()),
        [
            "a control: Some(\"live\")",
            "a strong_count: 0",
            "a upgrade: none",
            "b control: Some(\"live\")",
            "b strong_count: 0",
            "b upgrade: none",
            "drop a",
            "drop b",
        ]
    );
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    assert_eq!((wa.strong_count(), wa.weak_count()), (0, 0));
    assert_eq!(object_count(), base + 3); // live + the two kept for wa, wb
    drop((wa, wb));
    assert_eq!(object_count(), base + 1);
    CONTROL.with(|c| *c.borrow_mut() = WeakGc::new());
    drop(live);
    assert_eq!(take_log(), ["drop live"]);
    assert_eq!(object_count(), base);
}

#[test]
fn weak_into_garbage_is_none_in_finalize() {
    let base = baseline();
    fn upgrade_in_finalize(n: &FNode) {
        let w = n.weak.borrow().clone();
        log(format!(
            "{} finalize upgrade: {}",
            n.name,
            if w.upgrade().is_some() {
                "some"
            } else {
                "none"
            }
        ));
        // The neighbour's value is intact during finalization.
        log(format!("{} sees {}", n.name, fnext_of(n).name));
    }
    let a = fnode("a", upgrade_in_finalize);
    let b = fnode("b", upgrade_in_finalize);
    flink(&a, &b);
    flink(&b, &a);
    *a.weak.borrow_mut() = Gc::downgrade(&b);
    *b.weak.borrow_mut() = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(collect(), 2);
    let got = take_log();
    // Both finalizers run before any value is dropped.
    assert!(got[..6].iter().all(|s| !s.starts_with("drop")), "{got:?}");
    assert_eq!(
        sorted(got),
        [
            "a finalize upgrade: none",
            "a sees b",
            "b finalize upgrade: none",
            "b sees a",
            "drop a",
            "drop b",
            "finalize a",
            "finalize b",
        ]
    );
    assert_eq!(object_count(), base);
}

// ===========================================================================
// collect() from Drop / finalize
// ===========================================================================

/// `collect()` from a `Drop` run by the collector returns 0; a garbage cycle
/// made inside that `Drop` is left for the next collection.
#[test]
fn collect_inside_drop_during_collection_returns_zero() {
    let base = baseline();
    fn nested_collect(n: &Node) {
        // Make fresh garbage: x <-> y, dropped at once.
        let (x, y) = (node("x", noop), node("y", noop));
        link(&x, &y);
        link(&y, &x);
        drop((x, y));
        let freed = collect();
        log(format!("{} nested collect: {freed}", n.name));
    }
    let (a, b) = pair(nested_collect, nested_collect);
    drop((a, b));
    assert_eq!(object_count(), base + 2);
    assert_eq!(collect(), 2);
    assert_eq!(
        sorted(take_log()),
        [
            "a nested collect: 0",
            "b nested collect: 0",
            "drop a",
            "drop b"
        ]
    );
    // The two x <-> y pairs made during the collection.
    assert_eq!(object_count(), base + 4);
    assert_eq!(collect(), 4);
    assert_eq!(sorted(take_log()), ["drop x", "drop x", "drop y", "drop y"]);
    assert_eq!(object_count(), base);
}

#[test]
fn collect_inside_finalize_returns_zero() {
    let base = baseline();
    fn nested(n: &FNode) {
        log(format!("{} nested collect: {}", n.name, collect()));
    }
    let a = fnode("a", nested);
    flink(&a, &a);
    drop(a);
    assert_eq!(collect(), 1);
    assert_eq!(take_log(), ["finalize a", "a nested collect: 0", "drop a"]);
    assert_eq!(object_count(), base);
}

/// `collect()` from the `Drop` of an object freed by its count reaching zero
/// (no collection running) works and frees pending garbage.
#[test]
fn collect_inside_refcount_drop_frees_pending_garbage() {
    let base = baseline();
    fn collect_now(n: &Node) {
        log(format!("{} nested collect: {}", n.name, collect()));
    }
    let (c, d) = (node("c", noop), node("d", noop));
    link(&c, &d);
    link(&d, &c);
    drop((c, d));
    let r = node("r", collect_now);
    drop(r); // count reaches zero: not a collection
    let got = take_log();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], "drop r");
    assert_eq!(sorted(got[1..3].to_vec()), ["drop c", "drop d"]);
    assert_eq!(got[3], "r nested collect: 2");
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
}

/// As above, but the object being dropped still holds an edge into the cycle
/// while its `Drop` collects: the cycle is held from outside (0 freed), and
/// is freed by the next collection once the edge is gone.
#[test]
fn collect_inside_refcount_drop_of_object_holding_the_cycle() {
    let base = baseline();
    fn collect_now(n: &Node) {
        log(format!("{} nested collect: {}", n.name, collect()));
    }
    let (c, d) = (node("c", noop), node("d", noop));
    link(&c, &d);
    link(&d, &c);
    let r = node("r", collect_now);
    link(&r, &c);
    drop((c, d));
    drop(r);
    assert_eq!(take_log(), ["drop r", "r nested collect: 0"]);
    assert_eq!(object_count(), base + 2);
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop c", "drop d"]);
    assert_eq!(object_count(), base);
}

// ===========================================================================
// RefCell borrowed while collect() runs
// ===========================================================================

/// A leaked `RefMut` on a member of a garbage cycle: the member cannot be
/// traced, so the collector treats it as held from outside and frees nothing.
///
/// This cycle then leaks forever (the borrow is never released, so no
/// collection, including the one at thread exit, can ever trace it). That is
/// the safe outcome: the alternative would be to free values that the
/// collector could not inspect.
#[test]
fn leaked_refmut_keeps_garbage_cycle_alive() {
    let base = baseline();
    for borrowed in ["a", "b"] {
        let (a, b) = pair(noop, noop);
        let target = if borrowed == "a" { &a } else { &b };
        std::mem::forget(target.next.borrow_mut());
        drop((a, b));
        assert_eq!(collect(), 0, "borrowed {borrowed}");
        assert_eq!(collect(), 0, "borrowed {borrowed}");
        assert_eq!(take_log(), Vec::<String>::new());
    }
    // Both pairs leak (intentionally): 4 objects.
    assert_eq!(object_count(), base + 4);
}

/// A leaked `RefMut` on a cell that holds no handle (`extra` is empty): every
/// edge of the cycle is still found, so every trial count is zero, and only
/// the untraceable member says that something may be held from outside. The
/// collector must not take "all counts zero" for "all garbage" then.
#[test]
fn leaked_refmut_on_an_empty_cell_keeps_the_cycle_alive() {
    let base = baseline();
    for borrowed in ["a", "b"] {
        let (a, b) = pair(noop, noop);
        let target = if borrowed == "a" { &a } else { &b };
        std::mem::forget(target.extra.borrow_mut());
        drop((a, b));
        assert_eq!(collect(), 0, "borrowed {borrowed}");
        assert_eq!(take_log(), Vec::<String>::new());
    }
    // Both pairs leak (intentionally): 4 objects.
    assert_eq!(object_count(), base + 4);
}

/// A `RefMut` held (not leaked) across `collect()`: nothing is freed, nothing
/// panics; once it is released the cycle is collected.
#[test]
fn held_refmut_during_collect_then_released() {
    let base = baseline();
    let (a, b) = pair(noop, noop);
    let wb = Gc::downgrade(&b);
    drop(b);
    {
        let guard = a.next.borrow_mut();
        assert!(guard.is_some());
        assert_eq!(collect(), 0);
        // The borrow is still ours and intact.
        assert_eq!(guard.as_ref().unwrap().name, "b");
    }
    drop(a);
    // Now hold a borrow of b's cell through an upgraded weak handle... which
    // is an outside handle by itself, so release it before collecting.
    {
        let b = wb.upgrade().unwrap();
        let _guard = b.next.borrow_mut();
        assert_eq!(collect(), 0);
    }
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop a", "drop b"]);
    drop(wb);
    assert_eq!(object_count(), base);
}

// ===========================================================================
// panic in Trace
// ===========================================================================

thread_local! {
    static TRACE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// A node whose `Trace` panics while `TRACE_PANICS` is set; its finalizer
/// can arm that flag (to make the recount after finalization panic).
struct PNode {
    name: &'static str,
    next: RefCell<Option<Gc<PNode>>>,
    arm_in_finalize: bool,
}

// SAFETY: reports `next` once (or panics before reporting anything).
unsafe impl Trace for PNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        if TRACE_PANICS.get() {
            panic!("trace panic in {}", self.name);
        }
        t.field("next", &self.next);
    }
    fn has_finalizer() -> bool {
        true
    }
    fn finalize(&self) {
        log(format!("finalize {}", self.name));
        if self.arm_in_finalize {
            TRACE_PANICS.set(true);
        }
    }
}

impl Drop for PNode {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
    }
}

fn ppair(arm_a: bool) -> (Gc<PNode>, Gc<PNode>) {
    let a = Gc::new(PNode {
        name: "a",
        next: RefCell::new(None),
        arm_in_finalize: arm_a,
    });
    let b = Gc::new(PNode {
        name: "b",
        next: RefCell::new(Some(a.clone())),
        arm_in_finalize: false,
    });
    *a.next.borrow_mut() = Some(b.clone());
    (a, b)
}

#[test]
fn panic_in_trace_during_marking_leaves_heap_consistent() {
    let base = baseline();
    let (a, b) = ppair(false);
    let keep = a.clone(); // an outside handle, dropped later
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    drop((a, b));
    assert_eq!(candidate_count(), 2); // a (3 -> 2) and b (2 -> 1)
    assert_eq!(collect(), 0); // a is still held by `keep`
    drop(keep);
    assert_eq!(candidate_count(), 1); // a

    TRACE_PANICS.set(true);
    let msg = expect_panic(collect);
    assert!(msg.starts_with("trace panic in "), "{msg}");
    TRACE_PANICS.set(false);

    // Nothing changed: counts, handles, values, the candidate.
    assert_eq!(candidate_count(), 1); // a, put back
    assert_eq!(take_log(), Vec::<String>::new());
    assert_eq!((wa.strong_count(), wb.strong_count()), (1, 1));
    assert_eq!((wa.weak_count(), wb.weak_count()), (1, 1));
    assert_eq!(
        wa.upgrade().unwrap().next.borrow().as_ref().unwrap().name,
        "b"
    );
    assert_eq!(candidate_count(), 1); // a, after the upgrade/drop above
    assert_eq!(object_count(), base + 2);

    assert_eq!(collect(), 2);
    assert_eq!(
        sorted(take_log()),
        ["drop a", "drop b", "finalize a", "finalize b"]
    );
    assert_eq!(object_count(), base + 2); // wa, wb
    drop((wa, wb));
    assert_eq!(object_count(), base);
}

/// A finalizer makes `Trace` panic during the recount that follows
/// finalization. The panic propagates; the objects survive that collection
/// (values intact, counts unchanged) and a later collection frees exactly the
/// cycle, without running the finalizers again.
#[test]
fn panic_in_trace_during_recount_after_finalizers() {
    let base = baseline();
    let (a, b) = ppair(true);
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    drop((a, b));
    let msg = expect_panic(collect);
    TRACE_PANICS.set(false);
    assert!(msg.starts_with("trace panic in "), "{msg}");
    assert_eq!(sorted(take_log()), ["finalize a", "finalize b"]);
    assert_eq!((wa.strong_count(), wb.strong_count()), (1, 1));
    // (No upgrade here: dropping the upgraded handle would put b back in
    // the candidate buffer and hide what this test looks for.)
    assert_eq!(object_count(), base + 2);

    assert_eq!(
        collect(),
        2,
        "the cycle must not be lost after a panic in Trace"
    );
    assert_eq!(sorted(take_log()), ["drop a", "drop b"]);
    drop((wa, wb));
    assert_eq!(object_count(), base);
}

// ===========================================================================
// panic in Drop / finalize during collection
// ===========================================================================

fn boom(n: &Node) {
    panic!("boom in {}", n.name);
}

fn ring3(on_drop: [fn(&Node); 3]) -> [Gc<Node>; 3] {
    let a = node("a", on_drop[0]);
    let b = node("b", on_drop[1]);
    let c = node("c", on_drop[2]);
    link(&a, &b);
    link(&b, &c);
    link(&c, &a);
    [a, b, c]
}

/// One member's `Drop` panics: the collection finishes (every other `Drop`
/// runs exactly once, all memory is freed), then re-raises the panic.
#[test]
fn panic_in_drop_during_collection() {
    let base = baseline();
    let ring = ring3([noop, boom, noop]);
    drop(ring);
    let msg = expect_panic(collect);
    assert_eq!(msg, "boom in b");
    assert_eq!(sorted(take_log()), ["drop a", "drop b", "drop c"]);
    // Reclaimed by the panicking collection itself.
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
    assert_eq!(take_log(), Vec::<String>::new());
    assert_eq!(object_count(), base);
}

/// Two members panic: the first panic (in drop order) is re-raised, the
/// other is swallowed, and everything is still freed.
#[test]
fn two_panics_in_drop_during_collection() {
    let base = baseline();
    let ring = ring3([boom, boom, noop]);
    drop(ring);
    let msg = expect_panic(collect);
    let got = take_log();
    assert_eq!(sorted(got.clone()), ["drop a", "drop b", "drop c"]);
    let first_panicker = got.iter().find(|s| *s != "drop c").unwrap();
    assert_eq!(msg, format!("boom in {}", &first_panicker["drop ".len()..]));
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
}

/// A finalizer panics: the collection still frees the cycle, then re-raises.
#[test]
fn panic_in_finalize_during_collection() {
    let base = baseline();
    fn fboom(n: &FNode) {
        panic!("finalize boom in {}", n.name);
    }
    let a = fnode("a", fboom);
    let b = fnode("b", fnoop);
    flink(&a, &b);
    flink(&b, &a);
    drop((a, b));
    let msg = expect_panic(collect);
    assert_eq!(msg, "finalize boom in a");
    assert_eq!(
        sorted(take_log()),
        ["drop a", "drop b", "finalize a", "finalize b"]
    );
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
}

thread_local! {
    static CHAIN_DROPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

struct ChainNode {
    index: u32,
    panic_at: u32,
    next: Option<Gc<ChainNode>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for ChainNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}

impl Drop for ChainNode {
    fn drop(&mut self) {
        CHAIN_DROPS.with(|d| d.borrow_mut().push(self.index));
        if self.index == self.panic_at {
            panic!("chain boom at {}", self.index);
        }
    }
}

/// Plain refcount freeing of a long chain where one `Drop` panics.
///
/// What happens (and what leaks): nodes `0..K` are dropped and freed in
/// order; node `K`'s `Drop` panics. Its fields are still dropped by the drop
/// glue while unwinding, so node `K + 1` reaches count zero and is *queued*
/// (value intact) for the drop loop, which is unwinding: the panic reaches the
/// caller with `K + 1 .. N` still allocated. Node `K`'s slot leaks forever
/// (its value is gone but the unwinding skipped releasing its memory). The
/// queued rest is dropped, in order, by the next drop loop on this thread
/// (here: dropping an unrelated `Gc`). No `Drop` runs twice.
#[test]
fn panic_in_drop_while_freeing_a_long_chain() {
    const N: u32 = if cfg!(miri) { 1_000 } else { 100_000 };
    const K: u32 = N / 5 * 2;
    let base = baseline();
    let mut head: Option<Gc<ChainNode>> = None;
    for index in (0..N).rev() {
        head = Some(Gc::new(ChainNode {
            index,
            panic_at: K,
            next: head.take(),
        }));
    }
    assert_eq!(object_count(), base + N as usize);
    let msg = expect_panic(move || drop(head));
    assert_eq!(msg, format!("chain boom at {K}"));
    let drops = CHAIN_DROPS.with(|d| std::mem::take(&mut *d.borrow_mut()));
    assert_eq!(drops, (0..=K).collect::<Vec<_>>());
    // K (leaked) and K+1..N (queued).
    assert_eq!(object_count(), base + (N - K) as usize);

    // Any later drop loop drains the queue.
    drop(Gc::new(0u8));
    let drops = CHAIN_DROPS.with(|d| std::mem::take(&mut *d.borrow_mut()));
    assert_eq!(drops, (K + 1..N).collect::<Vec<_>>());
    assert_eq!(object_count(), base + 1, "only node K's slot leaks");
    assert_eq!(collect(), 0);
    assert_eq!(object_count(), base + 1);
}

// ===========================================================================
// thread-local teardown
// ===========================================================================

struct TNode {
    weight: usize,
    counter: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<&'static str>>>,
    next: RefCell<Option<Gc<TNode>>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for TNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}

impl Drop for TNode {
    fn drop(&mut self) {
        // No thread-locals here: this may run during thread teardown.
        self.counter.fetch_add(1, SeqCst);
        if self.weight == 0 {
            self.events.lock().unwrap().push("cycle member dropped");
        }
    }
}

fn tnode(
    weight: usize,
    counter: &Arc<AtomicUsize>,
    events: &Arc<Mutex<Vec<&'static str>>>,
) -> Gc<TNode> {
    Gc::new(TNode {
        weight,
        counter: counter.clone(),
        events: events.clone(),
        next: RefCell::new(None),
    })
}

fn tcycle(counter: &Arc<AtomicUsize>, events: &Arc<Mutex<Vec<&'static str>>>) {
    let a = tnode(0, counter, events);
    let b = tnode(0, counter, events);
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
}

/// A thread leaves a garbage cycle behind and exits without collecting: the
/// final collection at thread exit runs its `Drop` impls.
#[test]
fn thread_exit_collects_garbage_cycles() {
    let counter = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (c, e) = (counter.clone(), events.clone());
    std::thread::spawn(move || {
        for _ in 0..3 {
            tcycle(&c, &e);
        }
        assert_eq!(object_count(), 6);
        assert_eq!(c.load(SeqCst), 0);
    })
    .join()
    .unwrap();
    assert_eq!(counter.load(SeqCst), 6);
}

/// Holds `Gc`s in a *user* thread-local that is registered before rcycle's
/// heap exists on the thread, so (thread-local destructors run in reverse
/// order of registration on this platform) it is destroyed after rcycle's
/// own thread-exit collection. Its `Drop` reads, clones, creates and drops
/// `Gc`s and calls `collect()`. Both destruction orders are accepted; the
/// numbers must match the order that happened.
#[test]
fn gc_in_user_thread_local_destroyed_after_rcycle_teardown() {
    struct Holder {
        others: Vec<Gc<TNode>>,
        counter: Arc<AtomicUsize>,
        events: Arc<Mutex<Vec<&'static str>>>,
        observed_weight: Arc<AtomicUsize>,
        nested_freed: Arc<AtomicUsize>,
    }
    // SAFETY: reports each of `others` once.
    unsafe impl Trace for Holder {
        fn trace(&self, t: &mut Tracer<'_>) {
            t.field("others", &self.others);
        }
    }
    impl Drop for Holder {
        fn drop(&mut self) {
            self.events.lock().unwrap().push("holder dropped");
            let total: usize = self.others.iter().map(|o| o.weight).sum();
            self.observed_weight.store(total, SeqCst);
            let extra = self.others[0].clone();
            assert_eq!(Gc::strong_count(&extra), 2);
            drop(extra);
            // Fresh objects after the heap's teardown ran.
            drop(tnode(5, &self.counter, &self.events));
            tcycle(&self.counter, &self.events);
            self.nested_freed.store(collect(), SeqCst);
            self.counter.fetch_add(100, SeqCst);
        }
    }
    thread_local! {
        static USER_SLOT: RefCell<Option<Gc<Holder>>> = const { RefCell::new(None) };
    }

    let counter = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(Mutex::new(Vec::new()));
    let observed = Arc::new(AtomicUsize::new(0));
    let nested = Arc::new(AtomicUsize::new(usize::MAX));
    let (c, e, o, n) = (
        counter.clone(),
        events.clone(),
        observed.clone(),
        nested.clone(),
    );
    std::thread::spawn(move || {
        // Register USER_SLOT's destructor before rcycle touches this thread.
        USER_SLOT.with(|s| assert!(s.borrow().is_none()));
        let holder = Gc::new(Holder {
            others: vec![tnode(3, &c, &e), tnode(4, &c, &e)],
            counter: c.clone(),
            events: e.clone(),
            observed_weight: o,
            nested_freed: n,
        });
        USER_SLOT.with(|s| *s.borrow_mut() = Some(holder));
        // Garbage left for the thread-exit collection.
        tcycle(&c, &e);
    })
    .join()
    .expect("thread teardown must not crash");

    let events = events.lock().unwrap().clone();
    println!("teardown order: {events:?}");
    assert_eq!(observed.load(SeqCst), 7);
    // holder 100 + others 2 + temporary 1 + cycle made in Drop 2 + leftover cycle 2
    assert_eq!(counter.load(SeqCst), 107);
    let holder_at = events.iter().position(|e| *e == "holder dropped").unwrap();
    if holder_at == 2 {
        // rcycle's teardown collected the leftover cycle first; the nested
        // collect() then found only the cycle made inside Drop.
        assert_eq!(nested.load(SeqCst), 2, "{events:?}");
    } else {
        // The user thread-local went first: its collect() found both cycles.
        assert_eq!(holder_at, 0, "{events:?}");
        assert_eq!(nested.load(SeqCst), 4, "{events:?}");
    }
    assert_eq!(events.len(), 5);
}

// ===========================================================================
// Gc::new_cyclic whose closure panics
// ===========================================================================

#[test]
fn new_cyclic_panicking_closure() {
    let base = baseline();
    fn upgrade_parent(n: &Node) {
        let up = n.weak.borrow().upgrade().is_some();
        log(format!(
            "{} upgrade parent: {}",
            n.name,
            if up { "some" } else { "none" }
        ));
    }
    let msg = expect_panic(|| {
        Gc::new_cyclic(|w: &WeakGc<Node>| -> Node {
            assert!(w.upgrade().is_none());
            assert_eq!(w.strong_count(), 0);
            WEAK_STASH.with(|s| s.borrow_mut().push(w.clone()));
            // A child with a weak handle to the object being built, dropped
            // while unwinding.
            let child = node("child", upgrade_parent);
            *child.weak.borrow_mut() = w.clone();
            let _child = child;
            panic!("cyclic boom");
        })
    });
    assert_eq!(msg, "cyclic boom");
    assert_eq!(take_log(), ["drop child", "child upgrade parent: none"]);
    let w = WEAK_STASH.with(|s| s.borrow_mut().pop().unwrap());
    assert!(w.upgrade().is_none());
    assert_eq!((w.strong_count(), w.weak_count()), (0, 0));
    // Only the never-initialized object, held by the stashed weak handle.
    assert_eq!(object_count(), base + 1);
    assert_eq!(collect(), 0);
    drop(w);
    assert_eq!(object_count(), base);
    assert_eq!(take_log(), Vec::<String>::new());

    // Without a stashed weak handle nothing at all is left.
    let msg =
        expect_panic(|| Gc::new_cyclic(|_w: &WeakGc<Node>| -> Node { panic!("cyclic boom 2") }));
    assert_eq!(msg, "cyclic boom 2");
    assert_eq!(object_count(), base);

    // And a successful one still works afterwards.
    let ok = Gc::new_cyclic(|w: &WeakGc<Node>| Node {
        name: "ok",
        next: RefCell::new(None),
        extra: RefCell::new(Vec::new()),
        weak: RefCell::new(w.clone()),
        on_drop: noop,
    });
    assert!(Gc::ptr_eq(&ok.weak.borrow().upgrade().unwrap(), &ok));
    drop(ok);
    assert_eq!(take_log(), ["drop ok"]);
    assert_eq!(object_count(), base);
}

// ===========================================================================
// try_unwrap / get_mut with weak handles outstanding, compared with Rc
// ===========================================================================

#[test]
fn try_unwrap_and_get_mut_with_weak_handles_like_rc() {
    let base = baseline();

    let mut g = Gc::new(String::from("v"));
    let mut r = Rc::new(String::from("v"));
    let gw = Gc::downgrade(&g);
    let rw = Rc::downgrade(&r);
    assert_eq!(Gc::get_mut(&mut g).is_some(), Rc::get_mut(&mut r).is_some());
    assert!(Gc::get_mut(&mut g).is_none());
    assert_eq!(Gc::weak_count(&g), Rc::weak_count(&r));
    assert_eq!(Gc::strong_count(&g), Rc::strong_count(&r));

    // A second strong handle: both refuse.
    let g2 = g.clone();
    let r2 = r.clone();
    let g = Gc::try_unwrap(g).unwrap_err();
    let r = Rc::try_unwrap(r).unwrap_err();
    drop((g2, r2));

    // Only strong handle (weak outstanding): both succeed, weak stops upgrading.
    let gv = Gc::try_unwrap(g).expect("Gc::try_unwrap with a weak outstanding");
    let rv = Rc::try_unwrap(r).expect("Rc::try_unwrap with a weak outstanding");
    assert_eq!(gv, rv);
    assert!(gw.upgrade().is_none() && rw.upgrade().is_none());
    assert_eq!(gw.strong_count(), rw.strong_count());
    assert_eq!(gw.weak_count(), rw.weak_count());
    assert_eq!(object_count(), base + 1); // memory held by gw
    drop((gw, rw));
    assert_eq!(object_count(), base);

    // get_mut works again once the weak handle is gone.
    let mut g = Gc::new(1u32);
    let w = Gc::downgrade(&g);
    assert!(Gc::get_mut(&mut g).is_none());
    drop(w);
    *Gc::get_mut(&mut g).unwrap() += 1;
    assert_eq!(*g, 2);
    drop(g);
    assert_eq!(object_count(), base);
}

/// `try_unwrap` of an object that sits in the candidate buffer (its count
/// dropped to 1 earlier): the value moves out; without weak handles the
/// memory is freed at once (and leaves the buffer), with one it stays until
/// the weak handle goes.
#[test]
fn try_unwrap_of_buffered_object() {
    let base = baseline();
    for with_weak in [false, true] {
        let g = node("u", noop);
        drop(g.clone()); // 2 -> 1: buffered
        assert_eq!(candidate_count(), 1);
        let w = with_weak.then(|| Gc::downgrade(&g));
        let v = Gc::try_unwrap(g).ok().expect("sole strong handle");
        assert_eq!(v.name, "u");
        drop(v);
        assert_eq!(take_log(), ["drop u"]);
        if let Some(w) = w {
            assert_eq!(object_count(), base + 1);
            assert_eq!(candidate_count(), 1);
            assert_eq!(collect(), 0);
            assert_eq!(candidate_count(), 0);
            assert!(w.upgrade().is_none());
            assert_eq!(object_count(), base + 1);
            drop(w);
        } else {
            assert_eq!(candidate_count(), 0);
        }
        assert_eq!(object_count(), base, "with_weak = {with_weak}");
        assert_eq!(collect(), 0);
        assert_eq!(take_log(), Vec::<String>::new());
    }
}

// ===========================================================================
// Gc<dyn Trait> in a cycle
// ===========================================================================

trait Named {
    fn name(&self) -> &'static str;
}

struct Cat {
    next: RefCell<Option<Gc<dyn Named>>>,
}
struct Dog {
    age: u64,
    next: RefCell<Option<Gc<dyn Named>>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for Cat {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}
// SAFETY: reports `next` once.
unsafe impl Trace for Dog {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}
impl Named for Cat {
    fn name(&self) -> &'static str {
        "cat"
    }
}
impl Named for Dog {
    fn name(&self) -> &'static str {
        "dog"
    }
}
impl Drop for Cat {
    fn drop(&mut self) {
        log("drop cat");
    }
}
impl Drop for Dog {
    fn drop(&mut self) {
        log(format!("drop dog aged {}", self.age));
    }
}

#[test]
fn dyn_trait_cycle_is_collected() {
    let base = baseline();
    let cat = Gc::new(Cat {
        next: RefCell::new(None),
    });
    let dog = Gc::new(Dog {
        age: 7,
        next: RefCell::new(Some(coerce_gc!(cat.clone() => dyn Named))),
    });
    *cat.next.borrow_mut() = Some(coerce_gc!(dog.clone() => dyn Named));
    let dyn_cat: Gc<dyn Named> = coerce_gc!(cat => dyn Named);
    let dyn_dog: Gc<dyn Named> = coerce_gc!(dog => dyn Named);
    assert_eq!(dyn_cat.name(), "cat");
    assert_eq!(dyn_dog.name(), "dog");
    assert_eq!(Gc::strong_count(&dyn_cat), 2);
    let w: WeakGc<dyn Named> = Gc::downgrade(&dyn_dog);
    assert_eq!(w.upgrade().unwrap().name(), "dog");
    drop((dyn_cat, dyn_dog));
    assert_eq!(object_count(), base + 2);
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop cat", "drop dog aged 7"]);
    assert!(w.upgrade().is_none());
    drop(w);
    assert_eq!(object_count(), base);

    // Freed by count: the concrete Drop runs too.
    let d: Gc<dyn Named> =
        coerce_gc!(Gc::new(Dog { age: 3, next: RefCell::new(None) }) => dyn Named);
    drop(d);
    assert_eq!(take_log(), ["drop dog aged 3"]);
    assert_eq!(object_count(), base);
}
