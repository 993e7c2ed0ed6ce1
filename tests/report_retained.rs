//! Retained sizes (guppy's `domisize`): the dominator tree of the heap graph
//! from the objects held outside it, with exact byte counts.

use std::cell::RefCell;

use rcycle::report::{live_report_with_retained, retained_size, HeapGraph, ObjectId};
use rcycle::{collect, live_report, Gc, Trace};

#[derive(Trace)]
struct Tree {
    kids: Vec<Gc<Tree>>,
    leaves: Vec<Gc<u64>>,
}

fn tree(kids: Vec<Gc<Tree>>, leaves: &[u64]) -> Gc<Tree> {
    Gc::new(Tree {
        kids,
        leaves: leaves.iter().map(|&v| Gc::new(v)).collect(),
    })
}

/// The sum of the sizes the graph reports for `ids`.
fn size_of_ids(graph: &HeapGraph, ids: &[ObjectId]) -> usize {
    ids.iter()
        .map(|&id| graph.objects()[graph.find(id).unwrap()].size)
        .sum()
}

/// Every object reachable from `root` through the graph's edges.
fn reachable_ids(graph: &HeapGraph, root: ObjectId) -> Vec<ObjectId> {
    let mut seen = vec![false; graph.len()];
    let start = graph.find(root).unwrap();
    let mut stack = vec![start];
    seen[start] = true;
    let mut out = Vec::new();
    while let Some(n) = stack.pop() {
        out.push(graph.objects()[n].id);
        for (m, _) in graph.referents(n) {
            if !seen[m] {
                seen[m] = true;
                stack.push(m);
            }
        }
    }
    out
}

#[test]
fn a_leaf_retains_its_own_24_bytes() {
    collect();
    let leaf = Gc::new(7u64);
    assert_eq!(
        std::mem::size_of::<u64>() + 16,
        24,
        "16-byte header + value"
    );
    assert_eq!(retained_size(&leaf), 24);
}

#[test]
fn a_subtree_is_retained_by_its_root_exactly() {
    collect();
    let a = tree(vec![tree(vec![], &[1, 2])], &[3, 4, 5]);
    let b = tree(vec![], &[6]);
    let root = tree(vec![a.clone(), b], &[]);

    let graph = HeapGraph::capture();
    let subtree = reachable_ids(&graph, ObjectId::of(&a));
    assert_eq!(
        subtree.len(),
        1 + 3 + 1 + 2,
        "a, its leaves, its kid and its leaves"
    );
    let expected = size_of_ids(&graph, &subtree);
    // Hand-computed: 5 leaves of 24 bytes, two `Tree`s of 16 + 48 bytes, and
    // the buffers of their vectors: a.kids (1 × 8), a.leaves (3 × 8),
    // kid.kids (empty), kid.leaves (2 × 8).
    let tree_box = 16 + std::mem::size_of::<Tree>();
    assert_eq!(tree_box, 64);
    assert_eq!(expected, 5 * 24 + 2 * tree_box + 8 + 3 * 8 + 2 * 8);
    assert_eq!(retained_size(&a), expected);

    // `a` is also held here, so `root` does not dominate it: `root` retains
    // everything it reaches but `a`'s subtree.
    let whole = size_of_ids(&graph, &reachable_ids(&graph, ObjectId::of(&root)));
    assert_eq!(retained_size(&root), whole - expected);
    let doms = graph.dominators();
    assert_eq!(doms.reachable_size(), whole);
    assert!(doms.unreachable().is_empty());
    // Once only `root` holds it, `a` is dominated by `root`.
    drop(a);
    assert_eq!(retained_size(&root), whole);
}

#[test]
fn a_diamond_child_belongs_to_the_common_dominator_only() {
    collect();
    let shared = tree(vec![], &[1]);
    let left = tree(vec![shared.clone()], &[]);
    let right = tree(vec![shared.clone()], &[]);
    let top = tree(vec![left.clone(), right.clone()], &[]);
    let ids = [&shared, &left, &right, &top].map(ObjectId::of);
    drop((shared, left, right));

    let graph = HeapGraph::capture();
    let [s, l, r, t] = ids.map(|id| graph.find(id).unwrap());
    let size = |n: usize| graph.objects()[n].size;
    let doms = graph.dominators();
    assert_eq!(doms.immediate_dominator(s), Some(t));
    assert_eq!(doms.immediate_dominator(l), Some(t));
    assert_eq!(doms.immediate_dominator(r), Some(t));
    assert_eq!(doms.immediate_dominator(t), None);
    assert_eq!(doms.retained(l), Some(size(l)));
    assert_eq!(doms.retained(r), Some(size(r)));
    assert_eq!(doms.retained(s), Some(size(s) + 24));
    assert_eq!(
        doms.retained(t),
        Some(size(t) + size(l) + size(r) + size(s) + 24)
    );
    let mut under_top: Vec<usize> = doms.dominated(t).collect();
    under_top.sort_unstable();
    let mut expected = vec![s, l, r];
    expected.sort_unstable();
    assert_eq!(under_top, expected);
    assert_eq!(retained_size(&top), doms.retained(t).unwrap());
}

