//! `Gc::new` moves values of 17 to 64 bytes (aligned to 8) into their box
//! one word at a time, and everything else with `ptr::write`
//! (`GcBox::write_value`). These tests check that the copy is exact on both
//! sides of each boundary: every field, padding next to fields, handles and
//! boxes inside the value (still usable: under Miri this checks that pointer
//! provenance survives the copy), over-aligned types, and one drop per
//! value. Small enough for Miri.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rcycle::{collect, object_count, Gc, Trace, WeakGc};

/// Counts drops of the values below, so that a copy that duplicated or lost
/// a value would show.
#[derive(Clone)]
struct Dropped(Rc<Cell<usize>>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

// SAFETY: `Dropped` owns no `Gc`.
unsafe impl Trace for Dropped {
    fn trace(&self, _: &mut rcycle::Tracer<'_>) {}
    fn may_contain_gc() -> bool {
        false
    }
}

/// 24 bytes with 7 bytes of padding after `tag`, a handle and a box.
#[derive(Trace)]
struct Padded24 {
    tag: u8,
    child: Gc<u32>,
    boxed: Box<u64>,
}

/// 56 bytes: the weak-parent node of `benches/phases.rs` (48 bytes) with a drop
/// counter.
#[derive(Trace)]
struct Node56 {
    parent: RefCell<Option<WeakGc<Node56>>>,
    kids: [Option<Gc<Node56>>; 4],
    dropped: Dropped,
}

/// Exactly 64 bytes, the largest value copied word by word.
#[derive(Trace)]
struct Words64 {
    words: [u64; 7],
    child: Gc<String>,
}

/// 72 bytes: one word too many, moved with `ptr::write`.
#[derive(Trace)]
struct Words72 {
    words: [u64; 8],
    child: Gc<String>,
}

/// 32 bytes aligned to 16, with padding at the end.
#[derive(Trace)]
#[repr(C, align(16))]
struct Aligned32 {
    first: u64,
    child: Gc<u8>,
    last: u8,
}

/// 20 bytes aligned to 4: not copied word by word.
#[derive(Trace)]
struct Narrow20 {
    parts: [u32; 5],
}

#[test]
fn fields_padding_and_pointers_arrive_intact() {
    let leaf = Gc::new(7u32);
    let a = Gc::new(Padded24 {
        tag: 0xA5,
        child: leaf.clone(),
        boxed: Box::new(u64::MAX - 1),
    });
    assert_eq!(std::mem::size_of::<Padded24>(), 24);
    assert_eq!(a.tag, 0xA5);
    assert_eq!(*a.child, 7);
    assert_eq!(*a.boxed, u64::MAX - 1);
    assert!(Gc::ptr_eq(&a.child, &leaf));
    assert_eq!(Gc::strong_count(&leaf), 2);

    let text = Gc::new(String::from("sixty-four"));
    let b = Gc::new(Words64 {
        words: [1, 2, 3, 4, 5, 6, 7],
        child: text.clone(),
    });
    assert_eq!(std::mem::size_of::<Words64>(), 64);
    assert_eq!(b.words, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(b.child.as_str(), "sixty-four");

    let c = Gc::new(Words72 {
        words: [9; 8],
        child: text.clone(),
    });
    assert_eq!(std::mem::size_of::<Words72>(), 72);
    assert_eq!(c.words, [9; 8]);
    assert_eq!(c.child.as_str(), "sixty-four");
    assert_eq!(Gc::strong_count(&text), 3);

    let byte = Gc::new(3u8);
    let d = Gc::new(Aligned32 {
        first: 0x0123_4567_89AB_CDEF,
        child: byte.clone(),
        last: 0xFE,
    });
    assert_eq!(std::mem::size_of::<Aligned32>(), 32);
    assert_eq!(std::mem::align_of::<Aligned32>(), 16);
    assert_eq!(
        Gc::as_ptr(&d) as usize % 16,
        0,
        "the value keeps its alignment"
    );
    assert_eq!(
        (d.first, *d.child, d.last),
        (0x0123_4567_89AB_CDEF, 3, 0xFE)
    );

    let e = Gc::new(Narrow20 {
        parts: [10, 20, 30, 40, 50],
    });
    assert_eq!(e.parts, [10, 20, 30, 40, 50]);

    drop((a, b, c, d, e));
    assert_eq!(Gc::strong_count(&leaf), 1);
    assert_eq!(Gc::strong_count(&text), 1);
    assert_eq!(Gc::strong_count(&byte), 1);
    drop((leaf, text, byte));
    assert_eq!(object_count(), 0);
}

#[test]
fn each_value_is_dropped_once() {
    let drops = Rc::new(Cell::new(0));
    let node = |kids: [Option<Gc<Node56>>; 4]| {
        Gc::new(Node56 {
            parent: RefCell::new(None),
            kids,
            dropped: Dropped(drops.clone()),
        })
    };
    assert_eq!(std::mem::size_of::<Node56>(), 56);
    let leaves: Vec<_> = (0..4).map(|_| node([None, None, None, None])).collect();
    let root = node(std::array::from_fn(|k| Some(leaves[k].clone())));
    for leaf in &leaves {
        *leaf.parent.borrow_mut() = Some(Gc::downgrade(&root));
    }
    drop(leaves);
    assert_eq!(drops.get(), 0, "moving a value in must not drop it");
    for kid in root.kids.iter().flatten() {
        let parent = kid.parent.borrow().as_ref().and_then(WeakGc::upgrade);
        assert!(parent.is_some_and(|p| Gc::ptr_eq(&p, &root)));
    }
    drop(root);
    assert_eq!(drops.get(), 5);
    assert_eq!(collect(), 0);
    assert_eq!(object_count(), 0);
}

#[test]
fn a_value_moved_in_comes_back_out_intact() {
    let drops = Rc::new(Cell::new(0));
    let kid = Gc::new(Node56 {
        parent: RefCell::new(None),
        kids: [None, None, None, None],
        dropped: Dropped(drops.clone()),
    });
    let parent = Gc::new(Node56 {
        parent: RefCell::new(None),
        kids: [None, Some(kid.clone()), None, None],
        dropped: Dropped(drops.clone()),
    });
    let value = Gc::into_inner(parent).expect("the only handle");
    assert!(value.kids[1].as_ref().is_some_and(|k| Gc::ptr_eq(k, &kid)));
    assert!(value.kids[0].is_none() && value.kids[2].is_none() && value.kids[3].is_none());
    assert_eq!(drops.get(), 0);
    drop(value);
    assert_eq!(drops.get(), 1);
    drop(kid);
    assert_eq!(drops.get(), 2);
    assert_eq!(object_count(), 0);
}
