//! The `Rc`-like API of `Gc` and `WeakGc`, object sizes, unsized values, large
//! and over-aligned objects, and automatic collection. Every test runs on its
//! own thread, so every heap count below is exact.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use rcycle::{coerce_gc, collect, object_count, Gc, Trace, WeakGc};

thread_local! {
    static DROPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

fn drops() -> Vec<u32> {
    DROPS.with(|d| d.borrow().clone())
}

#[derive(Trace)]
struct Node {
    #[trace(skip)]
    id: u32,
    next: RefCell<Option<Gc<Node>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        DROPS.with(|d| d.borrow_mut().push(self.id));
    }
}

fn node(id: u32) -> Gc<Node> {
    Gc::new(Node {
        id,
        next: RefCell::new(None),
    })
}

#[test]
fn sizes_match_rc() {
    assert_eq!(size_of::<Gc<u64>>(), size_of::<usize>());
    assert_eq!(size_of::<Option<Gc<u64>>>(), size_of::<usize>());
    assert_eq!(size_of::<WeakGc<u64>>(), size_of::<usize>());
    assert_eq!(size_of::<Gc<dyn std::fmt::Debug>>(), 2 * size_of::<usize>());
}

#[test]
fn counts_like_rc() {
    let a = Gc::new(5u32);
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (1, 0));
    let b = a.clone();
    let w = Gc::downgrade(&a);
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (2, 1));
    assert_eq!((w.strong_count(), w.weak_count()), (2, 1));
    drop((a, b));
    assert_eq!((w.strong_count(), w.weak_count()), (0, 0));
    assert!(w.upgrade().is_none());
    assert_eq!(object_count(), 1, "a weak handle keeps the memory only");
    drop(w);
    assert_eq!(object_count(), 0);
}

#[test]
fn acyclic_graphs_free_without_collect() {
    let a = node(1);
    let b = node(2);
    *a.next.borrow_mut() = Some(b.clone());
    drop(b);
    assert_eq!(object_count(), 2);
    drop(a);
    assert_eq!(drops(), vec![1, 2]);
    assert_eq!(object_count(), 0);
    assert_eq!(collect(), 0);
}

#[test]
fn cycle_collected_with_exact_count() {
    let a = node(1);
    let b = node(2);
    let c = node(3);
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(c.clone());
    *c.next.borrow_mut() = Some(a.clone());
    drop((b, c));
    assert_eq!(collect(), 0, "held by `a`");
    assert!(drops().is_empty());
    drop(a);
    assert_eq!(collect(), 3);
    let mut d = drops();
    d.sort();
    assert_eq!(d, vec![1, 2, 3]);
    assert_eq!(object_count(), 0);
    assert_eq!(collect(), 0);
}

#[test]
fn garbage_hanging_off_a_live_object_is_kept() {
    let live = node(1);
    let a = node(2);
    *live.next.borrow_mut() = Some(a.clone());
    *a.next.borrow_mut() = Some(a.clone()); // self-loop, also held by `live`
    drop(a);
    assert_eq!(collect(), 0);
    *live.next.borrow_mut() = None;
    assert_eq!(collect(), 1);
    assert_eq!(drops(), vec![2]);
}

#[test]
fn weak_parent_pointers_make_trees_acyclic() {
    #[derive(Trace)]
    struct T {
        parent: RefCell<WeakGc<T>>,
        kids: RefCell<Vec<Gc<T>>>,
    }
    let root = Gc::new(T {
        parent: RefCell::new(WeakGc::new()),
        kids: RefCell::new(vec![]),
    });
    for _ in 0..10 {
        let kid = Gc::new(T {
            parent: RefCell::new(Gc::downgrade(&root)),
            kids: RefCell::new(vec![]),
        });
        root.kids.borrow_mut().push(kid);
    }
    assert_eq!(Gc::weak_count(&root), 10);
    let kid = root.kids.borrow()[3].clone();
    assert!(Gc::ptr_eq(&kid.parent.borrow().upgrade().unwrap(), &root));
    drop(root);
    assert!(kid.parent.borrow().upgrade().is_none());
    assert_eq!(
        object_count(),
        2,
        "kid, and the root's memory held by kid's weak"
    );
    drop(kid);
    assert_eq!(object_count(), 0);
    assert_eq!(collect(), 0);
}

