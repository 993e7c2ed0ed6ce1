//! `try_unwrap` / `get_mut` with weak handles outstanding (against `Rc`), and
//! `Gc<dyn Trait>` in a cycle.

use super::*;

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
