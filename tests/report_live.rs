//! The live report and the graph queries: exact counts, sizes, text, chains.
//! Every test runs on its own thread, with its own heap, so every number is
//! exact.

use std::cell::RefCell;
use std::collections::HashMap;

use rcycle::report::{HeapGraph, ObjectId};
use rcycle::{collect, live_report, why_alive, Gc, Trace};

#[derive(Trace)]
struct Iq {
    id: u64,
}

#[derive(Trace)]
struct Dispatcher {
    expected: RefCell<HashMap<u64, Gc<Iq>>>,
}

#[derive(Trace)]
struct Node {
    parent: RefCell<Option<Gc<Node>>>,
    children: RefCell<Vec<Gc<Node>>>,
}

fn node() -> Gc<Node> {
    Gc::new(Node {
        parent: RefCell::new(None),
        children: RefCell::new(Vec::new()),
    })
}

/// The memory one object takes: its size-class slot.
fn slot_of<T>() -> usize {
    let size = 16 + size_of::<T>().next_multiple_of(align_of::<T>().max(4));
    [
        16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
    ]
    .into_iter()
    .find(|&c| c >= size)
    .unwrap()
}

#[test]
fn report_table_in_guppy_layout() {
    collect();
    let words: Vec<Gc<u64>> = (0..3).map(Gc::new).collect();
    let names: Vec<Gc<String>> = (0..2)
        .map(|_| Gc::new(String::with_capacity(100)))
        .collect();
    let report = live_report();
    assert_eq!(report.count(), 5);
    // u64: 3 x 24 bytes; String: 2 x (40-byte slot + 100-byte buffer).
    assert_eq!(slot_of::<u64>(), 24);
    assert_eq!(slot_of::<String>(), 40);
    assert_eq!(report.size(), 3 * 24 + 2 * 140);
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Partition of a set of 5 objects. Total size = 352 bytes."
    );
    assert_eq!(
        lines[1],
        " Index  Count   %     Size   % Cumulative  % Type"
    );
    assert_eq!(
        lines[2],
        "     0      2  40      280  80       280  80 alloc::string::String"
    );
    assert_eq!(lines[3], "     1      3  60       72  20       352 100 u64");
    assert!(lines[4].starts_with("Resident memory: ") || lines[4].starts_with("Collector: "));
    assert!(text.ends_with("automatic collection on."), "{text}");
    drop((words, names));
}

#[test]
fn ten_rows_then_more_and_alternate_shows_all() {
    collect();
    // 12 distinct types.
    let keep = (
        Gc::new(1u8),
        Gc::new(1u16),
        Gc::new(1u32),
        Gc::new(1u64),
        Gc::new(1i8),
        Gc::new(1i16),
        Gc::new(1i32),
        Gc::new(1i64),
        Gc::new(1f32),
        Gc::new(1f64),
        Gc::new('x'),
        Gc::new(true),
    );
    let report = live_report();
    assert_eq!(report.rows().len(), 12);
    let short = report.to_string();
    assert!(
        short.contains("\n<2 more rows. Type e.g. '_.more' to view.>\n"),
        "{short}"
    );
    assert_eq!(short.lines().filter(|l| l.starts_with("     ")).count(), 10);
    let long = format!("{report:#}");
    assert!(!long.contains("more rows"));
    assert_eq!(long.lines().filter(|l| l.starts_with("    ")).count(), 12);
    drop(keep);
}

#[test]
fn garbage_shows_until_collected() {
    collect();
    let a = node();
    let b = node();
    *a.parent.borrow_mut() = Some(b.clone());
    *b.parent.borrow_mut() = Some(a.clone());
    drop((a, b));
    let row = |kind: &str| {
        live_report()
            .rows()
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.count)
    };
    assert_eq!(
        row("report_live::Node"),
        Some(2),
        "no collection before a report"
    );
    assert_eq!(collect(), 2);
    assert_eq!(row("report_live::Node"), None);
}