#[test]
fn try_unwrap_and_get_mut() {
    let mut a = Gc::new(String::from("x"));
    Gc::get_mut(&mut a).unwrap().push('y');
    let w = Gc::downgrade(&a);
    assert!(Gc::get_mut(&mut a).is_none(), "a weak handle exists");
    assert_eq!(Gc::try_unwrap(a).unwrap(), "xy");
    assert!(w.upgrade().is_none());
    drop(w);
    let b = Gc::new(1);
    let b2 = b.clone();
    let b = Gc::try_unwrap(b).unwrap_err();
    drop(b2);
    assert_eq!(Gc::try_unwrap(b), Ok(1));
    assert_eq!(object_count(), 0);
}

#[test]
fn new_cyclic_builds_a_self_reference() {
    #[derive(Trace)]
    struct Me {
        me: WeakGc<Me>,
        seen_during_build: bool,
    }
    let m = Gc::new_cyclic(|w| Me {
        me: w.clone(),
        seen_during_build: w.upgrade().is_some(),
    });
    assert!(!m.seen_during_build);
    assert!(Gc::ptr_eq(&m.me.upgrade().unwrap(), &m));
    assert_eq!(Gc::weak_count(&m), 1);
    drop(m);
    assert_eq!(object_count(), 0);
}

