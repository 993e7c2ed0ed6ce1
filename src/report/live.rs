//! The partition of the live objects by type ([`LiveReport`], guppy's
//! `hpy().heap()`), and the heap walk every per-object report shares.

use std::fmt;

use super::tally::{sort_rows, RowOrder, TypeTally};
use crate::runtime::query;

/// One row of a [`LiveReport`]: the live objects of one type.
///
/// ```
/// let keep = rcycle::Gc::new(5u32);
/// let report = rcycle::live_report();
/// let row = report.rows().iter().find(|r| r.kind == "u32").unwrap();
/// assert_eq!((row.count, row.size, row.retained), (1, 24, None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ReportRow {
    /// `std::any::type_name` of the value; dead boxes (objects whose value
    /// went with a collected cycle while a handle remained) are listed apart,
    /// as `<dead> TypeName`.
    pub kind: String,
    /// Number of objects.
    pub count: usize,
    /// Bytes: the objects themselves plus the heap memory their values own.
    pub size: usize,
    /// The type's retained size in bytes (guppy's `domisize`; see
    /// [`Dominators::retained_by_type`](super::Dominators::retained_by_type))
    /// when the report was made by
    /// [`live_report_with_retained`](super::live_report_with_retained);
    /// `None` otherwise.
    pub retained: Option<usize>,
}

/// The process's resident memory, from `/proc/self/status` (Linux).
///
/// ```
/// let report = rcycle::live_report();
/// if let Some(m) = report.resident {
///     assert!(m.current > 0);
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ResidentMemory {
    /// Resident set size now, in bytes (`VmRSS`).
    pub current: usize,
    /// The peak resident set size, in bytes (`VmHWM`, like `ru_maxrss`).
    pub peak: usize,
}

impl ResidentMemory {
    /// Reads the current and peak resident memory; `None` where unknown
    /// (not Linux, or under Miri).
    ///
    /// ```
    /// if let Some(m) = rcycle::report::ResidentMemory::read() {
    ///     assert!(m.peak >= m.current);
    /// }
    /// ```
    pub fn read() -> Option<ResidentMemory> {
        if cfg!(miri) || !cfg!(target_os = "linux") {
            return None;
        }
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let field = |name: &str| -> Option<usize> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: usize = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kb * 1024)
        };
        Some(ResidentMemory {
            current: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }
}

/// The collector's counters for this thread.
///
/// ```
/// rcycle::disable();
/// let counters = rcycle::live_report().counters;
/// assert!(!counters.enabled);
/// rcycle::enable();
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CollectorCounters {
    /// Collections run (automatic and explicit).
    pub collections: u64,
    /// Objects freed by collections (not by counts reaching zero).
    pub freed: u64,
    /// Objects that finalizers resurrected during collections.
    pub resurrected: u64,
    /// Time spent collecting. Collections nobody asked statistics for are
    /// timed with the coarse monotonic clock on Linux (it ticks every 1 to
    /// 4 ms, and reads 15 times faster than the precise one), and of the
    /// small ones (fewer than 64 candidates) only a random one in 16 is
    /// timed, counting 16 times: the total is right on average over many
    /// collections, not to the nanosecond.
    pub duration: std::time::Duration,
    /// Objects waiting in the candidate buffer.
    pub candidates: usize,
    /// Whether automatic collection is on.
    pub enabled: bool,
}

impl CollectorCounters {
    /// Reads this thread's counters.
    ///
    /// ```
    /// let before = rcycle::report::CollectorCounters::read().collections;
    /// rcycle::collect();
    /// assert_eq!(rcycle::report::CollectorCounters::read().collections, before + 1);
    /// ```
    pub fn read() -> CollectorCounters {
        let rt = query();
        let stats = &rt.collector.stats;
        CollectorCounters {
            collections: rt.heap.collections(),
            freed: stats.freed_total(),
            resurrected: stats.resurrected_total(),
            duration: stats.duration_total(),
            candidates: rt.heap.candidate_count(),
            enabled: rt.collector.policy.is_enabled(),
        }
    }
}

