//! Reports run user code: a map key's `Debug` impl (safe code) formats the
//! labels. These probes make that code drop handles in the middle of a
//! report — the last handle of a large object enumerated later, and the last
//! handle of the very object being traced — and check that the reports stay
//! sound (ASan and Miri run this file too) and that the heap is consistent
//! afterwards.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use rcycle::{collect, object_count, Gc, HeapGraph, Trace};

thread_local! {
    /// Handles a key's `Debug` drops when it runs.
    static VICTIMS: RefCell<Vec<Gc<Holder>>> = const { RefCell::new(Vec::new()) };
    static DEBUG_CALLS: RefCell<usize> = const { RefCell::new(0) };
}

/// A map key whose `Debug` drops every handle in `VICTIMS`.
#[derive(PartialEq, Eq, Hash, Trace)]
struct Key(u32);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        DEBUG_CALLS.with(|c| *c.borrow_mut() += 1);
        let victims = VICTIMS.with(|v| std::mem::take(&mut *v.borrow_mut()));
        drop(victims);
        write!(f, "{}", self.0)
    }
}

#[derive(Trace)]
struct Holder {
    #[trace(skip)]
    big: [u64; 512], // 4 KiB: an allocation of its own, freed at once
    map: RefCell<HashMap<Key, Gc<u64>>>,
}

fn holder(entries: u32) -> Gc<Holder> {
    let map = (0..entries)
        .map(|i| (Key(i), Gc::new(u64::from(i))))
        .collect();
    Gc::new(Holder {
        big: [1; 512],
        map: RefCell::new(map),
    })
}

#[test]
fn a_debug_impl_dropping_handles_during_a_capture() {
    collect();
    let base = object_count();
    // Several large holders; whichever is traced first drops all the others
    // (and itself: its only handle is in the victims list too).
    for _ in 0..4 {
        let h = holder(2);
        VICTIMS.with(|v| v.borrow_mut().push(h));
    }
    assert_eq!(object_count(), base + 12);
    assert!(VICTIMS.with(|v| v.borrow().iter().all(|h| h.big[511] == 1)));
    let graph = HeapGraph::capture();
    assert!(DEBUG_CALLS.with(|c| *c.borrow()) >= 1);
    // Every holder's value went during the capture (the one being traced
    // was pinned, then dropped when the pin went). The snapshot lists the
    // objects it enumerated; those that died before their turn are marked
    // dead, and nothing was read after it died (ASan and Miri check that).
    assert_eq!(graph.len(), 12);
    let holders_traced = graph
        .objects()
        .iter()
        .filter(|o| o.type_name.ends_with("Holder") && !o.dead)
        .count();
    assert_eq!(
        holders_traced, 1,
        "the first holder traced drops the others"
    );
    assert_eq!(
        object_count(),
        base,
        "everything the victims owned is freed"
    );
    assert_eq!(collect(), 0);
}

#[test]
fn a_debug_impl_dropping_handles_during_a_dry_run_and_why_alive() {
    collect();
    let base = object_count();
    // A garbage cycle through a holder's map: the dry run traces it with
    // labels, but folds keys without formatting them (issue 19), so no
    // `Debug` runs; `why_alive` formats them, and the key's `Debug` drops
    // other holders meanwhile.
    #[derive(Trace)]
    struct Ring {
        next: RefCell<Option<Gc<Ring>>>,
        map: RefCell<HashMap<Key, Gc<u64>>>,
    }
    let a = Gc::new(Ring {
        next: RefCell::new(None),
        map: RefCell::new([(Key(1), Gc::new(1u64))].into()),
    });
    let b = Gc::new(Ring {
        next: RefCell::new(Some(a.clone())),
        map: RefCell::new(HashMap::new()),
    });
    *a.next.borrow_mut() = Some(b);
    drop(a);
    for _ in 0..3 {
        let h = holder(1);
        VICTIMS.with(|v| v.borrow_mut().push(h));
    }
    let calls = DEBUG_CALLS.with(|c| *c.borrow());
    let dry = rcycle::collect_dry_run();
    assert_eq!(dry.garbage.objects, 3, "the ring and the u64 its map holds");
    assert_eq!(DEBUG_CALLS.with(|c| *c.borrow()), calls, "no key formatted");
    assert_eq!(
        object_count(),
        base + 3 + 3 * 2,
        "the holders (and their u64) are still there"
    );
    let survivor = holder(1);
    let inner = survivor.map.borrow().values().next().unwrap().clone();
    VICTIMS.with(|v| v.borrow_mut().push(holder(1)));
    let chain = rcycle::why_alive(&inner).expect("held through the survivor");
    assert!(chain.to_string().ends_with(".map[0] -> u64"), "{chain}");
    drop((survivor, inner));
    assert_eq!(collect(), 3);
    assert_eq!(object_count(), base);
}
