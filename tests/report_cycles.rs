//! The dry run (`gc.DEBUG_SAVEALL` without the saving): the garbage it finds,
//! its separate cycles, the edges that close them, the suggested weak field;
//! and proof that it leaves the heap exactly as it was. Every test runs on
//! its own thread, so every number below is exact.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rcycle::report::{collect_explained, EdgeCount, EdgeKind, TypeCount};
use rcycle::{candidate_count, collect, collect_dry_run, object_count, Gc, Trace, Tracer};

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

#[derive(Trace)]
struct Pair {
    other: RefCell<Option<Gc<Pair>>>,
}

impl Drop for Pair {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

#[derive(Trace)]
struct Ring {
    next: RefCell<Option<Gc<Ring>>>,
}

fn pair_cycle() -> rcycle::WeakGc<Pair> {
    let a = Gc::new(Pair {
        other: RefCell::new(None),
    });
    let b = Gc::new(Pair {
        other: RefCell::new(Some(a.clone())),
    });
    *a.other.borrow_mut() = Some(b);
    Gc::downgrade(&a)
}

fn ring(n: usize) {
    let first = Gc::new(Ring {
        next: RefCell::new(None),
    });
    let mut last = first.clone();
    for _ in 1..n {
        last = Gc::new(Ring {
            next: RefCell::new(Some(last)),
        });
    }
    *first.next.borrow_mut() = Some(last);
}

fn edge(source: &'static str, label: &str, target: &'static str) -> EdgeKind {
    EdgeKind {
        source,
        label: label.into(),
        target,
    }
}

const PAIR: &str = "report_cycles::Pair";
const RING: &str = "report_cycles::Ring";

#[test]
fn three_pairs_and_a_ring() {
    let weak: Vec<_> = (0..3).map(|_| pair_cycle()).collect();
    ring(4);
    let (objects, candidates) = (object_count(), candidate_count());
    assert_eq!((objects, candidates), (10, 4));
    let counts = |w: &rcycle::WeakGc<Pair>| (w.strong_count(), w.weak_count());
    let before: Vec<_> = weak.iter().map(counts).collect();

    let dry = collect_dry_run();
    assert_eq!((dry.roots, dry.examined), (4, 10));
    let g = &dry.garbage;
    assert_eq!((g.objects, g.cycles), (10, 4));
    assert_eq!(
        g.by_type,
        [
            TypeCount {
                type_name: PAIR,
                count: 6,
                size: 6 * 32
            },
            TypeCount {
                type_name: RING,
                count: 4,
                size: 4 * 32
            },
        ]
    );
    assert_eq!(g.size, 320);
    assert_eq!(g.kinds.len(), 2);
    let (pairs, rings) = (&g.kinds[0], &g.kinds[1]);
    assert_eq!(
        (pairs.types.as_slice(), pairs.cycles, pairs.objects),
        (&[PAIR][..], 3, 6)
    );
    assert_eq!(
        pairs.edges,
        [EdgeCount {
            edge: edge(PAIR, ".other", PAIR),
            count: 6
        }]
    );
    assert_eq!(
        (rings.types.as_slice(), rings.cycles, rings.objects),
        (&[RING][..], 1, 4)
    );
    assert_eq!(rings.edges[0].count, 4);
    let suggestions: Vec<String> = g.suggestions().map(|s| s.to_string()).collect();
    assert_eq!(
        suggestions,
        [
            "cycles through report_cycles::Pair.other -> report_cycles::Pair: 6 objects; consider WeakGc for the field 'other'",
            "cycles through report_cycles::Ring.next -> report_cycles::Ring: 4 objects; consider WeakGc for the field 'next'",
        ]
    );

    // Nothing was freed, dropped or finalized, no handle or count changed,
    // weak handles still upgrade, and the candidate buffer is as it was.
    assert_eq!(DROPS.with(Cell::get), 0);
    assert_eq!((object_count(), candidate_count()), (objects, candidates));
    assert_eq!(weak.iter().map(counts).collect::<Vec<_>>(), before);
    assert!(weak.iter().all(|w| w.upgrade().is_some()));

    // A second dry run sees the same; the real collection frees exactly it.
    assert_eq!(collect_dry_run(), dry);
    assert_eq!(collect(), 10);
    assert_eq!(DROPS.with(Cell::get), 6);
    assert!(weak.iter().all(|w| w.upgrade().is_none()));
    assert_eq!(object_count(), 3, "the weak handles hold the memory only");
    drop(weak);
    assert_eq!(object_count(), 0);
    assert_eq!(collect_dry_run().garbage.objects, 0);
}

#[test]
fn display_summarises() {
    pair_cycle();
    ring(3);
    let text = collect_dry_run().to_string();
    let expected = "\
Dry run (2 roots, 5 objects examined; nothing freed): 5 garbage objects, 160 bytes, on or reachable from 2 cycles.
  Count     Size Type
      3       96 report_cycles::Ring
      2       64 report_cycles::Pair
1 cycles (3 objects) of report_cycles::Ring, closed by:
      3 report_cycles::Ring.next -> report_cycles::Ring
  cycles through report_cycles::Ring.next -> report_cycles::Ring: 3 objects; consider WeakGc for the field 'next'
1 cycles (2 objects) of report_cycles::Pair, closed by:
      2 report_cycles::Pair.other -> report_cycles::Pair
  cycles through report_cycles::Pair.other -> report_cycles::Pair: 2 objects; consider WeakGc for the field 'other'
";
    assert_eq!(text, expected);
    assert_eq!(collect(), 5);
}

#[derive(Trace)]
struct TreeNode {
    name: String,
    parent: RefCell<Option<Gc<TreeNode>>>,
    children: RefCell<Vec<Gc<TreeNode>>>,
}

fn tree_node(name: &str, parent: Option<&Gc<TreeNode>>) -> Gc<TreeNode> {
    let node = Gc::new(TreeNode {
        name: name.into(),
        parent: RefCell::new(parent.cloned()),
        children: RefCell::new(Vec::new()),
    });
    if let Some(p) = parent {
        p.children.borrow_mut().push(node.clone());
    }
    node
}

#[test]
fn a_parent_children_tree_suggests_parent() {
    let root = tree_node("root", None);
    for i in 0..2 {
        let child = tree_node(&format!("c{i}"), Some(&root));
        for j in 0..2 {
            tree_node(&format!("c{i}{j}"), Some(&child));
        }
    }
    drop(root);
    let dry = collect_dry_run();
    let g = &dry.garbage;
    assert_eq!((g.objects, g.cycles, g.kinds.len()), (7, 1, 1));
    const NODE: &str = "report_cycles::TreeNode";
    assert_eq!(
        g.kinds[0].edges,
        [
            EdgeCount {
                edge: edge(NODE, ".children[_]", NODE),
                count: 6
            },
            EdgeCount {
                edge: edge(NODE, ".parent", NODE),
                count: 6
            },
        ]
    );
    let suggestion = g.kinds[0].suggestion.as_ref().unwrap();
    assert_eq!(suggestion.edges, [edge(NODE, ".parent", NODE)]);
    assert_eq!(
        suggestion.to_string(),
        "cycles through report_cycles::TreeNode.parent -> report_cycles::TreeNode: 7 objects; consider WeakGc for the field 'parent'"
    );
    assert_eq!(collect(), 7);
}

#[derive(Trace)]
struct ListNode {
    prev: RefCell<Option<Gc<ListNode>>>,
    next: RefCell<Option<Gc<ListNode>>>,
}

#[test]
fn a_doubly_linked_list_suggests_prev() {
    let head = Gc::new(ListNode {
        prev: RefCell::new(None),
        next: RefCell::new(None),
    });
    let mut tail = head.clone();
    for _ in 1..5 {
        let node = Gc::new(ListNode {
            prev: RefCell::new(Some(tail.clone())),
            next: RefCell::new(None),
        });
        *tail.next.borrow_mut() = Some(node.clone());
        tail = node;
    }
    drop((head, tail));
    let g = collect_dry_run().garbage;
    assert_eq!((g.objects, g.cycles), (5, 1));
    // `next` and `prev` both break every cycle and are 1:1 links: `prev`
    // wins on its name (a back pointer), so the answer is stable.
    assert_eq!(
        g.suggestions().map(|s| s.to_string()).collect::<Vec<_>>(),
        ["cycles through report_cycles::ListNode.prev -> report_cycles::ListNode: 5 objects; consider WeakGc for the field 'prev'"]
    );
    assert_eq!(collect(), 5);
}

#[derive(Trace)]
struct Registry {
    by_name: RefCell<BTreeMap<String, Gc<Entry>>>,
}

#[derive(Trace)]
struct Entry {
    registry: RefCell<Option<Gc<Registry>>>,
    payload: Gc<String>,
}

#[test]
fn map_keys_are_normalized_and_leaves_are_not_cycles() {
    let registry = Gc::new(Registry {
        by_name: RefCell::new(BTreeMap::new()),
    });
    for name in ["a", "b]\"[", "c"] {
        let entry = Gc::new(Entry {
            registry: RefCell::new(Some(registry.clone())),
            payload: Gc::new(format!("payload of {name}")),
        });
        registry.by_name.borrow_mut().insert(name.into(), entry);
    }
    drop(registry);
    let g = collect_dry_run().garbage;
    // 1 registry, 3 entries, 3 strings: the strings are garbage, on no cycle.
    assert_eq!((g.objects, g.cycles), (7, 1));
    let count_of = |name: &str| {
        g.by_type
            .iter()
            .find(|t| t.type_name == name)
            .unwrap()
            .count
    };
    assert_eq!(count_of("alloc::string::String"), 3);
    assert_eq!(count_of("report_cycles::Entry"), 3);
    let kind = &g.kinds[0];
    assert_eq!(
        (kind.types.as_slice(), kind.objects),
        (&["report_cycles::Entry", "report_cycles::Registry"][..], 4)
    );
    let labels: Vec<_> = kind
        .edges
        .iter()
        .map(|e| (e.edge.to_string(), e.count))
        .collect();
    assert_eq!(
        labels,
        [
            (
                "report_cycles::Entry.registry -> report_cycles::Registry".to_string(),
                3
            ),
            (
                "report_cycles::Registry.by_name[_] -> report_cycles::Entry".to_string(),
                3
            ),
        ]
    );
    // Both break every cycle; the plain field (many entries -> one registry)
    // wins over the map.
    assert_eq!(
        kind.suggestion.as_ref().unwrap().to_string(),
        "cycles through report_cycles::Entry.registry -> report_cycles::Registry: 4 objects; consider WeakGc for the field 'registry'"
    );
    assert_eq!(collect(), 7);
}

#[derive(Trace)]
struct TwoWays {
    a: RefCell<Option<Gc<TwoWays>>>,
    b: RefCell<Option<Gc<TwoWays>>>,
}

fn two_ways() -> Gc<TwoWays> {
    Gc::new(TwoWays {
        a: RefCell::new(None),
        b: RefCell::new(None),
    })
}

#[test]
fn cycles_needing_two_fields_get_both() {
    // x1 <-a-> x2, and x3 <-b-> x4, and x5 -> x5 through `a`.
    let xs: Vec<_> = (0..5).map(|_| two_ways()).collect();
    *xs[0].a.borrow_mut() = Some(xs[1].clone());
    *xs[1].a.borrow_mut() = Some(xs[0].clone());
    *xs[2].b.borrow_mut() = Some(xs[3].clone());
    *xs[3].b.borrow_mut() = Some(xs[2].clone());
    *xs[4].a.borrow_mut() = Some(xs[4].clone());
    drop(xs);
    let g = collect_dry_run().garbage;
    assert_eq!((g.objects, g.cycles, g.kinds.len()), (5, 3, 1));
    assert_eq!(
        g.kinds[0].suggestion.as_ref().unwrap().to_string(),
        "cycles through report_cycles::TwoWays.a -> report_cycles::TwoWays and report_cycles::TwoWays.b -> report_cycles::TwoWays: 5 objects; consider WeakGc for the field 'a' and the field 'b'"
    );
    assert_eq!(collect(), 5);
}

#[test]
fn a_long_ring_needs_no_recursion() {
    const N: usize = if cfg!(miri) { 500 } else { 200_000 };
    ring(N);
    let g = collect_dry_run().garbage;
    assert_eq!((g.objects, g.cycles), (N, 1));
    assert_eq!(g.kinds[0].edges[0].count, N);
    assert_eq!(collect(), N);
}

thread_local! {
    static BOOM: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Panics while traced: always (`Some(false)`), or only when labels are
/// recorded (`Some(true)`: the reporter's pass, not the collector's).
struct Bomb {
    next: RefCell<Option<Gc<Bomb>>>,
}

// SAFETY: reports its one field once (or panics before reporting anything).
unsafe impl Trace for Bomb {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        match BOOM.with(Cell::get) {
            Some(false) => panic!("boom"),
            Some(true) if tracer.wants_labels() => panic!("boom while labelling"),
            _ => {}
        }
        tracer.field("next", &self.next);
    }
}

#[test]
fn a_panic_in_trace_leaves_the_heap_as_it_was() {
    let a = Gc::new(Bomb {
        next: RefCell::new(None),
    });
    let b = Gc::new(Bomb {
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b);
    drop(a);
    assert_eq!(candidate_count(), 1);
    for mode in [false, true] {
        BOOM.with(|b| b.set(Some(mode)));
        let result = catch_unwind(AssertUnwindSafe(collect_dry_run));
        assert!(result.is_err());
        assert_eq!((candidate_count(), object_count()), (1, 2));
    }
    BOOM.with(|b| b.set(None));
    assert_eq!(collect_dry_run().garbage.objects, 2);
    assert_eq!(collect(), 2);
}

#[test]
fn collect_explained_reports_then_frees() {
    for _ in 0..3 {
        pair_cycle();
    }
    ring(4);
    let (stats, garbage) = collect_explained();
    assert_eq!((stats.freed, stats.roots, stats.examined), (10, 4, 10));
    assert_eq!((garbage.objects, garbage.cycles), (10, 4));
    assert_eq!(stats.freed_by_type, [(PAIR, 6), (RING, 4)]);
    assert_eq!(object_count(), 0);
}
