//! `Gc::pin`: against `Rc::pin`, and the value of a pinned object never
//! moves, whichever handle is used, and is dropped where it was.

use std::cell::RefCell;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::rc::Rc;

use rcycle::report::objects;
use rcycle::{collect, object_count, Gc, Trace};

/// A value that must not move: it logs its address when dropped.
#[derive(Trace)]
struct Pinned {
    id: u32,
    gen: u32,
    next: RefCell<Option<Gc<Pinned>>>,
    #[trace(skip)]
    _pin: PhantomPinned,
}

thread_local! {
    /// `(id, gen, address)` of every `Pinned` dropped.
    static PINNED_DROPS: RefCell<Vec<(u32, u32, usize)>> = const { RefCell::new(Vec::new()) };
}

fn pinned(id: u32) -> Pin<Gc<Pinned>> {
    Gc::pin(Pinned {
        id,
        gen: 0,
        next: RefCell::new(None),
        _pin: PhantomPinned,
    })
}

fn pinned_drops() -> Vec<(u32, u32, usize)> {
    PINNED_DROPS.with(|d| d.borrow().clone())
}

impl Clone for Pinned {
    fn clone(&self) -> Self {
        Pinned {
            id: self.id,
            gen: self.gen + 1,
            next: self.next.clone(),
            _pin: PhantomPinned,
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let at = std::ptr::from_mut(self).addr();
        PINNED_DROPS.with(|d| d.borrow_mut().push((self.id, self.gen, at)));
    }
}

/// A plain `Gc` to the pinned object, as any code can get one.
fn unpinned_handle() -> Gc<Pinned> {
    let found = objects::<Pinned>();
    assert_eq!(found.len(), 1);
    found[0].upgrade().unwrap()
}

#[test]
fn pin_like_rc() {
    let g = pinned(1);
    let r = Rc::pin(7u8);
    let (g2, r2) = (g.clone(), r.clone());
    assert!(std::ptr::eq(&*g, &*g2) && std::ptr::eq(&*r, &*r2));
    assert_eq!((g.id, *r), (1, 7));
    assert!(std::ptr::eq(Pin::as_ref(&g).get_ref(), &*g2));
    let at = std::ptr::from_ref::<Pinned>(&g).addr();
    drop((g, g2, r, r2));
    assert_eq!((pinned_drops(), object_count()), (vec![(1, 0, at)], 0));

    // The difference: an `Unpin` value taken out of its `Pin` stays pinned
    // (the mark is on the object), where `Rc` lends it out again.
    let mut g = Pin::into_inner(Gc::pin(5u8));
    let mut r = Pin::into_inner(Rc::pin(5u8));
    assert!(Gc::get_mut(&mut g).is_none());
    assert!(Rc::get_mut(&mut r).is_some());
    assert_eq!(Gc::into_inner(g), None);
    assert_eq!(Rc::into_inner(r), Some(5));
    assert_eq!(object_count(), 0);
}

/// No handle to a pinned object moves its value or lends it out mutably,
/// even one had without the `Pin`; its value is dropped where it was.
#[test]
fn pinned_value_never_moves() {
    let p = pinned(1);
    let at = std::ptr::from_ref::<Pinned>(&p).addr();
    let mut g = unpinned_handle();
    drop(p);
    assert_eq!((Gc::strong_count(&g), Gc::weak_count(&g)), (1, 0));
    assert!(Gc::get_mut(&mut g).is_none());
    let Err(mut g) = Gc::try_unwrap(g) else {
        panic!("try_unwrap moved a pinned value")
    };
    // make_mut copies it, even from its only handle; the pinned original is
    // dropped in place when that handle moves to the copy.
    {
        let copy = Gc::make_mut(&mut g);
        assert_eq!((copy.id, copy.gen), (1, 1));
    }
    assert_eq!(pinned_drops(), [(1, 0, at)]);
    // The copy is not pinned.
    assert!(Gc::get_mut(&mut g).is_some());
    let copy = Gc::into_inner(g).expect("not pinned");
    assert_eq!((copy.id, copy.gen, object_count()), (1, 1, 0));
    drop(copy);

    // into_inner and unwrap_or_clone refuse to move it too.
    let p = pinned(2);
    let at = std::ptr::from_ref::<Pinned>(&p).addr();
    let g = unpinned_handle();
    let g2 = g.clone();
    drop(p);
    let copy = Gc::unwrap_or_clone(g);
    assert_eq!((copy.id, copy.gen, Gc::strong_count(&g2)), (2, 1, 1));
    assert_eq!(Gc::into_inner(g2).map(|v| v.id), None);
    assert_eq!(pinned_drops()[2..], [(2, 0, at)]);
    assert_eq!(object_count(), 0);
}

/// A pinned member of a garbage cycle is dropped in place by the collector.
#[test]
fn pinned_garbage_is_dropped_in_place() {
    let p = pinned(1);
    let at = std::ptr::from_ref::<Pinned>(&p).addr();
    let g = unpinned_handle();
    *p.next.borrow_mut() = Some(g); // a self-loop
    drop(p);
    assert_eq!(object_count(), 1);
    assert_eq!(collect(), 1);
    assert_eq!((pinned_drops(), object_count()), (vec![(1, 0, at)], 0));
}