#[test]
fn count_objects_and_most_common_types() {
    collect();
    let iqs: Vec<Gc<Iq>> = (0..5).map(|id| Gc::new(Iq { id })).collect();
    let one = Gc::new(7u16);
    assert_eq!(rcycle::report::count::<Iq>(), 5);
    assert_eq!(rcycle::report::count::<u16>(), 1);
    assert_eq!(rcycle::report::count::<u128>(), 0);
    let found = rcycle::report::objects::<Iq>();
    assert_eq!(found.len(), 5);
    let mut ids: Vec<u64> = found.iter().map(|w| w.upgrade().unwrap().id).collect();
    ids.sort();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    assert_eq!(
        rcycle::report::most_common_types(2),
        [("report_live::Iq".to_string(), 5), ("u16".to_string(), 1)]
    );
    // A query keeps nothing alive and changes no count.
    assert_eq!(Gc::strong_count(&iqs[0]), 1);
    drop(iqs);
    assert!(found.iter().all(|w| w.upgrade().is_none()));
    drop(found);
    assert_eq!(rcycle::object_count(), 1);
    drop(one);
}

#[test]
fn referrers_referents_and_outside_holders() {
    collect();
    let dispatcher = Gc::new(Dispatcher {
        expected: RefCell::new(HashMap::new()),
    });
    for id in [3, 9] {
        dispatcher
            .expected
            .borrow_mut()
            .insert(id, Gc::new(Iq { id }));
    }
    let nine = dispatcher.expected.borrow()[&9].clone();
    let r = rcycle::report::referrers(&nine);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].label, ".expected[9]");
    assert_eq!(r[0].object.type_name, "report_live::Dispatcher");
    assert_eq!(r[0].object.id, ObjectId::of(&dispatcher));
    let mut labels: Vec<String> = rcycle::report::referents(&dispatcher)
        .into_iter()
        .map(|r| r.label)
        .collect();
    labels.sort();
    assert_eq!(labels, [".expected[3]", ".expected[9]"]);
    let holders = rcycle::report::outside_holders();
    let mut described: Vec<(&str, usize)> = holders
        .iter()
        .map(|h| (h.object.type_name, h.handles))
        .collect();
    // (Ties are in address order, which the allocator decides.)
    described.sort();
    assert_eq!(
        described,
        [("report_live::Dispatcher", 1), ("report_live::Iq", 1)],
        "the dispatcher and `nine` are held by this function"
    );
    assert_eq!(Gc::strong_count(&nine), 2, "queries change no count");
}

#[test]
fn why_alive_names_the_map_entry() {
    collect();
    let dispatcher = Gc::new(Dispatcher {
        expected: RefCell::new(HashMap::new()),
    });
    for id in 0..100 {
        dispatcher
            .expected
            .borrow_mut()
            .insert(id, Gc::new(Iq { id }));
    }
    let iq = dispatcher.expected.borrow()[&42].clone();
    let chain = why_alive(&iq).unwrap();
    assert_eq!(
        chain.to_string(),
        "<held outside> report_live::Dispatcher .expected[42] -> report_live::Iq"
    );
    assert_eq!(chain.links.len(), 2);
    assert_eq!(chain.links[0].object.id, ObjectId::of(&dispatcher));
    // With the dispatcher gone, only the handle passed in holds it.
    drop(dispatcher);
    assert!(why_alive(&iq).is_none());
}

#[test]
fn why_alive_through_a_million_node_chain() {
    const N: usize = if cfg!(miri) { 200 } else { 1_000_000 };
    collect();
    let head = node();
    let mut tail = head.clone();
    for _ in 1..N {
        let next = node();
        tail.children.borrow_mut().push(next.clone());
        tail = next;
    }
    let chain = why_alive(&tail).unwrap();
    assert_eq!(chain.links.len(), N);
    assert_eq!(chain.links[0].object.id, ObjectId::of(&head));
    assert!(chain.links[1..].iter().all(|l| l.label == ".children[0]"));
    drop((head, tail)); // an iterative drop of the chain, too
    assert_eq!(rcycle::object_count(), 0);
}