/// A partition of this thread's live objects by type, largest first: what
/// guppy's `hpy().heap()` prints for a Python process.
///
/// `Display` prints guppy's text for a partition by type (`hpy().heap().bytype`:
/// rcycle classifies objects by their Rust type, so the last column is headed
/// `Type`), character for character for the same counts and sizes:
/// percentages rounded to the nearest integer (halves to even, Python's
/// `'%.0f'`), `1 object` in the singular, the first 10 rows and then
/// `<N more rows. Type e.g. '_.more' to view.>` (11 rows are all shown, as
/// guppy does), and `<Nothing>` for an empty heap. In rcycle the alternate
/// form (`{:#}`) plays the part of guppy's `_.more` / `_.all`: it prints every
/// row. Two differences: guppy wraps a kind name that would run past 100
/// columns, rcycle never breaks a type name; and rcycle adds its own lines
/// after the table (resident memory, the collector's counters).
/// [`rows`](Self::rows) gives the data.
///
/// ```
/// let keep: Vec<_> = (0..3).map(|i| rcycle::Gc::new(i as u64)).collect();
/// let report = rcycle::live_report();
/// let row = report.rows().iter().find(|r| r.kind == "u64").unwrap();
/// assert_eq!((row.count, row.size), (3, 72));
/// println!("{report}");
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LiveReport {
    pub(super) rows: Vec<ReportRow>,
    /// Resident memory when the report was taken, if known.
    pub resident: Option<ResidentMemory>,
    /// The collector's counters when the report was taken.
    pub counters: CollectorCounters,
}

impl LiveReport {
    /// A report of the given rows, in the given order, with no resident
    /// memory and zero counters: for checking the printed layout against
    /// guppy's with chosen counts and sizes.
    ///
    /// ```
    /// use rcycle::report::{LiveReport, ReportRow};
    /// let row = ReportRow { kind: "app::Dispatcher".into(), count: 1, size: 147, retained: None };
    /// let text = LiveReport::from_rows(vec![row]).to_string();
    /// assert!(text.starts_with("Partition of a set of 1 object. Total size = 147 bytes.\n"));
    /// ```
    #[doc(hidden)]
    pub fn from_rows(rows: Vec<ReportRow>) -> LiveReport {
        LiveReport {
            rows,
            resident: None,
            counters: CollectorCounters::default(),
        }
    }

    /// The rows, largest total size first.
    ///
    /// ```
    /// let r = rcycle::live_report();
    /// assert!(r.rows().windows(2).all(|w| w[0].size >= w[1].size));
    /// ```
    pub fn rows(&self) -> &[ReportRow] {
        &self.rows
    }

    /// The number of live objects.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// assert!(rcycle::live_report().count() >= 1);
    /// ```
    pub fn count(&self) -> usize {
        self.rows.iter().map(|r| r.count).sum()
    }

    /// The total size in bytes.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u64);
    /// assert!(rcycle::live_report().size() >= 24);
    /// ```
    pub fn size(&self) -> usize {
        self.rows.iter().map(|r| r.size).sum()
    }
}

/// Rows shown by `Display` before `<N more rows. ...>` (guppy's
/// `max_more_lines`).
const SHOWN_ROWS: usize = 10;

/// `part` in percent of `whole` as guppy prints it:
/// `int('%.0f' % (part * 100.0 / whole))`, the nearest integer with halves
/// rounded to even. 0 when `whole` is 0 (guppy never divides by an empty
/// total: it prints `<Nothing>`).
fn percent(part: usize, whole: usize) -> i64 {
    if whole == 0 {
        return 0;
    }
    (part as f64 * 100.0 / whole as f64).round_ties_even() as i64
}

impl fmt::Display for LiveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (count, size) = (self.count(), self.size());
        if self.rows.is_empty() {
            writeln!(f, "<Nothing>")?;
        } else {
            self.table(f, count, size)?;
        }
        if let Some(m) = self.resident {
            writeln!(
                f,
                "Resident memory: {} bytes now, {} bytes at peak.",
                m.current, m.peak
            )?;
        }
        let c = &self.counters;
        write!(
            f,
            "Collector: {} collections, {} objects freed by them, {} candidates waiting, automatic collection {}.",
            c.collections,
            c.freed,
            c.candidates,
            if c.enabled { "on" } else { "off" }
        )
    }
}

