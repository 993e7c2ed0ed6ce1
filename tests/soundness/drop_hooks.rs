//! `Drop` impls that read, clone, stash, unwrap or borrow the members of the
//! garbage set they belong to, while the collector drops it.

use super::*;

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
