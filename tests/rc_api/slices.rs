//! `Gc<[T]>` and `Gc<str>` made from vectors, slices, arrays, boxes,
//! strings and iterators, checked against `Rc<[T]>` / `Rc<str>`, and
//! against the collector and the reports, which must know each object's
//! length.

use std::borrow::Cow;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use rcycle::report::{live_report, why_alive};
use rcycle::{collect, object_count, Gc, Trace, WeakGc};

use super::{clones, sorted_drops, val, Val};

/// Every conversion gives the same elements as `Rc`'s.
#[test]
fn conversions_match_rc() {
    let v = vec![3u16, 1, 4, 1, 5];
    assert_eq!(
        &Gc::<[u16]>::from(v.clone())[..],
        &Rc::<[u16]>::from(v.clone())[..]
    );
    assert_eq!(
        &Gc::<[u16]>::from(&v[..])[..],
        &Rc::<[u16]>::from(&v[..])[..]
    );
    let boxed: Box<[u16]> = v.clone().into_boxed_slice();
    assert_eq!(&Gc::<[u16]>::from(boxed)[..], &v[..]);
    assert_eq!(&Gc::<[u16]>::from([3u16, 1, 4, 1, 5])[..], &v[..]);
    assert_eq!(&Gc::<[u16]>::from(Cow::Borrowed(&v[..]))[..], &v[..]);
    assert_eq!(&Gc::<[u16]>::from(Cow::Owned(v.clone()))[..], &v[..]);
    assert_eq!(&v.iter().copied().collect::<Gc<[u16]>>()[..], &v[..]);
    assert_eq!(Gc::<[u16]>::default().len(), 0);

    let s = "grüße";
    assert_eq!(&*Gc::<str>::from(s), &*Rc::<str>::from(s));
    assert_eq!(&*Gc::<str>::from(String::from(s)), s);
    assert_eq!(&*Gc::<str>::from(Box::<str>::from(s)), s);
    assert_eq!(&*Gc::<str>::from(Cow::Borrowed(s)), s);
    assert_eq!(&*Gc::<str>::default(), "");
    assert_eq!(Gc::<str>::from(s).len(), 7);
    assert_eq!(format!("{:?}", Gc::<str>::from("a\"b")), "\"a\\\"b\"");
    // Everything above was dropped: no object is left.
    assert_eq!(object_count(), 0);
}