impl LiveReport {
    /// guppy's table (`SetFormat` in guppy/heapy/Part.py), each line ended.
    fn table(&self, f: &mut fmt::Formatter<'_>, count: usize, size: usize) -> fmt::Result {
        let plural = if count == 1 { "" } else { "s" };
        writeln!(
            f,
            "Partition of a set of {count} object{plural}. Total size = {size} bytes."
        )?;
        // The retained column, only in reports made with it.
        let with_retained = self.rows.iter().any(|r| r.retained.is_some());
        writeln!(
            f,
            " Index  Count   %     Size   % Cumulative  % {}Type",
            if with_retained { " Retained   % " } else { "" }
        )?;
        // guppy prints one more row rather than `<1 more rows>`.
        let shown = if f.alternate() || self.rows.len() <= SHOWN_ROWS + 1 {
            self.rows.len()
        } else {
            SHOWN_ROWS
        };
        let mut cumulative = 0;
        for (i, row) in self.rows[..shown].iter().enumerate() {
            cumulative += row.size;
            let retained = match row.retained.filter(|_| with_retained) {
                Some(r) => format!("{:9} {:3} ", r, percent(r, size)),
                None if with_retained => format!("{:9} {:3} ", "", ""),
                None => String::new(),
            };
            writeln!(
                f,
                "{:6} {:6} {:3} {:8} {:3} {:9} {:3} {}{}",
                i,
                row.count,
                percent(row.count, count),
                row.size,
                percent(row.size, size),
                cumulative,
                percent(cumulative, size),
                retained,
                row.kind
            )?;
        }
        if shown < self.rows.len() {
            writeln!(
                f,
                "<{} more rows. Type e.g. '_.more' to view.>",
                self.rows.len() - shown
            )?;
        }
        Ok(())
    }
}

/// A partition of this thread's live objects by type (guppy's
/// `hpy().heap()`). It does not collect first: call [`collect`](crate::collect())
/// before it to see only what is reachable.
///
/// ```
/// use rcycle::Gc;
/// let names: Vec<Gc<String>> = (0..4).map(|i| Gc::new(format!("n{i}"))).collect();
/// let report = rcycle::live_report();
/// let strings = report.rows().iter().find(|r| r.kind == "alloc::string::String").unwrap();
/// assert_eq!(strings.count, 4);
/// print!("{report}");
/// ```
pub fn live_report() -> LiveReport {
    LiveReport {
        rows: partition(|_, _| true),
        resident: ResidentMemory::read(),
        counters: CollectorCounters::read(),
    }
}

/// Partitions the live objects for which `keep(header, type index)` holds
/// by type: the rows of a [`LiveReport`], largest first. Objects whose
/// value is being dropped right now (no handle left) are not counted; dead
/// boxes get rows of their own; an object whose value is lent out by a
/// [`GcMut`](crate::GcMut) is counted with its own size only. `keep` is
/// given allocated objects of this thread's heap, and must not run user code.
pub(crate) fn partition(
    mut keep: impl FnMut(std::ptr::NonNull<crate::header::Header>, u32) -> bool,
) -> Vec<ReportRow> {
    let rt = query();
    let heap = &rt.heap;
    let mut live = TypeTally::default();
    let mut dead = TypeTally::default();
    walk_measured(heap, &mut keep, |header, index, info, value| {
        let (tally, owned) = match value {
            Value::Measured(owned) => (&mut live, owned),
            Value::LentOut => (&mut live, 0),
            Value::Dead => (&mut dead, 0),
        };
        // SAFETY: `walk_measured` passes allocated objects of `info`'s type.
        tally.add(index, unsafe { info.alloc_size_of(header) } + owned);
    });
    // (Types registered by `heap_size` code during the walk have no objects
    // in it: the tallies only grow as far as the objects seen.)
    let mut rows = Vec::new();
    for (tally, prefix) in [(&live, ""), (&dead, "<dead> ")] {
        for (name, count, size) in tally.types(heap) {
            rows.push(ReportRow {
                kind: format!("{prefix}{name}"),
                count,
                size,
                retained: None,
            });
        }
    }
    sort_rows(&mut rows, RowOrder::Largest, |r| (r.size, r.count, &r.kind));
    rows
}

/// What a walk over the heap ([`walk_measured`]) found of an object's value.
pub(crate) enum Value {
    /// The value is intact; its [`heap_size`](crate::Trace::heap_size).
    Measured(usize),
    /// The value is lent out by a [`GcMut`](crate::GcMut): nobody else may
    /// read it, so it is not measured.
    LentOut,
    /// A dead box: the value went with a collected cycle.
    Dead,
}

