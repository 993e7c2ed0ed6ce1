//! Reports on a value holding a deep `Box` list (issue 19, section 4,
//! item 2): labelled tracing (`HeapGraph::capture`, `why_alive`,
//! `live_report`, the dry run) goes as deep as Rust's own drop of the same
//! list, on a thread with a 2 MiB stack. Before, a report recursed through
//! a large frame per level and overflowed at about a quarter of that depth
//! (about 18,600 levels in the test profile, 14,400 in release, where the
//! drop handles about 65,000 in both).

use std::cell::RefCell;
use std::mem::size_of;

use rcycle::report::{HeapGraph, ObjectId};
use rcycle::{collect, collect_dry_run, live_report, why_alive, Gc, Trace};

/// A list node; the deepest holds the handle that closes the cycle.
#[derive(Trace)]
struct Link {
    next: Option<Box<Link>>,
    end: Option<Gc<Leaf>>,
}

#[derive(Trace)]
struct Head {
    list: RefCell<Option<Box<Link>>>,
}

#[derive(Trace)]
struct Leaf {
    back: RefCell<Option<Gc<Head>>>,
}

/// Levels of the list: Rust's own drop of such a list handles about 65,000
/// on a 2 MiB stack (test profile and release). Miri runs a small list (the
/// full one would take it hours); AddressSanitizer a smaller one too, since
/// its frames are larger (for the drop as for the reports).
fn depth() -> usize {
    if cfg!(miri) {
        300
    } else if std::env::var_os("RCYCLE_UNDER_SANITIZER").is_some() {
        2_000
    } else {
        50_000
    }
}

/// A list of `n` links, built without recursion; the last holds `end`.
fn list(n: usize, end: Option<Gc<Leaf>>) -> Option<Box<Link>> {
    let mut list = Some(Box::new(Link { next: None, end }));
    for _ in 1..n {
        list = Some(Box::new(Link {
            next: list,
            end: None,
        }));
    }
    list
}

/// Takes a list apart without recursion.
fn dismantle(mut list: Option<Box<Link>>) {
    while let Some(mut link) = list {
        list = link.next.take();
    }
}

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn reports_go_as_deep_as_rusts_drop() {
    on_small_stack(|| {
        let n = depth();
        // The size a report gives a head with an empty list.
        let empty = {
            let probe = Gc::new(Head {
                list: RefCell::new(None),
            });
            let graph = HeapGraph::capture();
            graph.objects()[graph.find(ObjectId::of(&probe)).unwrap()].size
        };
        // Rust's own drop of a list this deep, on this stack.
        drop(list(n, None));

        let head = Gc::new(Head {
            list: RefCell::new(None),
        });
        let leaf = Gc::new(Leaf {
            back: RefCell::new(Some(head.clone())),
        });
        *head.list.borrow_mut() = list(n, Some(leaf.clone()));
        let label = format!(".list{}.end", ".next".repeat(n - 1));
        let list_size = n * size_of::<Link>();

        // The graph: one edge each way, the head's with the whole path.
        let graph = HeapGraph::capture();
        assert_eq!(graph.len(), 2);
        let h = graph.find(ObjectId::of(&head)).unwrap();
        let l = graph.find(ObjectId::of(&leaf)).unwrap();
        let from_head: Vec<(usize, &str)> = graph.referents(h).collect();
        assert_eq!(from_head, [(l, label.as_str())]);
        let from_leaf: Vec<(usize, &str)> = graph.referents(l).collect();
        assert_eq!(from_leaf, [(h, ".back")]);
        assert_eq!(graph.objects()[h].size, empty + list_size);

        // Why the leaf is alive (besides the handle passed): the head's
        // handle on the stack, then the list.
        let chain = why_alive(&leaf).unwrap();
        assert_eq!(
            chain.to_string(),
            format!("<held outside> report_deep_box::Head {label} -> report_deep_box::Leaf")
        );

        // The partition table counts the list in the head's size.
        let report = live_report();
        let row = report
            .rows()
            .iter()
            .find(|r| r.kind == "report_deep_box::Head")
            .unwrap();
        assert_eq!((row.count, row.size), (1, empty + list_size));

        // The dry run: one 2-cycle, closed by the leaf's back pointer.
        drop(leaf);
        let weak = Gc::downgrade(&head);
        drop(head);
        let dry = collect_dry_run();
        assert_eq!((dry.garbage.objects, dry.garbage.cycles), (2, 1));
        let suggestions: Vec<String> = dry.garbage.suggestions().map(|s| s.to_string()).collect();
        assert_eq!(
            suggestions,
            [
                "cycles through report_deep_box::Leaf.back -> report_deep_box::Head: 2 objects; \
              consider WeakGc for the field 'back'"
            ]
        );

        let head = weak.upgrade().unwrap();
        dismantle(head.list.borrow_mut().take());
        drop(head);
        assert_eq!(collect(), 0);
    });
}
