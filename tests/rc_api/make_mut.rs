//! `Gc::make_mut`: in place, cloned, moved away from weak handles (each
//! against `Rc::make_mut`), on a value the collector owns, on a dead box,
//! and what a collection frees afterwards.

use std::cell::RefCell;
use std::rc::Rc;

use rcycle::report::objects;
use rcycle::{collect, object_count, Gc, Trace};

use crate::{clones, drops, link, node, sorted_drops, val, Stasher, Val, DROPS, STASH};

#[test]
fn make_mut_only_handle_changes_in_place() {
    // A candidate in the collector's buffer is still the only handle.
    let mut g = Gc::new(Some(Gc::new(1u8)));
    drop(g.clone());
    assert_eq!(rcycle::candidate_count(), 1);
    let before = Gc::as_ptr(&g);
    *Gc::make_mut(&mut g) = None;
    assert!(std::ptr::eq(before, Gc::as_ptr(&g)));
    assert_eq!((g.is_none(), object_count()), (true, 1));
    assert_eq!(collect(), 0);

    let mut v = Gc::new(val(1));
    let mut r = Rc::new(val(1));
    Gc::make_mut(&mut v).id = 5;
    Rc::make_mut(&mut r).id = 5;
    assert_eq!((v.id, v.gen, r.id, r.gen, clones()), (5, 0, 5, 0, 0));
    assert!(drops().is_empty());
}

#[test]
fn make_mut_shared_clones_like_rc() {
    let mut g = Gc::new(vec![1]);
    let g2 = g.clone();
    let gw = Gc::downgrade(&g2);
    let mut r = Rc::new(vec![1]);
    let r2 = r.clone();
    let rw = Rc::downgrade(&r2);
    Gc::make_mut(&mut g).push(2);
    Rc::make_mut(&mut r).push(2);
    assert_eq!((&*g, &*g2), (&vec![1, 2], &vec![1]));
    assert_eq!((&*r, &*r2), (&vec![1, 2], &vec![1]));
    assert!(!Gc::ptr_eq(&g, &g2) && !Rc::ptr_eq(&r, &r2));
    let counts = |g: &Gc<Vec<i32>>| (Gc::strong_count(g), Gc::weak_count(g));
    let rc_counts = |r: &Rc<Vec<i32>>| (Rc::strong_count(r), Rc::weak_count(r));
    assert_eq!((counts(&g), counts(&g2)), ((1, 0), (1, 1)));
    assert_eq!((counts(&g), counts(&g2)), (rc_counts(&r), rc_counts(&r2)));
    // The weak handle stays with the old value.
    assert_eq!(gw.upgrade().as_deref(), Some(&vec![1]));
    assert_eq!(rw.upgrade().as_deref(), Some(&vec![1]));
    assert_eq!(object_count(), 2);
    // Now `g` is the only handle to its object: in place.
    let before = Gc::as_ptr(&g);
    Gc::make_mut(&mut g).push(3);
    assert!(std::ptr::eq(before, Gc::as_ptr(&g)));
    assert_eq!((&*g, object_count()), (&vec![1, 2, 3], 2));
}

#[test]
fn make_mut_with_only_weak_handles_disassociates_like_rc() {
    let mut g = Gc::new(val(1));
    let gw = Gc::downgrade(&g);
    let gw2 = gw.clone();
    let mut r = Rc::new(val(2));
    let rw = Rc::downgrade(&r);
    let rw2 = rw.clone();
    Gc::make_mut(&mut g).gen = 7;
    Rc::make_mut(&mut r).gen = 7;
    // Moved, not cloned, and not dropped.
    assert_eq!((g.id, g.gen, r.id, r.gen), (1, 7, 2, 7));
    assert_eq!((clones(), drops()), (0, vec![]));
    // The weak handles are disassociated.
    assert!(gw.upgrade().is_none() && rw.upgrade().is_none());
    assert_eq!((gw.strong_count(), gw.weak_count()), (0, 0));
    assert_eq!(
        (gw.strong_count(), gw.weak_count()),
        (rw.strong_count(), rw.weak_count())
    );
    assert_eq!(
        (Gc::strong_count(&g), Gc::weak_count(&g)),
        (Rc::strong_count(&r), Rc::weak_count(&r))
    );
    assert_eq!((Gc::strong_count(&g), Gc::weak_count(&g)), (1, 0));
    assert!(!gw.ptr_eq(&Gc::downgrade(&g)) && !rw.ptr_eq(&Rc::downgrade(&r)));
    // The old memory goes with the last weak handle.
    assert_eq!(object_count(), 2);
    drop((gw, rw));
    assert_eq!(object_count(), 2);
    drop((gw2, rw2));
    assert_eq!(object_count(), 1);
    drop((g, r));
    assert_eq!((object_count(), drops()), (0, vec![(1, 7), (2, 7)]));
}

