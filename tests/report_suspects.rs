//! `leak_suspects()`: accumulation points of the dominator tree, their
//! chains, and what they accumulate, grouped by folded field path.

use std::cell::RefCell;
use std::collections::HashMap;

use rcycle::report::{leak_suspects, leak_suspects_above};
use rcycle::{Gc, Trace};

#[derive(Trace)]
struct Iq {
    id: u64,
}

#[derive(Trace)]
struct Dispatcher {
    expected: RefCell<HashMap<u64, Gc<Iq>>>,
}

#[derive(Trace)]
struct App {
    registry: Gc<Registry>,
}

#[derive(Trace)]
struct Registry {
    items: RefCell<Vec<Gc<Wrapper>>>,
}

#[derive(Trace)]
struct Wrapper {
    inner: Gc<Iq>,
}

/// The README's story: a dispatcher whose map keeps every request.
#[test]
fn the_dispatchers_map_is_the_first_suspect() {
    rcycle::disable();
    let d = Gc::new(Dispatcher {
        expected: RefCell::new(HashMap::new()),
    });
    for id in 0..100 {
        d.expected.borrow_mut().insert(id, Gc::new(Iq { id }));
    }
    let small = Gc::new(7u8);
    let report = leak_suspects();
    let text = report.to_string();
    print!("{text}");
    let s = &report.suspects()[0];
    assert_eq!(
        report.suspects().len(),
        1,
        "the u8 retains 24 bytes: no suspect"
    );
    assert_eq!(s.object.type_name, "report_suspects::Dispatcher");
    assert_eq!(s.accumulated.len(), 1);
    let g = &s.accumulated[0];
    assert_eq!(
        (g.holder_type, g.path.as_str(), g.type_name, g.count, g.size),
        (
            "report_suspects::Dispatcher",
            ".expected[*]",
            "report_suspects::Iq",
            100,
            100 * 24
        )
    );
    let map_bytes = s.retained - s.object.size - 100 * 24;
    assert_eq!(
        map_bytes, 0,
        "the map's buffer is counted in the dispatcher's own size"
    );
    assert_eq!(report.total_size, s.retained + 24);
    let expected = format!(
        "Leak suspects: objects retaining at least 10% of the {total} bytes reachable from outside\n\
         \n\
         1. report_suspects::Dispatcher retains {retained} bytes ({share}% of the heap)\n   \
         held: <held outside> report_suspects::Dispatcher\n   \
         accumulates: 100 report_suspects::Iq (2400 bytes, {iq_share}% of the heap) through report_suspects::Dispatcher.expected[*]\n",
        total = report.total_size,
        retained = s.retained,
        share = pct(s.retained, report.total_size),
        iq_share = pct(2400, report.total_size),
    );
    assert_eq!(text, expected);
    assert!(s.dot().contains("Dispatcher"));
    drop((d, small));
    rcycle::enable();
}

/// One decimal, trailing `.0` dropped, as the report writes it.
fn pct(part: usize, total: usize) -> String {
    let p = (part as f64 / total as f64 * 1000.0).round() / 10.0;
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

/// The size concentrates in one child (the registry holds 98% of what the
/// app retains): the search goes down to it, where it spreads over many
/// wrappers; each wrapper is reached through `.items[*]` and retains its Iq.
#[test]
fn the_search_goes_down_to_where_the_size_spreads() {
    rcycle::disable();
    let registry = Gc::new(Registry {
        items: RefCell::new(Vec::new()),
    });
    for id in 0..50 {
        registry.items.borrow_mut().push(Gc::new(Wrapper {
            inner: Gc::new(Iq { id }),
        }));
    }
    let app = Gc::new(App { registry });
    let report = leak_suspects();
    assert_eq!(report.suspects().len(), 1);
    let s = &report.suspects()[0];
    assert_eq!(s.object.type_name, "report_suspects::Registry");
    assert_eq!(
        s.chain.to_string(),
        "<held outside> report_suspects::App .registry -> report_suspects::Registry"
    );
    let g = &s.accumulated[..];
    assert_eq!(g.len(), 1);
    assert_eq!(
        (g[0].path.as_str(), g[0].type_name, g[0].count, g[0].size),
        (".items[*]", "report_suspects::Wrapper", 50, 50 * (24 + 24))
    );
    assert_eq!(app.registry.items.borrow()[0].inner.id, 0);
    drop(app);
    rcycle::enable();
}

/// Two leaks of different sizes: both suspects, the bigger first; a share
/// of 0 makes every holder a suspect, one above 1 none.
#[test]
fn suspects_come_largest_first_and_obey_the_share() {
    rcycle::disable();
    let big = Gc::new(Dispatcher {
        expected: RefCell::new((0..60).map(|id| (id, Gc::new(Iq { id }))).collect()),
    });
    let small = Gc::new(Dispatcher {
        expected: RefCell::new((0..40).map(|id| (id, Gc::new(Iq { id }))).collect()),
    });
    let report = leak_suspects();
    let ids: Vec<_> = report.suspects().iter().map(|s| s.object.id).collect();
    assert_eq!(
        ids,
        [
            rcycle::report::ObjectId::of(&big),
            rcycle::report::ObjectId::of(&small)
        ]
    );
    assert_eq!(report.suspects()[0].accumulated[0].count, 60);
    assert_eq!(report.suspects()[1].accumulated[0].count, 40);
    let tiny = Gc::new(1u16);
    assert_eq!(leak_suspects_above(0.0).suspects().len(), 3);
    assert!(leak_suspects_above(1.01).suspects().is_empty());
    drop((big, small, tiny));
    rcycle::enable();
}

/// Nothing held: no suspect, and the report says so.
#[test]
fn an_empty_heap_has_no_suspect() {
    let report = leak_suspects();
    assert!(report.suspects().is_empty());
    assert_eq!(
        report.to_string(),
        "Leak suspects: objects retaining at least 10% of the 0 bytes reachable from outside\n\nNo suspect.\n"
    );
}

#[derive(Trace)]
struct ListNode {
    next: Option<Gc<ListNode>>,
}

/// A long list of one type is reported at its head (the size never
/// spreads: each node retains all the nodes after it).
#[test]
fn a_list_is_reported_at_its_head() {
    let mut head = None;
    for _ in 0..1000 {
        head = Some(Gc::new(ListNode { next: head }));
    }
    let head = head.unwrap();
    let report = leak_suspects();
    assert_eq!(report.suspects().len(), 1);
    let s = &report.suspects()[0];
    assert_eq!(s.object.id, rcycle::report::ObjectId::of(&head));
    assert_eq!(s.retained, 1000 * 24);
    let g = &s.accumulated[..];
    assert_eq!(
        (g.len(), g[0].path.as_str(), g[0].count, g[0].size),
        (1, ".next", 1, 999 * 24)
    );
}
