//! Finalizers (PEP 442): resurrection, and weak handles into a garbage set
//! seen from finalizers and `Drop`.

use super::*;

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
