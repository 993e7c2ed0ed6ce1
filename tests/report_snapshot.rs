//! Snapshots and growth (objgraph's `show_growth`, guppy's `setrelheap`,
//! tracemalloc's `compare_to`): exact counts, sizes and text per thread.

use rcycle::{collect, live_report, Gc, Snapshot, Trace, WeakGc};

#[derive(Trace)]
struct Iq {
    id: u64,
}

#[derive(Trace)]
struct Node {
    value: u64,
    next: Option<Gc<Node>>,
}

const IQ: &str = "report_snapshot::Iq";
const NODE: &str = "report_snapshot::Node";

/// Bytes one object takes: 16-byte header + value, in a size-class slot
/// (24 and 32 are both classes).
const IQ_SIZE: usize = 24;
const NODE_SIZE: usize = 32;

#[test]
fn the_sizes_are_what_the_test_assumes() {
    assert_eq!(16 + std::mem::size_of::<Iq>(), IQ_SIZE);
    assert_eq!(16 + std::mem::size_of::<Node>(), NODE_SIZE);
}

/// The story: 2439 `Iq`s arrive and are never cleaned; 10 `Node`s go.
fn story() -> (Snapshot, Vec<Gc<Iq>>, Vec<Gc<Node>>) {
    collect();
    let mut nodes: Vec<Gc<Node>> = (0..15)
        .map(|i| {
            Gc::new(Node {
                value: i,
                next: None,
            })
        })
        .collect();
    let before = Snapshot::take();
    let iqs: Vec<Gc<Iq>> = (0..2439).map(|id| Gc::new(Iq { id })).collect();
    nodes.truncate(5);
    (before, iqs, nodes)
}

#[test]
fn growth_shows_exactly_the_types_that_grew() {
    let (before, iqs, _nodes) = story();
    let growth = before.growth();
    assert_eq!(growth.rows().len(), 1, "{growth:#}");
    let row = &growth.rows()[0];
    assert_eq!(row.kind, IQ);
    assert_eq!((row.count, row.delta), (2439, 2439));
    assert_eq!(
        (row.size, row.size_delta),
        (2439 * IQ_SIZE, 2439 * IQ_SIZE as isize)
    );
    // objgraph: name padded to the longest, `%9d %+9d`.
    assert_eq!(
        growth.to_string(),
        "report_snapshot::Iq     2439     +2439\n"
    );
    assert_eq!(iqs.iter().map(|iq| iq.id).sum::<u64>(), 2438 * 2439 / 2);
}

#[test]
fn changes_show_shrinking_types_too() {
    let (before, _iqs, nodes) = story();
    assert_eq!(nodes.len(), 5);
    let changes = before.changes();
    let rows = changes.rows();
    assert_eq!(rows.len(), 2, "{changes:#}");
    assert_eq!(
        (rows[0].kind.as_str(), rows[0].count, rows[0].delta),
        (IQ, 2439, 2439)
    );
    assert_eq!(
        (rows[1].kind.as_str(), rows[1].count, rows[1].delta),
        (NODE, 5, -10)
    );
    assert_eq!(
        (rows[1].size, rows[1].size_delta),
        (5 * NODE_SIZE, -10 * NODE_SIZE as isize)
    );
    assert_eq!(
        changes.to_string(),
        "report_snapshot::Iq       2439     +2439\n\
         report_snapshot::Node        5       -10\n"
    );
}

#[test]
fn a_type_that_is_gone_shows_a_count_of_zero() {
    collect();
    let nodes: Vec<Gc<Node>> = (0..10)
        .map(|i| {
            Gc::new(Node {
                value: i,
                next: None,
            })
        })
        .collect();
    let before = Snapshot::take();
    drop(nodes);
    let changes = before.changes();
    assert_eq!(changes.rows().len(), 1);
    let row = &changes.rows()[0];
    assert_eq!((row.kind.as_str(), row.count, row.delta), (NODE, 0, -10));
    assert_eq!((row.size, row.size_delta), (0, -10 * NODE_SIZE as isize));
    assert!(before.growth().is_empty());
    assert_eq!(before.growth().to_string(), "");
}