/// Moving from a `Vec` moves each element once and clones none; dropping
/// the last handle drops each element exactly once, in order.
#[test]
fn elements_are_moved_in_and_dropped_once() {
    let v: Vec<Val> = (0..4).map(val).collect();
    let g: Gc<[Val]> = v.into();
    assert_eq!(clones(), 0);
    assert_eq!(object_count(), 1);
    assert_eq!(g.iter().map(|v| v.id).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(sorted_drops().is_empty());
    let h = g.clone();
    drop(g);
    assert!(sorted_drops().is_empty());
    drop(h);
    assert_eq!(sorted_drops(), [(0, 0), (1, 0), (2, 0), (3, 0)]);
    assert_eq!(object_count(), 0);
}

/// `From<&[T]>` clones each element once; the source keeps its own.
#[test]
fn from_slice_clones_each_element_once() {
    let v: Vec<Val> = (0..3).map(val).collect();
    let g: Gc<[Val]> = Gc::from(&v[..]);
    assert_eq!(clones(), 3);
    assert_eq!(
        g.iter().map(|v| (v.id, v.gen)).collect::<Vec<_>>(),
        [(0, 1), (1, 1), (2, 1)]
    );
    drop(g);
    assert_eq!(sorted_drops(), [(0, 1), (1, 1), (2, 1)]);
    drop(v);
    assert_eq!(
        sorted_drops(),
        [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    );
}

/// A panic in the middle of an iterator or of a `Clone` leaves no object
/// behind and drops every element made so far.
#[test]
fn a_panic_while_collecting_leaks_nothing() {
    let before = object_count();
    let r = catch_unwind(|| {
        (0..5)
            .map(|i| if i == 3 { panic!("third") } else { val(i) })
            .collect::<Gc<[Val]>>()
    });
    assert!(r.is_err());
    assert_eq!(object_count(), before);
    assert_eq!(sorted_drops(), [(0, 0), (1, 0), (2, 0)]);

    #[derive(Trace)]
    struct Bomb(u32);
    impl Clone for Bomb {
        fn clone(&self) -> Self {
            assert!(self.0 != 2, "clone of 2");
            Bomb(self.0)
        }
    }
    let bombs = [Bomb(1), Bomb(2), Bomb(3)];
    let r = catch_unwind(AssertUnwindSafe(|| Gc::<[Bomb]>::from(&bombs[..])));
    assert!(r.is_err());
    assert_eq!(object_count(), before);
}

#[derive(Trace)]
struct Node {
    id: u32,
    children: RefCell<Option<Gc<[Gc<Node>]>>>,
}

fn node(id: u32) -> Gc<Node> {
    Gc::new(Node {
        id,
        children: RefCell::new(None),
    })
}

/// The collector traces a slice object's elements: a cycle through a
/// `Gc<[Gc<Node>]>` is freed, exactly its three objects.
#[test]
fn cycles_through_a_slice_object_are_collected() {
    let a = node(1);
    let b = node(2);
    let kids: Gc<[Gc<Node>]> = vec![b.clone(), a.clone()].into();
    *a.children.borrow_mut() = Some(kids);
    *b.children.borrow_mut() = Some(Gc::from(&[a.clone()][..]));
    assert_eq!(object_count(), 4);
    // Still held from outside: nothing to collect.
    assert_eq!(collect(), 0);
    let weak_kids = Gc::downgrade(a.children.borrow().as_ref().unwrap());
    drop((a, b));
    assert_eq!(collect(), 4);
    assert!(weak_kids.upgrade().is_none());
    drop(weak_kids);
    assert_eq!(object_count(), 0);
}

/// The reports read each slice object's own length: its size, its type's
/// name, and the element index on a chain.
#[test]
fn reports_see_the_length() {
    let x = Gc::new(7u64);
    let holder: Gc<[Gc<u64>]> = vec![Gc::new(1u64), x.clone(), Gc::new(2u64)].into();
    let text: Gc<str> = Gc::from("hello");
    let chain = why_alive(&x).unwrap();
    assert_eq!(
        chain.to_string(),
        "<held outside> [rcycle::gc::Gc<u64>] [1] -> u64"
    );

    let report = live_report();
    let row = |kind: &str| {
        report
            .rows()
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| (r.count, r.size))
            .unwrap()
    };
    // A large object: its 32-byte prefix, then the 16-byte header and the
    // elements, rounded up to 8.
    assert_eq!(row("[rcycle::gc::Gc<u64>]"), (1, 32 + 16 + 3 * 8));
    assert_eq!(row("str"), (1, 32 + (16 + 5usize).div_ceil(8) * 8));
    drop((holder, text, x));
}

/// Elements of every alignment sit where their type says, zero-sized ones
/// included, and the heap walks and frees each object with its own length.
#[test]
fn alignments_and_zero_sized_elements() {
    #[derive(Trace, Clone, Copy, Debug, PartialEq)]
    #[repr(align(64))]
    struct Wide(u8);
    let wide: Gc<[Wide]> = (0..5).map(Wide).collect();
    for w in wide.iter() {
        assert_eq!(std::ptr::from_ref(w) as usize % 64, 0);
    }
    assert_eq!(wide[4], Wide(4));
    let units: Gc<[()]> = vec![(); 1_000].into();
    assert_eq!(units.len(), 1_000);
    let bytes: Vec<Gc<[u8]>> = (0..100).map(|n| vec![n as u8; n].into()).collect();
    assert_eq!(object_count(), 102);
    assert_eq!(live_report().count(), 102);
    for (n, b) in bytes.iter().enumerate() {
        assert_eq!(b.len(), n);
        assert!(b.iter().all(|&x| x == n as u8));
    }
    drop((wide, units, bytes));
    assert_eq!(object_count(), 0);
}

/// A weak handle to a slice object keeps its memory (and its length) until
/// it goes, as `Weak<[T]>` does.
#[test]
fn weak_handles_to_slices() {
    let g: Gc<[Val]> = vec![val(1), val(2)].into();
    let w: WeakGc<[Val]> = Gc::downgrade(&g);
    assert_eq!(w.upgrade().unwrap().len(), 2);
    drop(g);
    assert_eq!(sorted_drops(), [(1, 0), (2, 0)]);
    assert!(w.upgrade().is_none());
    assert_eq!(object_count(), 1, "the weak handle keeps the memory");
    drop(w);
    assert_eq!(object_count(), 0);
}