#[test]
fn an_object_shared_by_two_holders_is_retained_by_neither() {
    collect();
    let shared = Gc::new(99u64);
    let x = tree(vec![], &[]);
    let y = tree(vec![], &[]);
    let x2 = Gc::new(Tree {
        kids: vec![x.clone()],
        leaves: vec![shared.clone()],
    });
    let y2 = Gc::new(Tree {
        kids: vec![y.clone()],
        leaves: vec![shared.clone()],
    });
    let shared_id = ObjectId::of(&shared);
    drop((shared, x, y));

    let graph = HeapGraph::capture();
    let s = graph.find(shared_id).unwrap();
    let doms = graph.dominators();
    assert_eq!(doms.immediate_dominator(s), None);
    assert!(doms.is_reachable(s));
    assert!(doms.top_level().any(|t| t == s));
    let own = |g: &Gc<Tree>| graph.objects()[graph.find(ObjectId::of(g)).unwrap()].size;
    let kid_size = graph.objects()[graph
        .referents(graph.find(ObjectId::of(&x2)).unwrap())
        .next()
        .unwrap()
        .0]
        .size;
    // Each retains itself and its own kid, not the shared leaf.
    assert_eq!(retained_size(&x2), own(&x2) + kid_size);
    assert_eq!(retained_size(&y2), own(&y2) + kid_size);
    assert_eq!(doms.retained(s), Some(24));
}

#[derive(Trace)]
struct Node {
    next: Option<Gc<Node>>,
    leaf: Option<Gc<u64>>,
}

#[test]
fn retained_by_type_counts_nested_objects_of_a_type_once() {
    collect();
    // head -> mid -> tail, each with a u64 leaf; plus a lone u64.
    let tail = Gc::new(Node {
        next: None,
        leaf: Some(Gc::new(3)),
    });
    let mid = Gc::new(Node {
        next: Some(tail),
        leaf: Some(Gc::new(2)),
    });
    let head = Gc::new(Node {
        next: Some(mid),
        leaf: Some(Gc::new(1)),
    });
    let lone = Gc::new(4u64);
    let node = 16 + std::mem::size_of::<Node>();
    assert_eq!(node, 32);

    let graph = HeapGraph::capture();
    let by_type = graph.dominators().retained_by_type();
    let of = |kind: &str| by_type.iter().find(|(k, _)| k == kind).unwrap().1;
    // Only the head counts for Node: it retains the whole list and leaves.
    assert_eq!(of(std::any::type_name::<Node>()), 3 * node + 3 * 24);
    // Every u64 is top-most of its type: 4 × 24, no double counting.
    assert_eq!(of("u64"), 4 * 24);
    assert_eq!(retained_size(&head), 3 * node + 3 * 24);
    assert_eq!(retained_size(&lone), 24);
}

#[derive(Trace)]
struct Ring {
    next: RefCell<Option<Gc<Ring>>>,
    leaf: Gc<u64>,
}

