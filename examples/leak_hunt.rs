//! The leak hunt, replayed: a small XMPP-like dispatcher parses stanzas into
//! trees of `Node`s whose children point back at their parent. With `Rc`
//! every tree would leak; with `Gc`, `collect()` finds and frees the garbage
//! cycles. Then the fix: make `parent` a `WeakGc`, and nothing is left for the
//! collector to do.
//!
//! (The leak reporter — `live_report()`, `why_alive` — is the next step of the
//! roadmap; this example will grow with it.)

use std::cell::RefCell;

use rcycle::{collect, object_count, Gc, Trace, WeakGc};

/// A parsed XML element whose children point back at it: a strong cycle.
#[derive(Trace)]
struct Node {
    name: String,
    parent: RefCell<Option<Gc<Node>>>,
    children: RefCell<Vec<Gc<Node>>>,
}

/// The same element after the fix: the back-pointer is weak.
#[derive(Trace)]
struct FixedNode {
    name: String,
    parent: RefCell<WeakGc<FixedNode>>,
    children: RefCell<Vec<Gc<FixedNode>>>,
}

/// Parses a stanza into a root with `width` children (a stand-in for XML).
fn parse(id: usize, width: usize) -> Gc<Node> {
    let root = Gc::new(Node {
        name: format!("iq-{id}"),
        parent: RefCell::new(None),
        children: RefCell::new(Vec::new()),
    });
    for i in 0..width {
        let child = Gc::new(Node {
            name: format!("item-{i}"),
            parent: RefCell::new(Some(root.clone())),
            children: RefCell::new(Vec::new()),
        });
        root.children.borrow_mut().push(child);
    }
    root
}

fn parse_fixed(id: usize, width: usize) -> Gc<FixedNode> {
    let root = Gc::new(FixedNode {
        name: format!("iq-{id}"),
        parent: RefCell::new(WeakGc::new()),
        children: RefCell::new(Vec::new()),
    });
    for i in 0..width {
        let child = Gc::new(FixedNode {
            name: format!("item-{i}"),
            parent: RefCell::new(Gc::downgrade(&root)),
            children: RefCell::new(Vec::new()),
        });
        root.children.borrow_mut().push(child);
    }
    root
}

fn main() {
    const STANZAS: usize = 1000;
    const WIDTH: usize = 7;
    rcycle::disable(); // collect by hand, so the numbers below are exact

    println!("== Handling {STANZAS} stanzas, each parsed into 1 + {WIDTH} nodes");
    let mut handled = 0;
    for id in 0..STANZAS {
        let stanza = parse(id, WIDTH);
        handled += stanza.children.borrow().len() + stanza.name.len().min(1);
        // The handler is done with the stanza; with `Rc` it would leak here.
    }
    println!("nodes handled:              {handled}");
    println!("objects alive after work:   {}", object_count());
    let freed = collect();
    println!("collect() freed:            {freed}");
    println!("objects alive after collect: {}", object_count());
    assert_eq!(freed, STANZAS * (WIDTH + 1));
    assert_eq!(object_count(), 0);

    println!();
    println!("== The fix: `parent: WeakGc<Node>` — trees without cycles");
    let mut names = 0;
    for id in 0..STANZAS {
        let stanza = parse_fixed(id, WIDTH);
        let first = stanza.children.borrow()[0].clone();
        let parent = first.parent.borrow().upgrade().expect("parent is alive");
        names += usize::from(parent.name == stanza.name);
    }
    println!("children that found their parent: {names}");
    println!("objects alive after work:   {}", object_count());
    let freed = collect();
    println!("collect() freed:            {freed} (nothing was left to collect)");
    assert_eq!(names, STANZAS);
    assert_eq!(freed, 0);
    assert_eq!(object_count(), 0);
    rcycle::enable();
}
