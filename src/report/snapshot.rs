//! Snapshots of the heap and the growth since one [objgraph `show_growth`,
//! tracemalloc `compare_to`, guppy `setrelheap`].
//!
//! A [`Snapshot`] records, for this thread's heap, the count and size of the
//! live objects of each type and the identity of every live object. It holds
//! no handle: taking one keeps nothing alive. [`Snapshot::growth`] compares
//! it with the heap now, type by type; [`Snapshot::new_objects_report`] is a
//! [`LiveReport`] of only the objects allocated since.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use std::ptr::NonNull;

use super::{ids, partition, CollectorCounters, LiveReport, ReportRow, ResidentMemory};
use crate::gc::Gc;
use crate::header::Header;
use crate::runtime::query;

/// The live objects of this thread's heap at one moment: per-type counts and
/// sizes, and the identity of each object.
///
/// Identity is the object's *snapshot id*, the id it also has in DevTools
/// exports ([`devtools::node_id`](crate::report::devtools::node_id)): an object keeps
/// it for its whole life and no other object ever gets it, so a new object
/// that took the memory of one freed since the snapshot is still new to
/// [`is_new`](Self::is_new) and
/// [`new_objects_report`](Self::new_objects_report).
///
/// ```
/// use rcycle::{Gc, Snapshot};
/// let old: Vec<Gc<u64>> = (0..100).map(Gc::new).collect();
/// let before = Snapshot::take();
/// drop(old);
/// let new: Vec<Gc<u64>> = (1000..1100).map(Gc::new).collect(); // the same memory
/// assert!(new.iter().all(|g| before.is_new(g)));
/// assert_eq!(before.new_objects_report().count(), 100);
/// ```
///
/// A snapshot describes the heap of the thread that took it, so it cannot be
/// sent to another thread (the [`Growth`] it produces can).
///
/// **Garbage.** [`take`](Self::take) records what is allocated, garbage
/// cycles included, and the comparisons count what is allocated then: garbage
/// made in between counts as growth until a collection frees it. objgraph's
/// `show_growth` runs `gc.collect()` before every count; a snapshot made by
/// [`collect_and_take`](Self::collect_and_take) does the same: it collects
/// before recording, and again before each comparison.
///
/// ```
/// use rcycle::{Gc, Snapshot};
/// let before = Snapshot::take();
/// let added: Vec<Gc<u64>> = (0..3).map(Gc::new).collect();
/// let growth = before.growth();
/// assert_eq!(growth.rows()[0].kind, "u64");
/// assert_eq!(growth.rows()[0].delta, 3);
/// assert_eq!(before.new_objects_report().count(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct Snapshot {
    rows: Vec<ReportRow>,
    /// The snapshot id of every live object, sorted.
    ids: Vec<u32>,
    /// Whether the comparisons collect first (objgraph's behaviour).
    collects: bool,
    _this_thread: PhantomData<*const ()>,
}

/// One type whose objects changed between a [`Snapshot`] and now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GrowthRow {
    /// The type, as in [`ReportRow::kind`].
    pub kind: String,
    /// Its live objects now.
    pub count: usize,
    /// `count` minus the count at the snapshot.
    pub delta: isize,
    /// Their total size now, in bytes.
    pub size: usize,
    /// `size` minus the size at the snapshot.
    pub size_delta: isize,
}

/// The per-type changes between a [`Snapshot`] and the heap now; see
/// [`Snapshot::growth`] and [`Snapshot::changes`].
///
/// `Display` prints objgraph's `show_growth` layout, one line per type: the
/// name left-aligned and padded to the longest name shown, the count now in 9
/// columns, a space and the signed delta in 9 columns:
///
/// ```text
/// app::Iq       2439     +2439
/// app::Node       12       -10
/// ```
///
/// The first 10 rows are shown, then `<N more rows>`; the alternate form
/// (`{:#}`) prints every row.
///
/// ```
/// use rcycle::{Gc, Snapshot};
/// let before = Snapshot::take();
/// let added: Vec<Gc<u16>> = (0..2439).map(Gc::new).collect();
/// assert_eq!(before.growth().to_string(), "u16     2439     +2439\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Growth {
    rows: Vec<GrowthRow>,
}

