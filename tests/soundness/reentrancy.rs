//! `collect()` called from `Drop` and finalizers, and `RefCell` borrows held
//! while a collection runs.

use super::*;

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
