//! The dry run's suggestions on bad input (issue 19, section 4, item 3):
//! map keys whose `Debug` prints unbalanced brackets are folded like any
//! key (the folding follows the labels as the tracer made them, not their
//! text), and many cycles with edge kinds of their own get an answer in
//! linear time. Before, such keys defeated the folding and the suggestion
//! step was roughly cubic in the number of edge kinds (200 such 2-cycles:
//! 0.49 s, x9 per doubling): the sizes here would take it hours.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use rcycle::report::EdgeKind;
use rcycle::{collect, collect_dry_run, Gc, Trace, Tracer};

/// A key whose `Debug` prints an unbalanced `]` (even numbers) or `[`
/// (odd numbers).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Key(u32);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 2 == 0 {
            write!(f, "]{}", self.0)
        } else {
            write!(f, "{}[", self.0)
        }
    }
}

// SAFETY: owns no `Gc`.
unsafe impl Trace for Key {
    fn trace(&self, _: &mut Tracer<'_>) {}
    fn may_contain_gc() -> bool {
        false
    }
}

#[derive(Trace)]
struct Holder {
    by_key: RefCell<BTreeMap<Key, Gc<Item>>>,
}

#[derive(Trace)]
struct Item {
    owners: RefCell<BTreeMap<Key, Gc<Holder>>>,
}

/// Cycles built: Miri runs fewer (it is slow), enough to mix both keys.
fn cycles() -> usize {
    if cfg!(miri) {
        20
    } else {
        2_000
    }
}

#[test]
fn keys_with_unbalanced_brackets_are_folded() {
    collect();
    let n = cycles();
    for i in 0..n as u32 {
        let holder = Gc::new(Holder {
            by_key: RefCell::new(BTreeMap::new()),
        });
        let item = Gc::new(Item {
            owners: RefCell::new(BTreeMap::from([(Key(i), holder.clone())])),
        });
        holder.by_key.borrow_mut().insert(Key(i), item);
    }
    let dry = collect_dry_run();
    assert_eq!((dry.garbage.objects, dry.garbage.cycles), (2 * n, n));
    assert_eq!(dry.garbage.kinds.len(), 1);
    let edges: Vec<String> = dry.garbage.kinds[0]
        .edges
        .iter()
        .map(|e| format!("{} {}", e.count, e.edge))
        .collect();
    assert_eq!(
        edges,
        [
            format!("{n} report_fold_keys::Holder.by_key[_] -> report_fold_keys::Item"),
            format!("{n} report_fold_keys::Item.owners[_] -> report_fold_keys::Holder"),
        ]
    );
    let suggestions: Vec<String> = dry.garbage.suggestions().map(|s| s.to_string()).collect();
    assert_eq!(
        suggestions,
        [format!(
            "cycles through report_fold_keys::Holder.by_key[_] -> report_fold_keys::Item: \
             {} objects; consider WeakGc for the elements of 'by_key'",
            2 * n
        )]
    );
    assert_eq!(collect(), 2 * n);
}

/// A node whose one field has a name of its own.
struct Named {
    name: &'static str,
    next: RefCell<Option<Gc<Named>>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for Named {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field(self.name, &self.next);
    }
}

/// Field names `a0000`, `b0000`, `a0001`, ... (`'static`: kept in a static).
fn name(side: char, i: usize) -> &'static str {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        (0..2_000)
            .flat_map(|i| [format!("a{i:04}"), format!("b{i:04}")])
            .collect()
    });
    &names[2 * i + usize::from(side == 'b')]
}

#[test]
fn many_cycles_with_edge_kinds_of_their_own_get_a_linear_answer() {
    collect();
    let n = cycles();
    // n 2-cycles of one type, every edge a kind of its own: 2n edge kinds,
    // and each cycle needs one of its two made weak.
    for i in 0..n {
        let a = Gc::new(Named {
            name: name('a', i),
            next: RefCell::new(None),
        });
        let b = Gc::new(Named {
            name: name('b', i),
            next: RefCell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b);
    }
    let dry = collect_dry_run();
    assert_eq!((dry.garbage.objects, dry.garbage.cycles), (2 * n, n));
    assert_eq!(dry.garbage.kinds.len(), 1);
    assert_eq!(dry.garbage.kinds[0].edges.len(), 2 * n);
    let suggestion = dry.garbage.kinds[0].suggestion.as_ref().unwrap();
    assert_eq!(suggestion.objects, 2 * n);
    // Each kind breaks its own cycle only: the first by name of each.
    let expected: Vec<EdgeKind> = (0..n)
        .map(|i| EdgeKind {
            source: "report_fold_keys::Named",
            label: format!(".{}", name('a', i)),
            target: "report_fold_keys::Named",
        })
        .collect();
    assert_eq!(suggestion.edges, expected);
    assert_eq!(collect(), 2 * n);
}
