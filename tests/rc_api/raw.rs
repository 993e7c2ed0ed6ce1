//! `Gc::into_raw` / `from_raw` and `WeakGc::into_raw` / `from_raw`,
//! against `Rc`'s and `Weak`'s.

use std::fmt::Debug;
use std::rc::{self, Rc};

use rcycle::{coerce_gc, collect, object_count, Gc, Trace, WeakGc};

use crate::{drops, link, node, val, Val};

#[test]
fn into_raw_from_raw_like_rc() {
    let g = Gc::new(String::from("g"));
    let r = Rc::new(String::from("r"));
    let (g2, r2) = (g.clone(), r.clone());
    let (graw, rraw) = (Gc::into_raw(g), Rc::into_raw(r));
    assert!(std::ptr::eq(graw, Gc::as_ptr(&g2)) && std::ptr::eq(rraw, Rc::as_ptr(&r2)));
    // SAFETY: the values are alive (`g2`, `r2`).
    assert_eq!(unsafe { (&**graw, &**rraw) }, ("g", "r"));
    assert_eq!((Gc::strong_count(&g2), Rc::strong_count(&r2)), (2, 2));
    // SAFETY: from `into_raw`, each taken back once.
    let (g, r) = unsafe { (Gc::from_raw(graw), Rc::from_raw(rraw)) };
    assert!(Gc::ptr_eq(&g, &g2) && Rc::ptr_eq(&r, &r2));
    drop((g, r));
    assert_eq!((Gc::strong_count(&g2), Rc::strong_count(&r2)), (1, 1));
    drop(g2);
    assert_eq!(object_count(), 0);
}

#[derive(Trace, Debug, PartialEq)]
#[repr(align(64))]
struct OverAligned(u8);

#[test]
fn from_raw_finds_the_object_of_any_alignment() {
    let big = Gc::new(OverAligned(3));
    let raw = Gc::into_raw(big);
    assert_eq!(raw.addr() % 64, 0);
    // SAFETY: from `into_raw`, taken back once.
    let big = unsafe { Gc::from_raw(raw) };
    assert_eq!((&*big, Gc::strong_count(&big)), (&OverAligned(3), 1));

    let unit = Gc::new(());
    let unit2 = unit.clone();
    // SAFETY: as above.
    let unit = unsafe { Gc::from_raw(Gc::into_raw(unit)) };
    assert!(Gc::ptr_eq(&unit, &unit2));
    drop((big, unit, unit2));
    assert_eq!(object_count(), 0);
}

#[test]
fn into_raw_of_an_unsized_handle_comes_back_as_its_type() {
    let shown: Gc<dyn Debug> = coerce_gc!(Gc::new(val(4)) => dyn Debug);
    let raw = Gc::into_raw(shown);
    assert_eq!(format!("{:?}", unsafe { &*raw }), "Val { id: 4, gen: 0 }");
    // SAFETY: the object was made as a `Gc<Val>`; taken back once.
    let back: Gc<Val> = unsafe { Gc::from_raw(raw.cast::<Val>()) };
    assert_eq!((back.id, Gc::strong_count(&back)), (4, 1));
    drop(back);
    assert_eq!((drops(), object_count()), (vec![(4, 0)], 0));
}

/// The strong count a raw pointer owns holds its object from outside: a
/// cycle through it is not garbage until it is taken back and dropped.
#[test]
fn a_raw_pointer_keeps_its_cycle_alive() {
    let a = node(1);
    link(&a, &a);
    let raw = Gc::into_raw(a);
    assert_eq!(collect(), 0);
    // SAFETY: the value is alive: `raw` holds it.
    assert_eq!(unsafe { (*raw).id }, 1);
    // SAFETY: from `into_raw`, taken back once.
    drop(unsafe { Gc::from_raw(raw) });
    assert_eq!(collect(), 1);
    assert_eq!((drops(), object_count()), (vec![(1, 0)], 0));
}

#[test]
fn weak_into_raw_from_raw_like_std() {
    let g = Gc::new(5u32);
    let r = Rc::new(5u32);
    let graw = WeakGc::into_raw(Gc::downgrade(&g));
    let rraw = rc::Weak::into_raw(Rc::downgrade(&r));
    assert!(std::ptr::eq(graw, Gc::as_ptr(&g)) && std::ptr::eq(rraw, Rc::as_ptr(&r)));
    assert_eq!((Gc::weak_count(&g), Rc::weak_count(&r)), (1, 1));
    drop((g, r));
    // SAFETY: from `into_raw`, each taken back once.
    let (gw, rw) = unsafe { (WeakGc::from_raw(graw), rc::Weak::from_raw(rraw)) };
    assert!(gw.upgrade().is_none() && rw.upgrade().is_none());
    assert_eq!(object_count(), 1, "the weak count kept the memory");
    drop((gw, rw));
    assert_eq!(object_count(), 0);

    // Handles to nothing come back as handles to nothing.
    let graw = WeakGc::into_raw(WeakGc::<u32>::new());
    let rraw = rc::Weak::into_raw(rc::Weak::<u32>::new());
    assert!(!graw.is_null() && !rraw.is_null());
    // SAFETY: as above.
    let (gw, rw) = unsafe { (WeakGc::from_raw(graw), rc::Weak::from_raw(rraw)) };
    assert!(gw.upgrade().is_none() && rw.upgrade().is_none());
    assert!(gw.ptr_eq(&WeakGc::new()));
    assert_eq!(object_count(), 0);

    // A live object: the handle upgrades again.
    let g = Gc::new(6u32);
    // SAFETY: as above.
    let w = unsafe { WeakGc::from_raw(WeakGc::into_raw(Gc::downgrade(&g))) };
    assert!(Gc::ptr_eq(&w.upgrade().unwrap(), &g));
    assert_eq!((Gc::strong_count(&g), Gc::weak_count(&g)), (1, 1));
}
