//! Unit tests of the capture: labels, columns and edge-label packing.

use super::columns::*;
use super::labels::*;
use super::*;
use crate::header::VISITED;
use crate::runtime::heap;
use crate::{Finalize, Gc, Trace};
use std::cell::RefCell;

#[derive(Trace)]
struct Shapes {
    one: Gc<u8>,
    list: Vec<Gc<u8>>,
    nested: Vec<Vec<Gc<u8>>>,
    by_key: std::collections::BTreeMap<&'static str, Gc<u8>>,
}

fn labels_of(g: &HeapGraph, node: usize) -> Vec<String> {
    g.referents(node).map(|(_, l)| l.to_string()).collect()
}

fn shapes() -> Gc<Shapes> {
    Gc::new(Shapes {
        one: Gc::new(0),
        list: vec![Gc::new(1), Gc::new(2), Gc::new(3)],
        nested: vec![vec![], vec![Gc::new(4)]],
        by_key: [("a", Gc::new(5))].into(),
    })
}

const EXPECTED: [&str; 6] = [
    ".one",
    ".list[0]",
    ".list[1]",
    ".list[2]",
    ".nested[1][0]",
    ".by_key[\"a\"]",
];

#[test]
fn labels_from_templates_indices_and_keys() {
    let s = shapes();
    let g = HeapGraph::capture();
    let n = g.find(ObjectId::of(&s)).unwrap();
    assert_eq!(labels_of(&g, n), EXPECTED);
    // Asked twice: the same (cached) text.
    let first: Vec<*const u8> = g.referents(n).map(|(_, l)| l.as_ptr()).collect();
    let again: Vec<*const u8> = g.referents(n).map(|(_, l)| l.as_ptr()).collect();
    assert_eq!(first, again);
    let k = g.find(ObjectId::of(&s.list[2])).unwrap();
    assert_eq!(g.referrers(k).collect::<Vec<_>>(), [(n, ".list[2]")]);
    assert_eq!(g.outside_count(k), 0);
    // No flag is left on any object, and the candidate buffer is back.
    let heap = heap();
    for h in heap.all_objects() {
        // SAFETY: enumerated objects are allocated.
        assert!(!unsafe { h.as_ref() }.has(VISITED));
    }
}

/// A cycle whose finalizer captures the graph from inside the
/// collection: the capture falls back to its address map.
#[derive(Trace)]
#[trace(finalize)]
struct Spy {
    me: RefCell<Option<Gc<Spy>>>,
}