#[test]
fn trait_impls_compare_by_value() {
    let a = Gc::new(3);
    let b = Gc::new(3);
    let c = Gc::new(4);
    assert!(a == b && a != c && a < c);
    assert_eq!(a.cmp(&c), std::cmp::Ordering::Less);
    let set: HashSet<Gc<i32>> = [a.clone(), b.clone(), c.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(format!("{a:?} {a}"), "3 3");
    assert!(format!("{a:p}").starts_with("0x"));
    let d: Gc<Vec<u8>> = Gc::default();
    assert!(d.is_empty());
    let e: Gc<u8> = 7.into();
    assert_eq!(*AsRef::<u8>::as_ref(&e), 7);
    assert_eq!(*std::borrow::Borrow::<u8>::borrow(&e), 7);
    assert_eq!(Gc::try_deref(&e), Some(&7));
    assert_eq!(unsafe { *Gc::as_ptr(&e) }, 7);
}

#[test]
fn unsized_values_through_coerce_gc() {
    trait Shape {
        fn area(&self) -> u32;
    }
    #[derive(Trace)]
    struct Square(u32, RefCell<Option<Gc<dyn Shape>>>);
    impl Shape for Square {
        fn area(&self) -> u32 {
            self.0 * self.0
        }
    }
    let sq = Gc::new(Square(3, RefCell::new(None)));
    let shape: Gc<dyn Shape> = coerce_gc!(sq.clone() => dyn Shape);
    assert_eq!(shape.area(), 9);
    *sq.1.borrow_mut() = Some(shape.clone()); // a cycle through a trait object
    drop((sq, shape));
    assert_eq!(collect(), 1);
    assert_eq!(object_count(), 0);

    let slice: Gc<[u16]> = coerce_gc!(Gc::new([1u16, 2, 3]) => [u16]);
    assert_eq!(slice.iter().sum::<u16>(), 6);
    let s: Gc<dyn std::fmt::Display> =
        coerce_gc!(Gc::new(String::from("hi")) => dyn std::fmt::Display);
    assert_eq!(s.to_string(), "hi");
}

#[test]
fn large_over_aligned_and_zero_sized_objects() {
    #[derive(Trace)]
    struct Big {
        #[trace(skip)]
        bytes: [u8; 5000],
        next: RefCell<Option<Gc<Big>>>,
    }
    #[repr(align(64))]
    #[derive(Trace)]
    struct Aligned {
        #[trace(skip)]
        x: u8,
        next: RefCell<Option<Gc<Aligned>>>,
    }
    let big = Gc::new(Big {
        bytes: [7; 5000],
        next: RefCell::new(None),
    });
    *big.next.borrow_mut() = Some(big.clone());
    let al = Gc::new(Aligned {
        x: 9,
        next: RefCell::new(None),
    });
    assert_eq!(Gc::as_ptr(&al) as usize % 64, 0);
    *al.next.borrow_mut() = Some(al.clone());
    let unit = Gc::new(());
    assert_eq!(big.bytes[4999] + al.x, 16);
    assert_eq!(object_count(), 3);
    drop((big, al));
    assert_eq!(collect(), 2);
    assert_eq!(object_count(), 1);
    drop(unit);
    assert_eq!(object_count(), 0);
}

#[test]
fn automatic_collection_keeps_garbage_bounded() {
    // Smaller under Miri, which is ~1000x slower.
    const N: u32 = if cfg!(miri) { 500 } else { 10_000 };
    rcycle::set_threshold(100);
    let mut peak = 0;
    for i in 0..N {
        let a = node(i);
        *a.next.borrow_mut() = Some(a.clone());
        drop(a);
        peak = peak.max(object_count());
    }
    assert!(peak <= 100, "at most one threshold of garbage: {peak}");
    assert_eq!(drops().len() + object_count(), N as usize);
    collect();
    assert_eq!(object_count(), 0);
    rcycle::disable();
    assert!(!rcycle::is_enabled());
    for i in 0..N / 10 {
        let a = node(i);
        *a.next.borrow_mut() = Some(a.clone());
    }
    assert_eq!(
        object_count(),
        (N / 10) as usize,
        "disabled: nothing collected"
    );
    rcycle::enable();
    collect();
    assert_eq!(object_count(), 0);
    assert_eq!(drops().len(), (N + N / 10) as usize);
}

#[test]
fn candidate_buffer_holds_each_object_once() {
    let a = Gc::new(Some(Gc::new(1u8)));
    for _ in 0..10 {
        drop(a.clone());
    }
    assert_eq!(rcycle::candidate_count(), 1);
    // Leaf types are never candidates: they cannot be part of a cycle.
    let leaf = Gc::new(5u64);
    drop(leaf.clone());
    assert_eq!(rcycle::candidate_count(), 1);
    drop(a);
    assert_eq!(
        rcycle::candidate_count(),
        0,
        "freed objects leave the buffer"
    );
    assert_eq!(collect(), 0);
}

#[test]
fn rc_inside_gc_is_traced_when_unique() {
    #[derive(Trace)]
    struct Holder(Rc<RefCell<Option<Gc<Holder>>>>);
    let h = Gc::new(Holder(Rc::new(RefCell::new(None))));
    *h.0.borrow_mut() = Some(h.clone());
    drop(h);
    assert_eq!(collect(), 1);
}

#[test]
fn many_types_and_cells() {
    #[derive(Trace)]
    enum E {
        Leaf(#[trace(skip)] Cell<u32>),
        Pair(Gc<E>, Option<Gc<E>>),
    }
    let leaf = Gc::new(E::Leaf(Cell::new(1)));
    let pair = Gc::new(E::Pair(leaf.clone(), None));
    if let E::Leaf(c) = &*leaf {
        c.set(2);
    }
    drop(leaf);
    drop(pair);
    assert_eq!(object_count(), 0);
}

#[derive(Trace)]
struct ParentTree {
    parent: RefCell<Option<Gc<ParentTree>>>,
    children: Vec<Gc<ParentTree>>,
}

fn parent_tree(depth: u32) -> Gc<ParentTree> {
    let children = if depth == 0 {
        Vec::new()
    } else {
        vec![parent_tree(depth - 1), parent_tree(depth - 1)]
    };
    let node = Gc::new(ParentTree {
        parent: RefCell::new(None),
        children,
    });
    for child in &node.children {
        *child.parent.borrow_mut() = Some(node.clone());
    }
    node
}

/// A dead tree with parent pointers leaves one candidate (its root) behind
/// for 31 objects: 2,000 of them stay under the candidate threshold (10,000)
/// but make 62,000 objects. The trigger on the number of objects collects
/// them as the heap grows: at most 8,192 more objects than after the last
/// collection (or half as many again, for a bigger heap).
#[test]
fn garbage_behind_few_candidates_is_collected_as_the_heap_grows() {
    // Under Miri, just enough trees to pass the growth limit once.
    const TREES: usize = if cfg!(miri) { 400 } else { 2000 };
    collect();
    let before = object_count();
    assert!(before < 100, "{before}");
    let mut peak = 0;
    for _ in 0..TREES {
        drop(parent_tree(4));
        peak = peak.max(object_count());
    }
    assert!(rcycle::candidate_count() < 10_000);
    assert!(peak <= before + 8192 + 31, "peak {peak} objects");
    let collected = collect();
    assert_eq!(object_count(), before, "collect() freed {collected}");
    // Without automatic collection, all 31 * TREES wait.
    rcycle::disable();
    for _ in 0..TREES {
        drop(parent_tree(4));
    }
    assert_eq!(object_count(), before + 31 * TREES);
    assert_eq!(collect(), 31 * TREES);
    rcycle::enable();
}
