//! The rest of `Rc`'s API on `Gc` (issue 22, item 5): `into_inner`,
//! `unwrap_or_clone`, `make_mut`, `into_raw` / `from_raw` (and `WeakGc`'s),
//! `pin`, `From<Box<T>>`. Each behaviour is checked against `std::rc::Rc`
//! where `Rc` has it, and against the collector where it does not (values
//! being collected, dead boxes, pinned objects). Every test runs on its own
//! thread, so every heap count below is exact. Small enough for Miri.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rcycle::{collect, object_count, Gc, Trace};

mod make_mut;
mod pin;
mod plain;
mod raw;
mod slices;

thread_local! {
    /// `(id, generation)` of every `Val`, `Node` and `Member` dropped.
    static DROPS: RefCell<Vec<(u32, u32)>> = const { RefCell::new(Vec::new()) };
    /// Clones made by `Val::clone`.
    static CLONES: Cell<u32> = const { Cell::new(0) };
}

fn drops() -> Vec<(u32, u32)> {
    DROPS.with(|d| d.borrow().clone())
}

fn sorted_drops() -> Vec<(u32, u32)> {
    let mut d = drops();
    d.sort_unstable();
    d
}

fn clones() -> u32 {
    CLONES.with(Cell::get)
}

/// A value that logs its drops and counts its clones (a clone is one
/// generation further).
#[derive(Trace, Debug, PartialEq)]
struct Val {
    id: u32,
    gen: u32,
}

fn val(id: u32) -> Val {
    Val { id, gen: 0 }
}

impl Clone for Val {
    fn clone(&self) -> Self {
        CLONES.with(|c| c.set(c.get() + 1));
        Val {
            id: self.id,
            gen: self.gen + 1,
        }
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        DROPS.with(|d| d.borrow_mut().push((self.id, self.gen)));
    }
}

/// A node of a cycle; a clone is one generation further and points where
/// the original does.
#[derive(Trace)]
struct Node {
    id: u32,
    gen: u32,
    next: RefCell<Option<Gc<Node>>>,
}

fn node(id: u32) -> Gc<Node> {
    Gc::new(Node {
        id,
        gen: 0,
        next: RefCell::new(None),
    })
}

fn link(from: &Gc<Node>, to: &Gc<Node>) {
    *from.next.borrow_mut() = Some(to.clone());
}