thread_local! {
    static SEEN: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

impl Finalize for Spy {
    fn finalize(&self) {
        let g = HeapGraph::capture();
        let kept = KEPT.with(|k| ObjectId::of(k.borrow().as_ref().unwrap()));
        let n = g.find(kept).unwrap();
        SEEN.with(|s| *s.borrow_mut() = Some(labels_of(&g, n)));
    }
}

thread_local! {
    static KEPT: RefCell<Option<Gc<Shapes>>> = const { RefCell::new(None) };
}

#[test]
fn a_capture_inside_a_collection_uses_the_address_map() {
    KEPT.with(|k| *k.borrow_mut() = Some(shapes()));
    let spy = Gc::new(Spy {
        me: RefCell::new(None),
    });
    *spy.me.borrow_mut() = Some(spy.clone());
    drop(spy);
    assert_eq!(crate::collect(), 1);
    assert_eq!(SEEN.with(|s| s.borrow_mut().take()).unwrap(), EXPECTED);
    KEPT.with(|k| k.borrow_mut().take());
}

#[test]
fn columns_keep_what_does_not_fit_on_the_side() {
    let entry = heap().type_of(
        // SAFETY: a live object's header.
        unsafe { Gc::new(0u8).header_ptr().as_ref() },
    );
    let mut c = Columns::with_capacity(2);
    c.push(&entry, 3, 24, 0, 0);
    c.push(&entry, 3, usize::MAX, 0, 0);
    assert_eq!((c.size(0), c.size(1)), (24, usize::MAX));
    c.set_size(0, u32::MAX as usize);
    c.set_size(1, u32::MAX as usize - 1);
    assert_eq!(
        (c.size(0), c.size(1)),
        (u32::MAX as usize, u32::MAX as usize - 1)
    );
    assert_eq!(c.big_size.len(), 1);
    for (strong, weak) in [
        (0, 0),
        (STRONG_MASK, WEAK_MAX),
        (STRONG_MASK + 1, 0),
        (1, WEAK_MAX + 1),
        (u32::MAX, u32::MAX),
    ] {
        c.set_counts(0, strong, weak);
        assert_eq!(c.counts(0), (strong, weak));
    }
    c.set_counts(0, 1, 2);
    assert_eq!((c.counts(0), c.big_counts.len()), ((1, 2), 0));
    c.set_flag(1, DEAD, true);
    c.set_flag(1, UNTRACEABLE_NODE, true);
    c.set_flag(1, UNTRACEABLE_NODE, false);
    assert_eq!((c.has(1, DEAD), c.has(1, UNTRACEABLE_NODE)), (true, false));
    assert_eq!((c.has(0, DEAD), c.type_name(1)), (false, "u8"));
    assert_eq!(c.type_names.len(), 4);
}

#[test]
fn edge_labels_pack_what_fits_and_keep_the_rest_whole() {
    let mut l = EdgeLabels::default();
    let bias = DELTA_BIAS as u32;
    let cases = [
        (0, WHOLE, 0),
        (LOW_30, WHOLE, 7),
        (LOW_30 + 1, WHOLE, 7), // wide
        (5, 0, 0),
        (5, 3, 9),
        (TEMPLATE_TEXTS - 1, u32::MAX - 1, (u32::MAX - 1) as usize),
        (TEMPLATE_TEXTS, 1, 1), // wide
        (2, bias - 1, 0),
        (2, bias, 0),              // wide
        (2, 0, bias as usize + 1), // wide
        (2, 0, bias as usize),
    ];
    for (e, &(text, index, pos)) in cases.iter().enumerate() {
        l.push(text, index, pos);
        assert_eq!(l.get(e, pos), (text, index), "case {e}");
    }
    assert_eq!(l.wide.len(), 4);
}

// A million handles and a vector of half a million slots: hours under
// Miri, and nothing unsafe here that the small captures above do not
// run (the packing of counts and label codes is plain arithmetic).
#[test]
#[cfg_attr(miri, ignore = "a million handles")]
fn big_counts_and_far_indices_survive_a_capture() {
    let shared = Gc::new(1u8);
    let clones: Vec<Gc<u8>> = (0..STRONG_MASK).map(|_| shared.clone()).collect();
    let weaks: Vec<_> = (0..=WEAK_MAX).map(|_| Gc::downgrade(&shared)).collect();
    // One element far past its position among the vector's edges.
    let far = (DELTA_BIAS + 5) as usize;
    let mut sparse: Vec<Option<Gc<u8>>> = vec![None; far + 1];
    sparse[far] = Some(shared.clone());
    let sparse = Gc::new(sparse);
    let g = HeapGraph::capture();
    let s = g.find(ObjectId::of(&shared)).unwrap();
    let v = g.find(ObjectId::of(&sparse)).unwrap();
    assert_eq!(g.strong(s), STRONG_MASK as usize + 2);
    assert_eq!(g.weak(s), WEAK_MAX as usize + 1);
    assert_eq!(g.outside_count(s), STRONG_MASK as usize + 1);
    let label = format!("[{far}]");
    assert_eq!(g.referents(v).collect::<Vec<_>>(), [(s, label.as_str())]);
    assert_eq!(g.referrers(s).collect::<Vec<_>>(), [(v, label.as_str())]);
    assert_eq!(g.out_label.wide.len(), 1);
    assert_eq!(g.objects()[s], g.object(s));
    drop((clones, weaks));
}

/// A value whose `trace` panics while `BOOM` is set (a panic in user
/// `Trace` code is allowed; the capture must leave every header as it was).
struct Bomb(u32);

thread_local! {
    static BOOM: std::cell::Cell<u32> = const { std::cell::Cell::new(u32::MAX) };
}

// SAFETY: owns no `Gc`; reporting nothing is exact.
unsafe impl Trace for Bomb {
    fn trace(&self, _: &mut crate::Tracer<'_>) {
        if BOOM.with(|b| b.get()) == self.0 {
            panic!("boom");
        }
    }
}

#[test]
fn a_panic_in_trace_during_a_capture_leaves_every_header_as_it_was() {
    // `Bomb`'s `heap_size` is not inert: the first pass holds every node
    // from the first `Bomb` on; the panic comes at a later one (in address
    // order, whichever is traced fourth).
    let bombs: Vec<_> = (0..8).map(|i| Gc::new(Bomb(i))).collect();
    let mut order: Vec<_> = bombs.iter().collect();
    order.sort_by_key(|b| b.header_ptr());
    BOOM.with(|b| b.set(order[3].0));
    let caught = std::panic::catch_unwind(HeapGraph::capture);
    BOOM.with(|b| b.set(u32::MAX));
    assert!(caught.is_err());
    for b in &bombs {
        assert_eq!((Gc::strong_count(b), Gc::weak_count(b)), (1, 0));
        // SAFETY: a live object's header.
        assert!(!unsafe { b.header_ptr().as_ref() }.has(VISITED));
    }
    let g = HeapGraph::capture();
    for b in &bombs {
        let node = g.find(ObjectId::of(b)).unwrap();
        assert_eq!((g.strong(node), g.weak(node)), (1, 0));
    }
    drop(bombs);
    assert_eq!(crate::collect(), 0);
}