#[test]
fn garbage_is_not_alive_for_a_reason() {
    collect();
    let a = node();
    let b = node();
    *a.parent.borrow_mut() = Some(b.clone());
    *b.parent.borrow_mut() = Some(a.clone());
    drop(b);
    let w = Gc::downgrade(&a);
    drop(a);
    let a = w.upgrade().unwrap(); // garbage, brought back for the question
    assert!(
        why_alive(&a).is_none(),
        "only garbage (and the caller) holds it"
    );
    drop(a);
    assert_eq!(collect(), 2);
}

thread_local! {
    static REPORT_IN_DROP: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

struct Reporter;

// SAFETY: owns no `Gc`.
unsafe impl Trace for Reporter {
    fn trace(&self, _: &mut rcycle::Tracer<'_>) {}
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let report = live_report();
        let graph = HeapGraph::capture();
        REPORT_IN_DROP.with(|r| r.borrow_mut().push((report.count(), graph.len())));
    }
}

#[test]
fn reports_work_inside_drop_during_a_collection() {
    collect();
    #[derive(Trace)]
    struct Pair {
        other: RefCell<Option<Gc<Pair>>>,
        reporter: Reporter,
    }
    let a = Gc::new(Pair {
        other: RefCell::new(None),
        reporter: Reporter,
    });
    let b = Gc::new(Pair {
        other: RefCell::new(Some(a.clone())),
        reporter: Reporter,
    });
    *a.other.borrow_mut() = Some(b);
    let bystander = Gc::new(5u64);
    drop(a);
    assert_eq!(collect(), 2);
    // When the first member's `Reporter` drops, its own `other` field is
    // already gone, so the second member has no handle left (not listed);
    // the first member, whose value is being dropped, is still held by the
    // second (listed, as a dead box); and the bystander. When the second's
    // `Reporter` drops, only the bystander is left. Whichever member goes
    // first, that is (2, 1).
    let seen = REPORT_IN_DROP.with(|r| r.borrow().clone());
    assert_eq!(seen, [(2, 2), (1, 1)]);
    drop(bystander);
}

/// `referrers` and `referents` answer without a graph (one pass over the
/// heap, or the object alone): on random graphs with repeated edges, self
/// edges, map keys, weak handles, a mutably borrowed `RefCell` and a value
/// lent out by `get_mut`, they give exactly what the captured graph says.
#[test]
fn referrers_and_referents_agree_with_the_graph() {
    #[derive(Trace)]
    struct M {
        kids: RefCell<Vec<Gc<M>>>,
        by_key: RefCell<HashMap<u32, Gc<M>>>,
        #[trace(skip)]
        name: u32,
    }
    let n: usize = if cfg!(miri) { 12 } else { 60 };
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |m: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as usize
    };
    for _round in 0..3 {
        let nodes: Vec<Gc<M>> = (0..n)
            .map(|i| {
                Gc::new(M {
                    kids: RefCell::new(Vec::new()),
                    by_key: RefCell::new(HashMap::new()),
                    name: i as u32,
                })
            })
            .collect();
        for _ in 0..3 * n {
            let (a, b) = (next(n), next(n));
            if next(3) == 0 {
                nodes[a]
                    .by_key
                    .borrow_mut()
                    .insert(next(1000) as u32, nodes[b].clone());
            } else {
                nodes[a].kids.borrow_mut().push(nodes[b].clone());
            }
        }
        let mut lent = Gc::new(M {
            kids: RefCell::new(vec![nodes[0].clone()]),
            by_key: RefCell::new(HashMap::new()),
            name: 999,
        });
        let borrowed = nodes[1].kids.borrow_mut();
        let guard = Gc::get_mut(&mut lent).unwrap();
        let graph = HeapGraph::capture();
        for x in &nodes {
            let node = graph.find(ObjectId::of(x)).unwrap();
            let from_graph: Vec<(ObjectId, String, rcycle::report::ObjectInfo)> = graph
                .referrers(node)
                .map(|(m, l)| {
                    (
                        graph.objects()[m].id,
                        l.to_string(),
                        graph.objects()[m].clone(),
                    )
                })
                .collect();
            let direct: Vec<_> = rcycle::report::referrers(x)
                .into_iter()
                .map(|r| (r.object.id, r.label, r.object))
                .collect();
            assert_eq!(direct, from_graph, "referrers of {}", x.name);
            if x.name == 1 {
                continue; // its `RefCell` is borrowed: no edges to compare
            }
            let from_graph: Vec<_> = graph
                .referents(node)
                .map(|(m, l)| {
                    (
                        graph.objects()[m].id,
                        l.to_string(),
                        graph.objects()[m].clone(),
                    )
                })
                .collect();
            let direct: Vec<_> = rcycle::report::referents(x)
                .into_iter()
                .map(|r| (r.object.id, r.label, r.object))
                .collect();
            assert_eq!(direct, from_graph, "referents of {}", x.name);
        }
        drop((guard, borrowed, graph));
        for x in &nodes {
            x.kids.borrow_mut().clear();
            x.by_key.borrow_mut().clear();
        }
    }
}