#[test]
fn garbage_is_unreachable_and_retained_by_nothing() {
    collect();
    rcycle::disable(); // keep the garbage until this test collects it
    let kept = Gc::new(1u64);
    let a = Gc::new(Ring {
        next: RefCell::new(None),
        leaf: Gc::new(2),
    });
    let b = Gc::new(Ring {
        next: RefCell::new(Some(a.clone())),
        leaf: Gc::new(3),
    });
    *a.next.borrow_mut() = Some(b.clone());
    let ids = [ObjectId::of(&a), ObjectId::of(&b)];
    drop((a, b));

    let graph = HeapGraph::capture();
    let doms = graph.dominators();
    let garbage: Vec<ObjectId> = doms
        .unreachable()
        .iter()
        .map(|&n| graph.objects()[n].id)
        .collect();
    assert_eq!(garbage.len(), 4, "two rings and their leaves");
    for id in ids {
        let n = graph.find(id).unwrap();
        assert!(garbage.contains(&id));
        assert!(!doms.is_reachable(n));
        assert_eq!(doms.retained(n), None);
        assert_eq!(doms.immediate_dominator(n), None);
    }
    assert_eq!(doms.reachable_size(), 24);
    let ring = std::any::type_name::<Ring>();
    let by_type = doms.retained_by_type();
    assert_eq!(by_type.iter().find(|(k, _)| k == ring).unwrap().1, 0);

    let report = live_report_with_retained();
    let row = report.rows().iter().find(|r| r.kind == ring).unwrap();
    assert_eq!((row.count, row.retained), (2, Some(0)));
    let u64_row = report.rows().iter().find(|r| r.kind == "u64").unwrap();
    assert_eq!((u64_row.count, u64_row.retained), (3, Some(24)));
    assert_eq!(retained_size(&kept), 24);
    rcycle::enable();
    assert_eq!(collect(), 4);
}

#[test]
fn the_report_column_is_there_only_when_asked_for() {
    collect();
    let d = Gc::new(Node {
        next: None,
        leaf: Some(Gc::new(5)),
    });
    let plain = live_report();
    assert!(plain.rows().iter().all(|r| r.retained.is_none()));
    let text = plain.to_string();
    assert!(text.contains("\n Index  Count   %     Size   % Cumulative  % Type\n"));
    assert!(!text.contains("Retained"));

    let with = live_report_with_retained();
    assert_eq!(with.rows().len(), plain.rows().len());
    let text = with.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        " Index  Count   %     Size   % Cumulative  %  Retained   % Type"
    );
    // Node: 32 bytes, retains itself and the leaf (56 of 56 bytes, 100%);
    // u64: 24 bytes (42.9%, rounded as guppy does), retained 24 (43%).
    let node = std::any::type_name::<Node>();
    assert_eq!(
        lines[2],
        format!("     0      1  50       32  57        32  57        56 100 {node}")
    );
    assert_eq!(
        lines[3],
        "     1      1  50       24  43        56 100        24  43 u64"
    );
    drop(d);
}

#[test]
fn owner_back_pointers_stay_fast() {
    // Every node points back at the owner of the list: quadratic for a
    // naive iterative dominator algorithm, O(E log N) here.
    #[derive(Trace)]
    struct Owner {
        first: RefCell<Option<Gc<Item>>>,
    }
    #[derive(Trace)]
    struct Item {
        owner: Gc<Owner>,
        next: RefCell<Option<Gc<Item>>>,
    }
    collect();
    let n = if cfg!(miri) { 50 } else { 200_000 };
    let owner = Gc::new(Owner {
        first: RefCell::new(None),
    });
    let mut last: Option<Gc<Item>> = None;
    for _ in 0..n {
        let item = Gc::new(Item {
            owner: owner.clone(),
            next: RefCell::new(None),
        });
        match &last {
            Some(prev) => *prev.next.borrow_mut() = Some(item.clone()),
            None => *owner.first.borrow_mut() = Some(item.clone()),
        }
        last = Some(item);
    }
    drop(last);
    let start = std::time::Instant::now();
    let total = retained_size(&owner);
    let item = 16 + std::mem::size_of::<Item>();
    assert_eq!(total, 16 + std::mem::size_of::<Owner>() + n * item);
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
    *owner.first.borrow_mut() = None; // break the cycles: plain drops free the rest
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_million_long_chain_is_retained_by_its_head() {
    #[derive(Trace)]
    struct Link {
        next: Option<Gc<Link>>,
    }
    collect();
    const N: usize = 1_000_000;
    let mut head = Gc::new(Link { next: None });
    for _ in 1..N {
        head = Gc::new(Link { next: Some(head) });
    }
    let link = 16 + std::mem::size_of::<Link>();
    assert_eq!(link, 24);
    assert_eq!(retained_size(&head), N * link);

    let graph = HeapGraph::capture();
    let doms = graph.dominators();
    let h = graph.find(ObjectId::of(&head)).unwrap();
    let (second, _) = graph.referents(h).next().unwrap();
    assert_eq!(doms.immediate_dominator(second), Some(h));
    assert_eq!(doms.retained(second), Some((N - 1) * link));
    assert_eq!(doms.top_level().collect::<Vec<_>>(), [h]);
}
