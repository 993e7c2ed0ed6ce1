//! Reports run user code: a map key's `Debug` impl (safe code) formats the
//! labels, and `Trace::heap_size` (safe code too) measures each value. These
//! probes make that code drop handles or collect in the middle of a report —
//! the last handle of a large object enumerated later, the last handle of the
//! very object being traced, a whole garbage cycle freed — and check that the
//! reports stay sound (ASan and Miri run this file too), that they report
//! exactly what they read, and that the heap is consistent afterwards.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use rcycle::report::HeapGraph;
use rcycle::{collect, object_count, Gc, Snapshot, Trace, Tracer};

thread_local! {
    /// Handles a key's `Debug` drops when it runs.
    static VICTIMS: RefCell<Vec<Gc<Holder>>> = const { RefCell::new(Vec::new()) };
    static DEBUG_CALLS: RefCell<usize> = const { RefCell::new(0) };
    /// Handles a `Big`'s `heap_size` drops.
    static BIG_VICTIMS: RefCell<Vec<Gc<Big>>> = const { RefCell::new(Vec::new()) };
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

// ---------------------------------------------------------------------------
// `heap_size` impls that collect or drop handles (issue 19, section 2)
// ---------------------------------------------------------------------------

thread_local! {
    /// Ids of the `Big` objects whose `heap_size` ran, in order.
    static MEASURED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// What the next `Big::heap_size` does (once).
    static MEDDLE: RefCell<Meddle> = const { RefCell::new(Meddle::Nothing) };
}

#[derive(Clone, Copy)]
enum Meddle {
    Nothing,
    /// `collect()`.
    Collect,
    /// Drop every handle in `BIG_VICTIMS`.
    DropVictims,
    /// Take the measured object's own `next` (dropping its partner in a
    /// garbage 2-cycle).
    CutNext,
}

/// A large object that records when it is measured, and whose first
/// measurement may meddle with the heap.
struct Big {
    id: u32,
    data: [u64; 64],
    next: RefCell<Option<Gc<Big>>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for Big {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
    fn heap_size(&self) -> usize {
        assert_eq!(self.data[63], u64::from(self.id), "read intact");
        MEASURED.with(|m| m.borrow_mut().push(self.id));
        match MEDDLE.with(|m| std::mem::replace(&mut *m.borrow_mut(), Meddle::Nothing)) {
            Meddle::Nothing => {}
            Meddle::Collect => {
                collect();
            }
            Meddle::DropVictims => {
                drop(BIG_VICTIMS.with(|v| std::mem::take(&mut *v.borrow_mut())));
            }
            Meddle::CutNext => drop(self.next.borrow_mut().take()),
        }
        0
    }
}

fn big(id: u32, next: Option<Gc<Big>>) -> Gc<Big> {
    Gc::new(Big {
        id,
        data: [u64::from(id); 64],
        next: RefCell::new(next),
    })
}

/// `cycles` garbage 2-cycles of `Big`s.
fn big_garbage(cycles: u32) {
    for i in 0..cycles {
        let a = big(2 * i, None);
        let b = big(2 * i + 1, Some(a.clone()));
        *a.next.borrow_mut() = Some(b);
    }
}

/// The number of `Big`s in a set of report rows.
fn big_count(rows: &[rcycle::report::ReportRow]) -> usize {
    rows.iter()
        .filter(|r| r.kind.ends_with("::Big"))
        .map(|r| r.count)
        .sum()
}

/// Three garbage 2-cycles of `Big`s; the first one measured collects. It is
/// pinned by the report, so its own cycle survives that collection and the
/// two others go. `report` returns how many `Big`s it reported: exactly the
/// two it measured (the first, then its partner), none of the freed ones.
fn collect_while_measuring(report: impl FnOnce() -> usize) {
    collect();
    let base = object_count();
    big_garbage(3);
    assert_eq!(object_count(), base + 6);
    MEASURED.with(|m| m.borrow_mut().clear());
    MEDDLE.with(|m| *m.borrow_mut() = Meddle::Collect);
    let reported = report();
    let measured = MEASURED.with(|m| std::mem::take(&mut *m.borrow_mut()));
    assert_eq!(measured.len(), 2, "{measured:?}");
    assert_eq!(measured[0] / 2, measured[1] / 2, "one cycle: {measured:?}");
    assert_eq!(reported, 2);
    assert_eq!(object_count(), base + 2, "the first one's cycle survived");
    assert_eq!(collect(), 2);
    assert_eq!(object_count(), base);
}

#[test]
fn a_heap_size_impl_that_collects_during_live_report() {
    collect_while_measuring(|| big_count(rcycle::live_report().rows()));
}

#[test]
fn a_heap_size_impl_that_collects_during_most_common_types() {
    collect_while_measuring(|| {
        rcycle::report::most_common_types(usize::MAX)
            .iter()
            .filter(|(kind, _)| kind.ends_with("::Big"))
            .map(|(_, n)| n)
            .sum()
    });
}

#[test]
fn a_heap_size_impl_that_collects_during_a_snapshot() {
    collect_while_measuring(|| big_count(Snapshot::take().rows()));
    // A snapshot compared with now: `changes` measures the objects again.
    let snap = Snapshot::take();
    collect_while_measuring(|| {
        snap.changes()
            .rows()
            .iter()
            .filter(|r| r.kind.ends_with("::Big"))
            .map(|r| r.count)
            .sum()
    });
    collect_while_measuring(|| big_count(snap.new_objects_report().rows()));
}

/// `heap_size` dropping the last handles of objects listed after it: they
/// are skipped, never read; the one being measured is pinned until its
/// measurement ends, then freed; the objects still alive are each measured
/// exactly once (the walk lists the heap again after the frees).
#[test]
fn a_heap_size_impl_that_drops_handles_during_live_report() {
    collect();
    let base = object_count();
    // Interleaved, so that survivors come before and after the victims.
    let mut keepers = Vec::new();
    let mut victims = Vec::new();
    for i in 0..6 {
        victims.push(big(i, None));
        keepers.push(big(100 + i, None));
    }
    BIG_VICTIMS.with(|v| *v.borrow_mut() = victims);
    assert_eq!(object_count(), base + 12);
    MEASURED.with(|m| m.borrow_mut().clear());
    MEDDLE.with(|m| *m.borrow_mut() = Meddle::DropVictims);
    let report = rcycle::live_report();
    let mut measured = MEASURED.with(|m| std::mem::take(&mut *m.borrow_mut()));
    assert_eq!(big_count(report.rows()), measured.len());
    measured.sort();
    let victims_measured = measured.iter().filter(|&&id| id < 100).count();
    assert!(
        victims_measured <= 1,
        "only the first one measured: {measured:?}"
    );
    assert_eq!(measured[victims_measured..], [100, 101, 102, 103, 104, 105]);
    assert_eq!(object_count(), base + 6);
    drop(keepers);
    assert_eq!(object_count(), base);
}

#[test]
fn a_heap_size_impl_that_drops_a_garbage_member_during_a_dry_run() {
    // Two garbage 2-cycles of `Big`s (whose `heap_size` is not inert: the
    // builder measures them in its second pass, each pinned in turn, every
    // member held). The first one measured cuts its own `next`: its
    // partner's value goes, and with it the partner's handle to it. The
    // graph is the one traced before any `heap_size` ran, less the edges of
    // the member that died: that pair is no cycle any more.
    collect();
    let base = object_count();
    big_garbage(2);
    MEASURED.with(|m| m.borrow_mut().clear());
    MEDDLE.with(|m| *m.borrow_mut() = Meddle::CutNext);
    let dry = rcycle::collect_dry_run();
    let measured = MEASURED.with(|m| std::mem::take(&mut *m.borrow_mut()));
    assert_eq!(
        measured.len(),
        3,
        "the dead partner is not measured: {measured:?}"
    );
    assert_eq!(dry.garbage.objects, 4);
    assert_eq!(dry.garbage.cycles, 1, "{dry}");
    assert_eq!(dry.garbage.kinds[0].objects, 2);
    // The cut pair went when the dry run let go of it; the other is garbage.
    assert_eq!(object_count(), base + 2);
    assert_eq!(collect(), 2);
    assert_eq!(object_count(), base);
}