#[test]
fn the_new_objects_report_counts_exactly_the_new_ones() {
    let (before, iqs, nodes) = story();
    let report = before.new_objects_report();
    assert_eq!(report.count(), 2439);
    assert_eq!(report.size(), 2439 * IQ_SIZE);
    assert_eq!(report.rows().len(), 1);
    let row = &report.rows()[0];
    assert_eq!(
        (row.kind.as_str(), row.count, row.size, row.retained),
        (IQ, 2439, 2439 * IQ_SIZE, None)
    );
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "Partition of a set of 2439 objects. Total size = {} bytes.",
            2439 * IQ_SIZE
        )
    );
    assert_eq!(
        lines[1],
        " Index  Count   %     Size   % Cumulative  % Type"
    );
    assert_eq!(
        lines[2],
        "     0   2439 100    58536 100     58536 100 report_snapshot::Iq"
    );
    assert!(iqs.iter().all(|iq| before.is_new(iq)));
    assert!(nodes.iter().all(|n| !before.is_new(n)));

    // A new object pointing at an old one: only the new one is reported.
    let reply = Gc::new(Reply {
        to: nodes[0].clone(),
    });
    let report = before.new_objects_report();
    assert_eq!(report.count(), 2440);
    let row = report
        .rows()
        .iter()
        .find(|r| r.kind.ends_with("Reply"))
        .unwrap();
    assert_eq!(row.count, 1);
    assert!(report.rows().iter().all(|r| r.kind != NODE));
    assert!(before.is_new(&reply));
}

#[derive(Trace)]
struct Reply {
    to: Gc<Node>,
}

/// Same size class as `Node` (32 bytes), another type.
#[derive(Trace)]
struct Pair {
    a: u64,
    b: u64,
}

#[test]
fn memory_reused_by_another_type_counts_as_new() {
    assert_eq!(16 + std::mem::size_of::<Pair>(), NODE_SIZE);
    let (before, _iqs, _nodes) = story();
    // The 10 freed `Node` slots are free for these to take.
    let pairs: Vec<Gc<Pair>> = (0..10).map(|i| Gc::new(Pair { a: i, b: i })).collect();
    assert!(pairs.iter().all(|p| before.is_new(p) && p.a == p.b));
    let report = before.new_objects_report();
    assert_eq!(report.count(), 2439 + 10);
    let row = report
        .rows()
        .iter()
        .find(|r| r.kind.ends_with("Pair"))
        .unwrap();
    assert_eq!((row.count, row.size), (10, 10 * NODE_SIZE));
}

#[test]
fn a_snapshot_of_everything_agrees_with_live_report() {
    collect();
    let strings: Vec<Gc<String>> = (0..7).map(|i| Gc::new("x".repeat(i * 10))).collect();
    let nested = Gc::new(vec![Gc::new(1u8), Gc::new(2u8)]);
    let big = Gc::new([0u64; 200]); // a large object: its own allocation
    let snap = Snapshot::take();
    let live = live_report();
    assert_eq!(snap.rows(), live.rows());
    assert_eq!(snap.count(), live.count());
    assert_eq!(snap.size(), live.size());
    assert!(snap.changes().is_empty());
    drop((strings, nested, big));
}

#[test]
fn an_empty_snapshot_makes_the_new_objects_report_the_live_report() {
    collect();
    let empty = Snapshot::take();
    assert_eq!((empty.count(), empty.size()), (0, 0));
    let nodes: Vec<Gc<Node>> = (0..3)
        .map(|i| {
            Gc::new(Node {
                value: i,
                next: None,
            })
        })
        .collect();
    let names = Gc::new(String::from("names"));
    assert_eq!(empty.new_objects_report().rows(), live_report().rows());
    drop((nodes, names));
}