/// `why_alive` searches backwards one pass per level, without a graph: on
/// random graphs (some objects held from the stack, some only from other
/// objects, some only from garbage, a mutably borrowed `RefCell`), it finds
/// exactly the chain the captured graph's forward search finds.
#[test]
fn why_alive_agrees_with_the_graph() {
    #[derive(Trace)]
    struct W {
        kids: RefCell<Vec<Gc<W>>>,
        by_key: RefCell<HashMap<u32, Gc<W>>>,
    }
    let n: usize = if cfg!(miri) { 10 } else { 80 };
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |m: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as usize
    };
    let mut found = 0;
    let mut none = 0;
    for round in 0..4 {
        let nodes: Vec<Gc<W>> = (0..n)
            .map(|_| {
                Gc::new(W {
                    kids: RefCell::new(Vec::new()),
                    by_key: RefCell::new(HashMap::new()),
                })
            })
            .collect();
        // Sparse: chains of several links.
        for _ in 0..(n + n / 2) {
            let (a, b) = (next(n), next(n));
            if next(4) == 0 {
                nodes[a]
                    .by_key
                    .borrow_mut()
                    .insert(next(100) as u32, nodes[b].clone());
            } else {
                nodes[a].kids.borrow_mut().push(nodes[b].clone());
            }
        }
        // Keep a few on the stack; the rest are held by the graph only.
        let held: Vec<Gc<W>> = (0..n / 10 + round)
            .map(|_| nodes[next(n)].clone())
            .collect();
        let weak: Vec<_> = nodes.iter().map(Gc::downgrade).collect();
        drop(nodes);
        let borrowed = held.first().map(|h| h.by_key.borrow_mut());
        let graph = HeapGraph::capture();
        for w in &weak {
            let Some(x) = w.upgrade() else { continue };
            let node = graph.find(ObjectId::of(&x)).unwrap();
            // The graph's chain (captured before `x` was made: no handle of
            // the caller's to ignore there).
            let expected: Option<Vec<(ObjectId, String)>> =
                graph.shortest_chain(node, 0).map(|c| {
                    c.into_iter()
                        .map(|(m, l)| (graph.objects()[m].id, l.to_string()))
                        .collect()
                });
            let got: Option<Vec<(ObjectId, String)>> = why_alive(&x).map(|c| {
                c.links
                    .into_iter()
                    .map(|r| (r.object.id, r.label))
                    .collect()
            });
            assert_eq!(got, expected);
            if got.is_some() {
                found += 1;
            } else {
                none += 1;
            }
        }
        drop((borrowed, graph));
        drop(held);
        collect();
    }
    assert!(
        found > 0 && none > 0,
        "both cases met: {found} chains, {none} none"
    );
}