impl Growth {
    /// The rows, in the order described by the method that made them.
    ///
    /// ```
    /// let before = rcycle::Snapshot::take();
    /// let g = rcycle::Gc::new(1i64);
    /// assert_eq!(before.growth().rows()[0].size_delta, 24);
    /// ```
    pub fn rows(&self) -> &[GrowthRow] {
        &self.rows
    }

    /// Whether no type changed.
    ///
    /// ```
    /// let before = rcycle::Snapshot::take();
    /// assert!(before.changes().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Rows shown by `Display` before `<N more rows>` (objgraph's default limit).
const SHOWN_ROWS: usize = 10;

impl fmt::Display for Growth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if f.alternate() {
            self.rows.len()
        } else {
            SHOWN_ROWS.min(self.rows.len())
        };
        let rows = &self.rows[..shown];
        let width = rows.iter().map(|r| r.kind.len()).max().unwrap_or(0);
        for row in rows {
            writeln!(f, "{:<width$}{:9} {:+9}", row.kind, row.count, row.delta)?;
        }
        if shown < self.rows.len() {
            writeln!(f, "<{} more rows>", self.rows.len() - shown)?;
        }
        Ok(())
    }
}

impl Snapshot {
    /// Records this thread's live objects now. It does not collect, nor do
    /// its comparisons: garbage counts until a collection frees it (see
    /// [`collect_and_take`](Self::collect_and_take) for objgraph's way).
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// let snap = rcycle::Snapshot::take();
    /// assert!(snap.count() >= 1);
    /// drop(g); // the snapshot keeps nothing alive
    /// assert_eq!(snap.changes().rows()[0].delta, -1);
    /// ```
    pub fn take() -> Snapshot {
        let mut ids: Vec<u32> = ids::refresh(&query().heap)
            .iter()
            .map(|&(_, id)| id)
            .collect();
        ids.sort_unstable();
        let rows = partition(|_, _| true);
        Snapshot {
            rows,
            ids,
            collects: false,
            _this_thread: PhantomData,
        }
    }

    /// Runs [`collect`](crate::collect()), then records this thread's live
    /// objects; the comparisons of this snapshot ([`growth`](Self::growth),
    /// [`changes`](Self::changes),
    /// [`new_objects_report`](Self::new_objects_report)) collect again before
    /// they count, as objgraph's `show_growth` does: garbage cycles never
    /// count as growth. (objgraph compares with the peak counts of its
    /// previous calls; a snapshot compares with itself, every time.)
    ///
    /// ```
    /// use rcycle::{Gc, Snapshot, Trace};
    /// use std::cell::RefCell;
    /// #[derive(Trace)]
    /// struct Ring { next: RefCell<Option<Gc<Ring>>> }
    /// let plain = Snapshot::take();
    /// let collecting = Snapshot::collect_and_take();
    /// rcycle::disable(); // no automatic collection in between
    /// for _ in 0..3 {
    ///     let r = Gc::new(Ring { next: RefCell::new(None) });
    ///     *r.next.borrow_mut() = Some(r.clone()); // a garbage cycle once `r` goes
    /// }
    /// assert_eq!(plain.growth().rows()[0].delta, 3); // the garbage counts
    /// assert!(collecting.growth().is_empty()); // collected first
    /// rcycle::enable();
    /// ```
    pub fn collect_and_take() -> Snapshot {
        crate::collect();
        Snapshot {
            collects: true,
            ..Snapshot::take()
        }
    }

    /// Collects first if this snapshot was made by `collect_and_take`.
    fn collect_if_asked(&self) {
        if self.collects {
            crate::collect();
        }
    }