impl Clone for Node {
    fn clone(&self) -> Self {
        Node {
            id: self.id,
            gen: self.gen + 1,
            next: self.next.clone(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        DROPS.with(|d| d.borrow_mut().push((self.id, self.gen)));
    }
}
// ---- into_inner ----

#[test]
fn into_inner_like_rc() {
    let (g, r) = (Gc::new(String::from("v")), Rc::new(String::from("v")));
    let (g2, r2) = (g.clone(), r.clone());
    let (gw, rw) = (Gc::downgrade(&g), Rc::downgrade(&r));
    // Not the last strong handle: `None`, and the handle is gone.
    assert_eq!(Gc::into_inner(g), None);
    assert_eq!(Rc::into_inner(r), None);
    assert_eq!(
        (Gc::strong_count(&g2), Gc::weak_count(&g2)),
        (Rc::strong_count(&r2), Rc::weak_count(&r2))
    );
    assert_eq!((Gc::strong_count(&g2), Gc::weak_count(&g2)), (1, 1));
    // The last one: the value, and the weak handles stop upgrading.
    assert_eq!(Gc::into_inner(g2).as_deref(), Some("v"));
    assert_eq!(Rc::into_inner(r2).as_deref(), Some("v"));
    assert_eq!((gw.upgrade(), rw.upgrade()), (None, None));
    assert_eq!(
        (gw.strong_count(), gw.weak_count()),
        (rw.strong_count(), rw.weak_count())
    );
    assert_eq!(object_count(), 1, "the weak handle keeps the memory only");
    drop(gw);
    assert_eq!(object_count(), 0);
}

#[test]
fn into_inner_moves_without_dropping() {
    let g = Gc::new(val(1));
    let v = Gc::into_inner(g).unwrap();
    assert_eq!((v.id, v.gen, clones(), drops()), (1, 0, 0, vec![]));
    assert_eq!(object_count(), 0);
    drop(v);
    assert_eq!(drops(), [(1, 0)]);
}

/// A value taken out by `into_inner` keeps what it points to alive: the
/// collector sees those handles as held from outside the heap.
#[test]
fn into_inner_value_keeps_its_handles_alive() {
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    drop(b); // `b` is held by `a` only, `a` by this frame and by `b`
    assert!(Gc::into_inner(a.clone()).is_none());
    let a_weak = Gc::downgrade(&a);
    assert!(Gc::into_inner(a).is_none()); // now only the cycle holds both
    assert_eq!(collect(), 2, "into_inner of a shared handle only drops it");
    assert!(a_weak.upgrade().is_none());
    assert_eq!(sorted_drops(), [(1, 0), (2, 0)]);
    drop(a_weak);
    assert_eq!(object_count(), 0);

    let a = node(3);
    let b = node(4);
    link(&a, &b);
    link(&b, &a);
    let b_weak = Gc::downgrade(&b);
    drop(b);
    // `a`'s only strong handles: this one and `b.next`; give `b` up first.
    let taken_b = b_weak.upgrade().unwrap();
    *taken_b.next.borrow_mut() = None; // `a` is now held by this frame only
    drop(taken_b); // `b` is held by `a.next` only
    let value = Gc::into_inner(a).expect("the last strong handle");
    assert_eq!((value.id, value.gen), (3, 0));
    assert_eq!(collect(), 0, "`b` is held by the value taken out");
    assert_eq!(b_weak.strong_count(), 1);
    drop(value);
    assert_eq!(sorted_drops(), [(1, 0), (2, 0), (3, 0), (4, 0)]);
    drop(b_weak);
    assert_eq!(object_count(), 0);
}

thread_local! {
    static STASH: RefCell<Vec<Gc<Stasher>>> = const { RefCell::new(Vec::new()) };
}

/// A cycle member whose `Drop` stashes its neighbour: after a collection the
/// stash holds a dead box (or a value the collector has yet to drop).
#[derive(Trace)]
struct Stasher {
    id: u32,
    next: RefCell<Option<Gc<Stasher>>>,
}

impl Drop for Stasher {
    fn drop(&mut self) {
        DROPS.with(|d| d.borrow_mut().push((self.id, 0)));
        if let Some(next) = self.next.borrow_mut().take() {
            STASH.with(|s| s.borrow_mut().push(next));
        }
    }
}

impl Clone for Stasher {
    fn clone(&self) -> Self {
        unreachable!("a dead value is never cloned")
    }
}

#[test]
fn into_inner_and_unwrap_or_clone_of_a_dead_box() {
    let a = Gc::new(Stasher {
        id: 1,
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone()); // a self-loop
    drop(a);
    // The value is freed; the memory stays, for the stashed handle.
    assert_eq!(collect(), 1);
    let dead = STASH.with(|s| s.borrow_mut().pop()).unwrap();
    assert!(Gc::try_deref(&dead).is_none());
    assert_eq!((object_count(), Gc::strong_count(&dead)), (1, 1));
    let dead2 = dead.clone();
    assert!(Gc::into_inner(dead).is_none());
    assert_eq!(Gc::strong_count(&dead2), 1);
    // `unwrap_or_clone` has nothing to clone: it panics as deref does.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Gc::unwrap_or_clone(dead2);
    }));
    assert!(panicked.is_err());
    assert_eq!(object_count(), 0, "the dead box went with its last handle");
    assert_eq!(drops(), [(1, 0)]);
}

// ---- unwrap_or_clone ----

#[test]
fn unwrap_or_clone_like_rc() {
    let g = Gc::new(val(1));
    let g2 = g.clone();
    let r = Rc::new(val(2));
    let r2 = r.clone();
    // Shared: a clone (one generation on), the other handle keeps its value.
    let (gv, rv) = (Gc::unwrap_or_clone(g), Rc::unwrap_or_clone(r));
    assert_eq!(((gv.id, gv.gen), (rv.id, rv.gen)), ((1, 1), (2, 1)));
    assert_eq!((Gc::strong_count(&g2), Rc::strong_count(&r2)), (1, 1));
    assert_eq!((g2.gen, r2.gen, clones()), (0, 0, 2));
    // The last handle: moved out, not cloned.
    let (gv0, rv0) = (Gc::unwrap_or_clone(g2), Rc::unwrap_or_clone(r2));
    assert_eq!(((gv0.id, gv0.gen), (rv0.id, rv0.gen)), ((1, 0), (2, 0)));
    assert_eq!((clones(), object_count(), drops()), (2, 0, vec![]));
}
// ---- From<Box<T>> ----

#[test]
fn from_box_like_rc() {
    let g: Gc<Val> = Box::new(val(1)).into();
    let r: Rc<Val> = Box::new(val(2)).into();
    assert_eq!(((g.id, g.gen), (r.id, r.gen)), ((1, 0), (2, 0)));
    assert_eq!((Gc::strong_count(&g), Gc::weak_count(&g)), (1, 0));
    assert_eq!((clones(), drops(), object_count()), (0, vec![], 1));
    let g3 = Gc::<Val>::from(Box::new(val(3)));
    assert_eq!((g3.id, object_count()), (3, 2));
    drop((g, r, g3));
    assert_eq!((drops(), object_count()), (vec![(1, 0), (2, 0), (3, 0)], 0));
}