/// Visits every object of `heap` that has a strong handle and for which
/// `keep(object, type index)` holds, with its type and its measured value.
///
/// `heap_size` is safe user code and may do anything: drop handles, run
/// `collect()`, allocate (and so collect for growth). The object being
/// measured is pinned with a strong count (its value cannot be dropped under
/// `heap_size`). The others are not held, and not listed either: the walk
/// reads the heap's chunks slot by slot ([`ChunkSpan`](crate::alloc::ChunkSpan)), and a slot is
/// always readable (free, or an object) as long as the heap keeps its
/// chunks, which it does while any object is allocated: the walk holds one
/// object's memory (a weak count) throughout, and the large objects (each
/// an allocation of its own) are listed and held. An object freed before
/// its slot is reached is not visited; one made meanwhile in a slot not yet
/// reached is. (Holding a weak count on every object instead meant two more
/// passes over the heap and more than doubled the time of `live_report`;
/// listing every object cost 8 bytes per object, 80 MB of fresh pages at
/// 10M objects.) `keep` and `visit` must not run user code.
pub(crate) fn walk_measured(
    heap: &crate::heap::Heap,
    mut keep: impl FnMut(std::ptr::NonNull<crate::header::Header>, u32) -> bool,
    mut visit: impl FnMut(
        std::ptr::NonNull<crate::header::Header>,
        u32,
        &'static crate::types::TypeInfo,
        Value,
    ),
) {
    let (spans, large) = heap.object_spans();
    // The large objects are held (each is freed on its own); so is one
    // object in a chunk, which keeps the heap and its chunks allocated
    // whatever user code frees (see *Lifetime* at the runtime's type).
    let first_small = spans
        .iter()
        .flat_map(|span| span.slots())
        // SAFETY: chunk slots are readable (see `ChunkSpan`).
        .find(|&slot| unsafe { crate::alloc::is_allocated(slot) })
        .map(std::ptr::NonNull::cast);
    let held: Vec<_> = large.iter().copied().chain(first_small).collect();
    let _hold = crate::collect::HoldMemory::new(heap, &held);
    // One object; a function rather than a closure so that it is inlined
    // into both loops below (a closure was called, saving and restoring six
    // registers per object).
    #[inline(always)]
    fn one(
        heap: &crate::heap::Heap,
        header: std::ptr::NonNull<crate::header::Header>,
        keep: &mut impl FnMut(std::ptr::NonNull<crate::header::Header>, u32) -> bool,
        visit: &mut impl FnMut(
            std::ptr::NonNull<crate::header::Header>,
            u32,
            &'static crate::types::TypeInfo,
            Value,
        ),
    ) {
        // SAFETY: a chunk slot (readable, see `ChunkSpan`: `_hold` keeps the
        // chunks), or a large object held by `_hold`.
        let h = unsafe { header.as_ref() };
        if h.state() == 0 || h.strong() == 0 {
            return; // a free slot, or an object being dropped right now
        }
        let index = h.type_index();
        if !keep(header, index) {
            return;
        }
        let entry = heap.type_entry(index);
        let info = entry.info;
        let value = if !h.value_alive() {
            Value::Dead
        } else if !h.value_readable() {
            Value::LentOut
        } else if let Some(owned) = {
            // SAFETY: the value is intact and not lent out;
            // `__inert_heap_size` runs no user code (the trait's contract)
            // or answers `None`, so nothing can drop the value meanwhile:
            // no pin needed.
            unsafe { (info.inert_heap_size)(header) }
        } {
            Value::Measured(owned)
        } else if let Some(_pin) = {
            // SAFETY: readable (see above).
            unsafe { crate::gc::ErasedGc::new(heap, header) }
        } {
            // SAFETY: the value is intact, and pinned while `heap_size` runs.
            Value::Measured(unsafe { (info.heap_size)(header) })
        } else {
            Value::LentOut
        };
        visit(header, index, info, value);
    }
    // Plain loops, not `flat_map(..).chain(..)`: this is the whole cost of
    // `live_report`, and the adapters' state checks cost a third more
    // instructions per object.
    for span in &spans {
        for slot in span.slots() {
            one(heap, slot.cast(), &mut keep, &mut visit);
        }
    }
    for &header in &large {
        one(heap, header, &mut keep, &mut visit);
    }
}

/// The `n` types with the most live objects, most first (objgraph's
/// `most_common_types`).
///
/// ```
/// let many: Vec<_> = (0..100).map(rcycle::Gc::new).collect::<Vec<rcycle::Gc<u32>>>();
/// assert_eq!(rcycle::report::most_common_types(1)[0], ("u32".to_string(), 100));
/// ```
pub fn most_common_types(n: usize) -> Vec<(String, usize)> {
    let mut rows: Vec<_> = partition(|_, _| true)
        .into_iter()
        .map(|r| (r.kind, r.count))
        .collect();
    // objgraph's order: by count alone, then by name (no size to break a
    // tie, unlike `RowOrder::Most`: the size is not part of the answer).
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rows.truncate(n);
    rows
}