    /// The live objects per type at the snapshot, largest total size first
    /// (the rows [`live_report`](super::live_report) had then).
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u32);
    /// let snap = rcycle::Snapshot::take();
    /// assert!(snap.rows().iter().any(|r| r.kind == "u32" && r.count == 1));
    /// ```
    pub fn rows(&self) -> &[ReportRow] {
        &self.rows
    }

    /// The number of live objects at the snapshot.
    ///
    /// ```
    /// let before = rcycle::Snapshot::take().count();
    /// let g = rcycle::Gc::new(1u8);
    /// assert_eq!(rcycle::Snapshot::take().count(), before + 1);
    /// ```
    pub fn count(&self) -> usize {
        self.ids.len()
    }

    /// The total size of the live objects at the snapshot, in bytes.
    ///
    /// ```
    /// let before = rcycle::Snapshot::take().size();
    /// let g = rcycle::Gc::new(1u64);
    /// assert_eq!(rcycle::Snapshot::take().size(), before + 24);
    /// ```
    pub fn size(&self) -> usize {
        self.rows.iter().map(|r| r.size).sum()
    }

    /// Whether `obj` was allocated after the snapshot (by its snapshot id: see
    /// the type's documentation).
    ///
    /// ```
    /// let old = rcycle::Gc::new(1u8);
    /// let snap = rcycle::Snapshot::take();
    /// let new = rcycle::Gc::new(2u8);
    /// assert!(!snap.is_new(&old));
    /// assert!(snap.is_new(&new));
    /// ```
    pub fn is_new<T: ?Sized>(&self, obj: &Gc<T>) -> bool {
        // SAFETY: `obj` keeps its object allocated, and it belongs to this
        // thread's heap (`Gc` is not `Send`).
        unsafe { self.is_new_raw(obj.header_ptr()) }
    }

    /// # Safety
    /// `header` is an allocated object of this thread's heap.
    unsafe fn is_new_raw(&self, header: NonNull<Header>) -> bool {
        // SAFETY: forwarded from the caller.
        match unsafe { ids::existing_id(&query().heap, header) } {
            Some(id) => self.ids.binary_search(&id).is_err(),
            None => true, // made since the last snapshot
        }
    }

    /// How the objects made since the snapshot and still alive are held
    /// (memlab's clustered retainer traces): the first of them on each chain
    /// from outside the heap, grouped by the folded label of the edge that
    /// holds them and by their type, with the size of everything new behind
    /// them (see [`LeakReport::held_by`](super::LeakReport::held_by), which
    /// is the same for a leak check). Collects first only for a snapshot
    /// made by [`collect_and_take`](Self::collect_and_take).
    ///
    /// ```
    /// use rcycle::{Gc, Snapshot, Trace};
    /// use std::cell::RefCell;
    /// #[derive(Trace)]
    /// struct Cache { entries: RefCell<Vec<Gc<String>>> }
    /// let cache = Gc::new(Cache { entries: RefCell::new(Vec::new()) });
    /// let before = Snapshot::take();
    /// for i in 0..3 {
    ///     cache.entries.borrow_mut().push(Gc::new(i.to_string()));
    /// }
    /// let held = before.new_objects_held_by();
    /// assert_eq!((held[0].path.as_str(), held[0].count), (".entries[*]", 3));
    /// ```
    pub fn new_objects_held_by(&self) -> Vec<super::RetainerGroup> {
        self.collect_if_asked();
        let graph = super::HeapGraph::capture();
        super::suspects::new_objects_held_by(&graph, self)
    }

    /// For each node of `graph` (captured after this snapshot), whether its
    /// object was made after the snapshot (by snapshot id, as
    /// [`is_new`](Self::is_new)). Runs no user code.
    pub(crate) fn new_nodes(&self, graph: &super::HeapGraph) -> Vec<bool> {
        super::devtools::node_ids(graph)
            .iter()
            .map(|id| self.ids.binary_search(id).is_err())
            .collect()
    }

    /// Every per-type difference between the snapshot and now, not only
    /// growth: each type whose count or size changed, with the largest count
    /// change (up or down) first, then the largest size change, then by name
    /// (like tracemalloc's `compare_to`, which sorts by the absolute
    /// difference). A type with no object left shows `count` 0. Collects
    /// first only for a snapshot made by
    /// [`collect_and_take`](Self::collect_and_take).
    ///
    /// ```
    /// use rcycle::{Gc, Snapshot};
    /// let nodes: Vec<Gc<i32>> = (0..10).map(Gc::new).collect();
    /// let before = Snapshot::take();
    /// drop(nodes);
    /// let iqs: Vec<Gc<u16>> = (0..3).map(Gc::new).collect();
    /// let changes = before.changes();
    /// assert_eq!(changes.rows()[0].kind, "i32");
    /// assert_eq!((changes.rows()[0].count, changes.rows()[0].delta), (0, -10));
    /// assert_eq!(changes.rows()[1].delta, 3);
    /// ```
    pub fn changes(&self) -> Growth {
        self.collect_if_asked();
        differences(&self.rows, partition(|_, _| true))
    }

    /// Every per-type difference from `older` to this snapshot, both
    /// stored (tracemalloc's `Snapshot.compare_to`), sorted as
    /// [`changes`](Self::changes) sorts them. Neither collects.
    ///
    /// ```
    /// use rcycle::{Gc, Snapshot};
    /// let first = Snapshot::take();
    /// let kept: Vec<Gc<u16>> = (0..3).map(Gc::new).collect();
    /// let second = Snapshot::take();
    /// drop(kept);
    /// let diff = second.compare(&first);
    /// assert_eq!((diff.rows()[0].kind.as_str(), diff.rows()[0].delta), ("u16", 3));
    /// assert_eq!(diff.rows()[0].count, 3); // as the newer snapshot saw it
    /// ```
    pub fn compare(&self, older: &Snapshot) -> Growth {
        differences(&older.rows, self.rows.clone())
    }

    /// The types with more live objects now than at the snapshot, the
    /// largest increase first, then by name (objgraph's `show_growth`; it
    /// collects first only for a snapshot made by
    /// [`collect_and_take`](Self::collect_and_take)).
    ///
    /// ```
    /// use rcycle::{Gc, Snapshot};
    /// let before = Snapshot::take();
    /// let a: Vec<Gc<u8>> = (0..5).map(Gc::new).collect();
    /// let b: Vec<Gc<u16>> = (0..7).map(Gc::new).collect();
    /// let growth = before.growth();
    /// let deltas: Vec<isize> = growth.rows().iter().map(|r| r.delta).collect();
    /// assert_eq!(deltas, [7, 5]);
    /// ```
    pub fn growth(&self) -> Growth {
        let mut rows = self.changes().rows;
        rows.retain(|r| r.delta > 0);
        rows.sort_by(|a, b| b.delta.cmp(&a.delta).then_with(|| a.kind.cmp(&b.kind)));
        Growth { rows }
    }

    /// A [`LiveReport`] of only the live objects allocated since the snapshot
    /// (guppy's `setrelheap()` followed by `heap()`), in the same layout.
    /// Collects first only for a snapshot made by
    /// [`collect_and_take`](Self::collect_and_take).
    ///
    /// ```
    /// use rcycle::{Gc, Snapshot};
    /// let old = Gc::new(String::from("old"));
    /// let before = Snapshot::take();
    /// let new: Vec<Gc<String>> = (0..2).map(|i| Gc::new(i.to_string())).collect();
    /// let report = before.new_objects_report();
    /// assert_eq!(report.count(), 2);
    /// print!("{report}");
    /// ```
    pub fn new_objects_report(&self) -> LiveReport {
        self.collect_if_asked();
        LiveReport {
            // SAFETY: `partition` gives allocated objects of this thread's
            // heap.
            rows: partition(|header, _| unsafe { self.is_new_raw(header) }),
            resident: ResidentMemory::read(),
            counters: CollectorCounters::read(),
        }
    }
}