#[test]
fn a_snapshot_keeps_nothing_alive() {
    collect();
    let node = Gc::new(Node {
        value: 1,
        next: None,
    });
    let weak: WeakGc<Node> = Gc::downgrade(&node);
    let objects = rcycle::object_count();
    let snap = Snapshot::take();
    drop(node);
    assert!(weak.upgrade().is_none());
    drop(weak);
    assert_eq!(rcycle::object_count(), objects - 1);
    assert_eq!(snap.count(), 1);
    assert_eq!(snap.changes().rows()[0].delta, -1);
}

#[test]
fn display_shows_ten_rows_then_how_many_more() {
    #[derive(Trace)]
    struct T<const N: usize>(u8);
    collect();
    let before = Snapshot::take();
    let keep = (
        (Gc::new(T::<0>(0)), Gc::new(T::<1>(0)), Gc::new(T::<2>(0))),
        (Gc::new(T::<3>(0)), Gc::new(T::<4>(0)), Gc::new(T::<5>(0))),
        (Gc::new(T::<6>(0)), Gc::new(T::<7>(0)), Gc::new(T::<8>(0))),
        (Gc::new(T::<9>(0)), Gc::new(T::<10>(0)), Gc::new(T::<11>(0))),
    );
    let growth = before.growth();
    assert_eq!(growth.rows().len(), 12);
    let text = growth.to_string();
    assert_eq!(text.lines().count(), 11);
    assert!(text.ends_with("\n<2 more rows>\n"));
    assert_eq!(format!("{growth:#}").lines().count(), 12);
    // Equal deltas: by name.
    let names: Vec<&str> = growth.rows().iter().map(|r| r.kind.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    drop(keep);
}

#[test]
fn memory_reused_by_the_same_type_counts_as_new() {
    collect();
    let old: Vec<Gc<u64>> = (0..100).map(Gc::new).collect();
    let kept = Gc::new(7u64);
    let old_addrs: std::collections::HashSet<usize> = old
        .iter()
        .map(|g| rcycle::report::ObjectId::of(g).addr())
        .collect();
    let before = Snapshot::take();
    drop(old);
    let new: Vec<Gc<u64>> = (1000..1100).map(Gc::new).collect();
    // The new objects took the freed ones' memory (the case identity by
    // address got wrong).
    assert!(new
        .iter()
        .all(|g| old_addrs.contains(&rcycle::report::ObjectId::of(g).addr())));
    assert!(new.iter().all(|g| before.is_new(g)));
    assert!(!before.is_new(&kept));
    let report = before.new_objects_report();
    assert_eq!(report.count(), 100);
    assert_eq!(report.rows()[0].kind, "u64");
    // Per type, nothing changed.
    assert!(before.changes().is_empty());

    // A later snapshot knows the new ones, and only them, as its own.
    let after = Snapshot::take();
    assert!(new.iter().all(|g| !after.is_new(g)));
    assert_eq!(after.new_objects_report().count(), 0);
    assert_eq!(before.new_objects_report().count(), 100);
    let newer = Gc::new(1u64);
    assert!(after.is_new(&newer) && before.is_new(&newer));
}

#[derive(Trace)]
struct Ring {
    next: std::cell::RefCell<Option<Gc<Ring>>>,
}

/// `n` garbage cycles of one `Ring` each.
fn garbage_rings(n: usize) {
    for _ in 0..n {
        let r = Gc::new(Ring {
            next: std::cell::RefCell::new(None),
        });
        *r.next.borrow_mut() = Some(r.clone());
    }
}

#[test]
fn collect_and_take_leaves_garbage_out_of_every_comparison_like_objgraph() {
    let ring = std::any::type_name::<Ring>();
    // Garbage before the snapshot: collected, so not recorded.
    rcycle::disable();
    garbage_rings(2);
    let collecting = Snapshot::collect_and_take();
    assert!(collecting.rows().iter().all(|r| r.kind != ring));
    let plain = Snapshot::take();
    garbage_rings(5);
    let kept = Gc::new(Iq { id: 1 });

    // Without collecting, the 5 garbage rings are growth.
    let text = plain.growth().to_string();
    assert!(
        text.contains(&format!("{ring}        5        +5\n")),
        "{text}"
    );
    assert_eq!(plain.new_objects_report().count(), 6);
    // The collecting snapshot collects first: only the Iq grew. The
    // collection did free the rings: the plain snapshot sees them go too.
    assert_eq!(
        collecting.growth().to_string(),
        format!("{IQ}        1        +1\n")
    );
    assert!(plain.growth().rows().iter().all(|r| r.kind != ring));
    garbage_rings(3);
    assert_eq!(
        collecting.changes().to_string(),
        format!("{IQ}        1        +1\n")
    );
    garbage_rings(4);
    let fresh = collecting.new_objects_report();
    assert_eq!((fresh.count(), fresh.rows()[0].kind.as_str()), (1, IQ));
    assert_eq!(rcycle::object_count(), live_report().count());
    rcycle::enable();
    drop(kept);
}

/// `compare` diffs two stored snapshots (tracemalloc's `compare_to`): what
/// changed between them, whatever happened after the newer one.
#[test]
fn compare_diffs_two_stored_snapshots() {
    let first = rcycle::Snapshot::take();
    let grown: Vec<rcycle::Gc<u16>> = (0..5).map(rcycle::Gc::new).collect();
    let gone = rcycle::Gc::new(7i64);
    let second = rcycle::Snapshot::take();
    drop(grown); // after the second snapshot: not part of the comparison
    drop(gone);
    let third = rcycle::Snapshot::take();
    let diff = second.compare(&first);
    let rows: Vec<_> = diff
        .rows()
        .iter()
        .map(|r| (r.kind.as_str(), r.count, r.delta, r.size_delta))
        .collect();
    assert_eq!(rows, [("u16", 5, 5, 120), ("i64", 1, 1, 24)]);
    let back = third.compare(&second);
    let rows: Vec<_> = back
        .rows()
        .iter()
        .map(|r| (r.kind.as_str(), r.count, r.delta))
        .collect();
    assert_eq!(rows, [("u16", 0, -5), ("i64", 0, -1)]);
    assert!(
        first.compare(&third).rows().is_empty(),
        "nothing left of either"
    );
}

/// The new objects' holders, clustered: a cache that keeps every entry.
#[test]
fn new_objects_are_grouped_by_who_holds_them() {
    use rcycle::{Gc, Trace};
    use std::cell::RefCell;
    #[derive(Trace)]
    struct Cache {
        entries: RefCell<Vec<Gc<String>>>,
        by_name: RefCell<std::collections::BTreeMap<String, Gc<u32>>>,
    }
    let cache = Gc::new(Cache {
        entries: RefCell::new(Vec::new()),
        by_name: RefCell::new(Default::default()),
    });
    let before = rcycle::Snapshot::take();
    for i in 0..4u32 {
        cache
            .entries
            .borrow_mut()
            .push(Gc::new(format!("entry {i}")));
        cache
            .by_name
            .borrow_mut()
            .insert(format!("k{i}"), Gc::new(i));
    }
    let held_outside = Gc::new(1u8);
    let groups: Vec<_> = before
        .new_objects_held_by()
        .into_iter()
        .map(|g| (g.holder_type, g.path, g.type_name, g.count))
        .collect();
    assert_eq!(
        groups,
        [
            (
                "report_snapshot::new_objects_are_grouped_by_who_holds_them::Cache",
                ".entries[*]".to_string(),
                "alloc::string::String",
                4
            ),
            (
                "report_snapshot::new_objects_are_grouped_by_who_holds_them::Cache",
                ".by_name[*]".to_string(),
                "u32",
                4
            ),
            ("<held outside>", String::new(), "u8", 1),
        ]
    );
    drop(held_outside);
}
