//! The leak hunt, replayed with rcycle's real API.
//!
//! A small XMPP-like daemon: a `Dispatcher` sends `Iq` requests and keeps each
//! one in `expected` (keyed by id) until its answer arrives; every incoming
//! stanza is parsed into a tree of `Node`s whose children point back at their
//! parent. Memory grows, for two different reasons:
//!
//! 1. garbage cycles: every parsed tree is a parent <-> child cycle, which an
//!    `Rc` would leak and `collect()` frees;
//! 2. ballooning: `expected` is never cleaned, so every `Iq` ever sent stays
//!    reachable — no collector can free it; the report says who holds it.
//!
//! Then both are fixed (a `WeakGc` parent pointer; removing answered requests)
//! and the report after the fix shows the difference.

use std::cell::RefCell;
use std::collections::HashMap;

use rcycle::report::dot::{DotOptions, Summary};
use rcycle::report::ObjectId;
use rcycle::{collect, collect_dry_run, live_report, why_alive, Gc, Snapshot, Trace, WeakGc};

/// An outgoing request, remembered until its answer arrives.
#[derive(Trace)]
struct Iq {
    id: u64,
    body: String,
}

/// A parsed XML element. `parent` is strong: the leak.
#[derive(Trace)]
struct Node {
    tag: String,
    parent: RefCell<Option<Gc<Node>>>,
    children: RefCell<Vec<Gc<Node>>>,
}

/// The same element after the fix: the back-pointer is weak.
#[derive(Trace)]
struct FixedNode {
    tag: String,
    parent: RefCell<WeakGc<FixedNode>>,
    children: RefCell<Vec<Gc<FixedNode>>>,
}

#[derive(Trace)]
struct Dispatcher {
    next_id: RefCell<u64>,
    expected: RefCell<HashMap<u64, Gc<Iq>>>,
}

impl Dispatcher {
    fn new() -> Gc<Dispatcher> {
        Gc::new(Dispatcher {
            next_id: RefCell::new(0),
            expected: RefCell::new(HashMap::new()),
        })
    }

    fn send(&self) -> u64 {
        let id = {
            let mut next = self.next_id.borrow_mut();
            *next += 1;
            *next
        };
        let iq = Gc::new(Iq {
            id,
            body: format!("<iq type='get' id='{id}'><ping/></iq>"),
        });
        self.expected.borrow_mut().insert(id, iq);
        id
    }

    /// The buggy handler: the answer is matched, the request never removed.
    fn answer_leaky(&self, id: u64) -> bool {
        self.expected
            .borrow()
            .get(&id)
            .is_some_and(|iq| iq.id == id)
    }

    /// The fixed handler.
    fn answer(&self, id: u64) -> bool {
        self.expected.borrow_mut().remove(&id).is_some()
    }
}

/// Parses a stanza into a root with `width` children (a stand-in for XML).
fn parse(width: usize) -> Gc<Node> {
    let root = Gc::new(Node {
        tag: "iq".into(),
        parent: RefCell::new(None),
        children: RefCell::new(Vec::new()),
    });
    for _ in 0..width {
        let child = Gc::new(Node {
            tag: "item".into(),
            parent: RefCell::new(Some(root.clone())),
            children: RefCell::new(Vec::new()),
        });
        root.children.borrow_mut().push(child);
    }
    root
}

fn parse_fixed(width: usize) -> Gc<FixedNode> {
    let root = Gc::new(FixedNode {
        tag: "iq".into(),
        parent: RefCell::new(WeakGc::new()),
        children: RefCell::new(Vec::new()),
    });
    for _ in 0..width {
        let child = Gc::new(FixedNode {
            tag: "item".into(),
            parent: RefCell::new(Gc::downgrade(&root)),
            children: RefCell::new(Vec::new()),
        });
        root.children.borrow_mut().push(child);
    }
    root
}

const STANZAS: usize = 2000;
const WIDTH: usize = 7;