/// The per-type differences from `then` to `now` (rows with a change only),
/// the largest count change (up or down) first, then the largest size
/// change, then by name.
fn differences(then: &[ReportRow], now: Vec<ReportRow>) -> Growth {
    let mut then: HashMap<&str, (usize, usize)> = then
        .iter()
        .map(|r| (r.kind.as_str(), (r.count, r.size)))
        .collect();
    let delta = |now: usize, then: usize| now as isize - then as isize;
    let mut rows = Vec::new();
    for now in now {
        let (count, size) = then.remove(now.kind.as_str()).unwrap_or((0, 0));
        rows.push(GrowthRow {
            delta: delta(now.count, count),
            size_delta: delta(now.size, size),
            count: now.count,
            size: now.size,
            kind: now.kind,
        });
    }
    for (kind, (count, size)) in then {
        rows.push(GrowthRow {
            kind: kind.to_string(),
            count: 0,
            delta: delta(0, count),
            size: 0,
            size_delta: delta(0, size),
        });
    }
    rows.retain(|r| r.delta != 0 || r.size_delta != 0);
    rows.sort_by(|a, b| {
        b.delta
            .unsigned_abs()
            .cmp(&a.delta.unsigned_abs())
            .then(
                b.size_delta
                    .unsigned_abs()
                    .cmp(&a.size_delta.unsigned_abs()),
            )
            .then_with(|| a.kind.cmp(&b.kind))
    });
    Growth { rows }
}