/// A value moved by `make_mut` out of a buffered candidate: the old object
/// (dead, its weak handle left) is skipped by the collector, the new one is
/// collected once it is garbage.
#[test]
fn collect_after_make_mut_moves_frees_exactly_the_new_object() {
    let mut x = node(1);
    drop(x.clone()); // `x` is now a buffered candidate
    let w = Gc::downgrade(&x);
    let old = Gc::as_ptr(&x);
    Gc::make_mut(&mut x).gen = 1; // moved (only a weak handle)
    assert!(!std::ptr::eq(old, Gc::as_ptr(&x)));
    assert_eq!((object_count(), clones()), (2, 0));
    link(&x, &x); // the new object is a self-loop
    drop(x);
    assert_eq!(collect(), 1);
    assert_eq!(drops(), [(1, 1)]);
    assert_eq!(object_count(), 1, "the old object, for its weak handle");
    assert!(w.upgrade().is_none());
    drop(w);
    assert_eq!(object_count(), 0);
}

/// `make_mut` on a member of a cycle held by another member: the copy holds
/// what the original held, and a collection frees the original cycle once
/// nothing else holds it, and only it.
#[test]
fn collect_after_make_mut_clones_frees_exactly_the_old_cycle() {
    let a = node(1);
    let b = node(2);
    link(&a, &b);
    link(&b, &a);
    drop(b);
    let mut x = a;
    Gc::make_mut(&mut x).gen = 10; // shared with `b.next`: a copy of `a`
    assert_eq!((x.id, x.gen, object_count()), (1, 10, 3));
    assert_eq!(collect(), 0, "the copy holds `b`, which holds `a`");
    // Drop the copy's edge into the cycle (the copy is unique: in place).
    let before = Gc::as_ptr(&x);
    Gc::make_mut(&mut x).next.borrow_mut().take();
    assert!(std::ptr::eq(before, Gc::as_ptr(&x)));
    assert_eq!(collect(), 2);
    assert_eq!(sorted_drops(), [(1, 0), (2, 0)]);
    assert_eq!((object_count(), x.gen), (1, 10));
}

/// A cycle member whose `Drop` calls `make_mut` on its peer, which the
/// collector owns and may not have dropped yet.
#[derive(Trace)]
struct Member {
    id: u32,
    gen: u32,
    peer: RefCell<Option<Gc<Member>>>,
}

impl Clone for Member {
    fn clone(&self) -> Self {
        Member {
            id: self.id,
            gen: self.gen + 1,
            peer: self.peer.clone(),
        }
    }
}

thread_local! {
    /// What `make_mut` gave in a `Member`'s `Drop`: the copy's `(id, gen)`,
    /// and whether `get_mut` refused the peer first.
    static MADE: RefCell<Vec<(u32, u32, bool)>> = const { RefCell::new(Vec::new()) };
}

impl Drop for Member {
    fn drop(&mut self) {
        DROPS.with(|d| d.borrow_mut().push((self.id, self.gen)));
        if self.gen != 0 {
            return;
        }
        let peer = self.peer.borrow_mut().take();
        // (A peer whose value the collector has dropped already is skipped.)
        if let Some(mut peer) = peer.filter(|p| Gc::try_deref(p).is_some()) {
            let refused = Gc::get_mut(&mut peer).is_none();
            let copy = Gc::make_mut(&mut peer);
            MADE.with(|m| m.borrow_mut().push((copy.id, copy.gen, refused)));
        }
    }
}

/// The collector owns the peer's value: `get_mut` refuses, and `make_mut`
/// clones it (never moves it out from under the collector, even from its
/// last handle); every value is dropped exactly once.
#[test]
fn make_mut_on_a_value_being_collected_clones_it() {
    let member = |id| {
        Gc::new(Member {
            id,
            gen: 0,
            peer: RefCell::new(None),
        })
    };
    let a = member(1);
    let b = member(2);
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    drop((a, b));
    assert_eq!(collect(), 2);
    // The member dropped first copied the other (one generation on); the
    // copy and both originals were dropped once each.
    let made = MADE.with(|m| m.borrow().clone());
    assert_eq!(made.len(), 1);
    let (copied, gen, refused) = made[0];
    assert_eq!((gen, refused), (1, true));
    let mut expected = vec![(1, 0), (2, 0), (copied, 1)];
    expected.sort_unstable();
    assert_eq!(sorted_drops(), expected);
    assert_eq!(object_count(), 0);
}

#[test]
fn make_mut_of_a_dead_box_panics() {
    let a = Gc::new(Stasher {
        id: 1,
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(collect(), 1);
    let mut dead = STASH.with(|s| s.borrow_mut().pop()).unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Gc::make_mut(&mut dead);
    }));
    assert!(panicked.is_err());
    assert_eq!((object_count(), Gc::strong_count(&dead)), (1, 1));
    drop(dead);
    assert_eq!(object_count(), 0);
}

/// The guard `make_mut` returns keeps the heap off the value as `get_mut`'s
/// does: the new object is not listed while it is lent out.
#[test]
fn make_mut_guard_lends_the_new_object_out() {
    let mut g = Gc::new(val(1));
    let g2 = g.clone();
    {
        let mut m = Gc::make_mut(&mut g);
        m.id = 2;
        let listed: Vec<u32> = objects::<Val>()
            .iter()
            .map(|w| w.upgrade().unwrap().id)
            .collect();
        assert_eq!(listed, [1], "the copy is lent out");
    }
    assert_eq!(objects::<Val>().len(), 2);
    assert_eq!((g.id, g.gen, g2.id, g2.gen), (2, 1, 1, 0));
}