fn main() {
    // Collect by hand, so that every number below is exact.
    rcycle::disable();

    let start = Snapshot::take();
    println!("== The daemon runs: {STANZAS} requests sent, {STANZAS} answers parsed");
    let dispatcher = Dispatcher::new();
    let mut answered = 0;
    for _ in 0..STANZAS {
        let id = dispatcher.send();
        let stanza = parse(WIDTH);
        answered += usize::from(dispatcher.answer_leaky(id) && stanza.tag == "iq");
    }
    println!("answered: {answered}");
    println!();
    println!("{}", live_report());
    println!();
    println!("== What grew since the daemon started (objgraph's show_growth)");
    print!("{}", start.growth());

    println!();
    println!("== What would a collection free? (a dry run frees nothing)");
    let dry = collect_dry_run();
    // The report ends with its suggestions (which field to make a `WeakGc`).
    print!("{}", dry.garbage);
    let suggestion = dry.garbage.suggestions().next().expect("a cycle kind");
    assert!(suggestion
        .to_string()
        .ends_with("consider WeakGc for the field 'parent'"));

    println!();
    println!("== collect() frees the garbage cycles");
    let freed = collect();
    println!("collect() freed {freed} objects");
    assert_eq!(freed, STANZAS * (1 + WIDTH));
    println!();
    let after = live_report();
    println!("{after}");
    let iqs = after
        .rows()
        .iter()
        .find(|r| r.kind.ends_with("::Iq"))
        .unwrap();
    assert_eq!(iqs.count, STANZAS, "every Iq ever sent is still alive");

    println!();
    println!("== What is leaking? (Eclipse MAT's Leak Suspects: no hint needed)");
    let suspects = rcycle::report::leak_suspects();
    print!("{suspects}");
    let first = &suspects.suspects()[0];
    assert!(first.object.type_name.ends_with("::Dispatcher"));
    let accumulated = &first.accumulated[0];
    assert!(accumulated.type_name.ends_with("::Iq"));
    assert_eq!(
        (accumulated.path.as_str(), accumulated.count),
        (".expected[*]", STANZAS)
    );

    println!();
    println!("== Why are the Iq objects alive?");
    let some_iq = rcycle::report::objects::<Iq>()
        .into_iter()
        .filter_map(|w| w.upgrade())
        .min_by_key(|iq| iq.id)
        .unwrap();
    let chain = why_alive(&some_iq).expect("held by something");
    println!("{chain}");
    assert!(chain.to_string().contains(".expected[1] -> leak_hunt::Iq"));
    let holders = rcycle::report::outside_holders();
    println!(
        "outside holders: {}",
        holders
            .iter()
            .map(|h| format!("{} ({} handle)", h.object.type_name, h.handles))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let dot = rcycle::report::dot::backrefs(
        &[ObjectId::of(&some_iq)],
        &DotOptions {
            max_depth: 2,
            // Which Iq a box is, as objgraph shows `Iq(id=1)`.
            summaries: vec![Summary::of(|iq: &Iq| format!("Iq(id={})", iq.id))],
            ..DotOptions::default()
        },
    );
    let dot_path = std::env::temp_dir().join("leak_hunt_iq.dot");
    std::fs::write(&dot_path, &dot).expect("write the DOT file");
    println!(
        "back references of Iq #1, written to {} (`dot -Tpng` draws it):",
        dot_path.display()
    );
    print!("{dot}");
    println!(
        "retained size of the dispatcher: {} bytes",
        rcycle::report::retained_size(&dispatcher)
    );
    let snapshot_path = std::env::temp_dir().join("leak_hunt.heapsnapshot");
    rcycle::report::devtools::write_heap_snapshot(&snapshot_path).expect("write the heap snapshot");
    println!(
        "heap snapshot for Chrome DevTools (Memory tab, Load): {}",
        snapshot_path.display()
    );
    drop(some_iq);

    println!();
    println!("== The fix: `parent: WeakGc<Node>`, and answered requests are removed");
    drop(dispatcher);
    assert_eq!(collect(), 0, "the dispatcher and its Iqs were not a cycle");
    let dispatcher = Dispatcher::new();
    let mut answered = 0;
    for _ in 0..STANZAS {
        let id = dispatcher.send();
        let stanza = parse_fixed(WIDTH);
        let first = stanza.children.borrow()[0].clone();
        let parent_ok = first.parent.borrow().upgrade().is_some();
        answered += usize::from(dispatcher.answer(id) && parent_ok);
    }
    println!("answered: {answered}");
    let freed = collect();
    println!("collect() freed {freed} objects (nothing was left to collect)");
    println!();
    let fixed = live_report();
    println!("{fixed}");
    assert_eq!(freed, 0);
    assert_eq!(fixed.count(), 1, "only the dispatcher is left");
    drop(dispatcher);
    rcycle::enable();
}
