//! The cycle collector: synchronous trial deletion (Bacon & Rajan, 2001),
//! as CPython's `gc.c` does it: trial counts beside the real ones.
//!
//! # The algorithm
//!
//! Reference counting frees everything except cycles. A garbage cycle can only
//! appear when a count drops to a *non-zero* value, so those objects are
//! remembered as *candidates* ([`Heap::buffer_candidate`]). A collection then
//! looks only at the subgraph reachable from the candidates:
//!
//! 1. [`select_roots`]: drain the candidate buffer into the node table;
//!    skip objects that died meanwhile.
//! 2. [`subtract_internal_references`] (Bacon and Rajan's *mark gray*): walk
//!    the subgraph from the roots, giving each object a
//!    *trial count* equal to its strong count, and subtract one for every
//!    edge found inside the subgraph. What is left is the number of handles
//!    held from outside the subgraph: the stack, a static, another object not
//!    reachable from the candidates, or a value that could not be traced.
//! 3. [`scan`]: everything with a trial count above zero is held from outside,
//!    and so is everything it reaches (traced a second time): those are
//!    alive. The rest is garbage.
//! 4. Take the garbage (`Subgraph::take_garbage`): its members leave the
//!    table marked `COLLECTING` (weak handles stop upgrading, counts reaching
//!    zero stop freeing).
//! 5. [`finalize_garbage`]: PEP 442 finalizers, once per object.
//! 6. [`find_resurrected`]: what a finalizer made reachable again survives.
//! 7. [`drop_garbage_values`]: drop each member's value, freeing it once
//!    no handle is left (objects still referenced after their value was
//!    dropped stay as *dead boxes* until their last handle goes).
//!
//! [`collect_cycles`] is the driver, in that order; phases 2 to 4 are
//! [`find_garbage`] (shared with the dry run), 5 to 7 [`free_garbage`]. In
//! debug builds, [`validate_roots`] and [`validate_garbage`] check the
//! header flags between phases (CPython's `validate_list`).
//!
//! The trial count of an object lives in its header's scratch word while the
//! collection examines it, and the node table ([`Subgraph`]) is one vector of
//! pointers. Real strong counts are never touched, so a panic in user `Trace`
//! code leaves the heap exactly as it was. Every traversal works on explicit
//! vectors: no recursion proportional to the graph, whatever its depth.
//!
//! Around the phases, [`collect_into`] times the collection, counts what it
//! freed (per type when someone will read it), and calls the collection
//! callbacks (`gc.callbacks`; see [`crate::stats`]) with the heap still marked
//! as collecting. [`dry_run`] runs phases 1 to 3 only, shows the garbage to a
//! report, and puts everything back.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use std::cell::Cell;

use crate::header::{
    Header, ALIVE, BUFFERED, COLLECTING, FINALIZED, UNTRACEABLE, VALUE_DROPPED, VISITED,
};
use crate::heap::Heap;
use crate::policy::Policy;
use crate::stats::{CollectPhase, CollectStats, HeapStats, Panic, Stopwatch};

mod branching;
mod edge_queue;
mod prefetch;
mod subgraph;
use subgraph::Subgraph;

/// Which objects a marking pass takes into its table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reach {
    /// The roots and everything they reach (phase 2).
    Discover,
    /// Only the objects already in the table: a garbage set's recount after
    /// its finalizers ran.
    TableOnly,
}

/// What taking the garbage out of the table does to its members.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Taking {
    /// A collection: every member is marked `COLLECTING` (weak handles stop
    /// upgrading, counts reaching zero stop freeing).
    Collect,
    /// A dry run: the heap is left exactly as it was.
    DryRun,
}

/// The collector's state on one thread: its working vectors, its
/// statistics and callbacks, and the automatic-collection policy it applies
/// after each scan and each collection.
pub(crate) struct Collector {
    /// The working vectors, kept between collections while small.
    scratch: Cell<Option<Box<Scratch>>>,
    /// Collection callbacks and cumulative statistics.
    pub stats: HeapStats,
    pub policy: Policy,
}

impl Collector {
    /// The collector of `heap` (whose triggers its policy sets).
    pub fn new(heap: &Heap) -> Collector {
        Collector {
            scratch: Cell::new(None),
            stats: HeapStats::new(),
            policy: Policy::new(heap),
        }
    }
}

/// Collects the garbage cycles reachable from the candidates of `heap`
/// (automatic collections, [`crate::collect()`], thread exit) and returns
/// the number of objects freed. Does nothing (and returns 0) if a collection
/// is already running.
pub(crate) fn collect(heap: &Heap, collector: &Collector) -> usize {
    // (Only the count leaves this frame: returning the whole statistics by
    // value cost a measurable copy in a collection of two objects.)
    let mut stats = CollectStats::default();
    collect_into(heap, collector, false, &mut stats);
    stats.freed
}

/// Collects as [`collect`] does, and returns what the collection did, with
/// the freed objects per type if `by_type`.
pub(crate) fn collect_with(heap: &Heap, collector: &Collector, by_type: bool) -> CollectStats {
    let mut stats = CollectStats::default();
    collect_into(heap, collector, by_type, &mut stats);
    stats
}

/// Collects into `stats` (all zeros if a collection is already running),
/// calling the collection callbacks before and after. Freed objects are
/// counted per type if `by_type` or if a callback will see them. A panic
/// (from a callback, or from user code during the collection) is re-raised
/// once the collection is over and every callback has run.
fn collect_into(heap: &Heap, collector: &Collector, by_type: bool, stats: &mut CollectStats) {
    if let Some(payload) = collect_catching(heap, collector, by_type, stats) {
        resume_unwind(payload);
    }
}

/// The body of [`collect_into`]: returns the first panic instead of
/// re-raising it (the collections at thread exit report it instead).
#[inline]
pub(crate) fn collect_catching(
    heap: &Heap,
    collector: &Collector,
    by_type: bool,
    stats: &mut CollectStats,
) -> Panic {
    let _running = Running::start(heap)?;
    let callbacks = collector.stats.snapshot();
    let mut first_panic: Panic = None;
    callbacks.call(CollectPhase::Start, stats, &mut first_panic);

    // Someone will read this collection's own figures.
    let observed = by_type || !callbacks.is_empty();
    let stopwatch = Stopwatch::start(observed, heap.candidate_count(), &collector.stats.sampler);
    let result = catch_unwind(AssertUnwindSafe(|| {
        collect_cycles(heap, collector, stats, observed)
    }));
    let (duration, for_total) = stopwatch.stop();
    stats.duration = duration;
    if let Some(payload) = result.unwrap_or_else(Some) {
        first_panic.get_or_insert(payload);
    }
    heap.count_collection();
    collector.stats.record(stats, for_total);

    callbacks.call(CollectPhase::Stop, stats, &mut first_panic);
    first_panic
}

/// Marks the heap as collecting while it lives (so a collection is never
/// started from inside another, or from inside a dry run). The flag is reset
/// on every path out, panics included.
struct Running<'a>(&'a Heap);

impl<'a> Running<'a> {
    /// `None` if a collection is already running.
    fn start(heap: &'a Heap) -> Option<Running<'a>> {
        if !heap.begin_collecting() {
            return None;
        }
        Some(Running(heap))
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.end_collecting();
    }
}

/// Phases 1 to 4. Fills `stats`; returns the first panic of a finalizer or
/// `Drop` impl (caught so the garbage set is finished first).
fn collect_cycles(
    heap: &Heap,
    collector: &Collector,
    stats: &mut CollectStats,
    by_type: bool,
) -> Panic {
    let mut scratch = collector.scratch.take().unwrap_or_default();
    // 1. The roots, straight into the table, put back in the buffer if user
    //    `Trace` code panics before the garbage is taken.
    let roots = select_roots(heap, &mut scratch);
    stats.roots = roots.count;
    // 2-4. Subtract internal references, scan, take the garbage.
    let examined = find_garbage(heap, roots.scratch, Taking::Collect);
    roots.garbage_taken(); // nothing can panic from here on
    validate_garbage(&scratch.garbage, Taking::Collect);
    stats.examined = examined;
    let found = scratch.garbage.len();
    collector.policy.after_scan(heap, examined - found, found);
    // 5-8. Finalize, find the resurrected, drop the values, free.
    let first_panic = if found == 0 {
        None
    } else {
        free_garbage(heap, &mut scratch.garbage, stats, by_type)
    };
    scratch.keep_if_small(collector);
    collector.policy.after_collection(heap);
    first_panic
}

/// The vectors a collection works in, kept by the heap from one collection
/// to the next while they are small, so that a collection of a few
/// candidates allocates nothing. (A big collection allocates its own: its
/// work dwarfs the allocation, and its memory should not stay held.)
#[derive(Default)]
pub(crate) struct Scratch {
    subgraph: Subgraph,
    garbage: Vec<NonNull<Header>>,
}

impl Scratch {
    /// Above this many objects, a collection's vectors are freed after it.
    /// (Lower under Miri, so that its tests, which cannot be that big, run
    /// both sides of this limit and of [`subgraph`]'s `ADOPT_ABOVE`.)
    const KEEP_UP_TO: usize = if cfg!(miri) { 1 << 6 } else { 1 << 14 };

    /// Hands the (emptied) vectors back to the collector, unless they grew
    /// big.
    fn keep_if_small(mut self: Box<Self>, collector: &Collector) {
        self.subgraph.clear();
        self.garbage.clear();
        if self.subgraph.is_small(Self::KEEP_UP_TO) && self.garbage.capacity() <= Self::KEEP_UP_TO {
            collector.scratch.set(Some(self));
        }
    }
}

/// The garbage a collection would free now, found exactly as [`collect`]
/// finds it (phases 1 to 3), handed to `inspect` while every member is
/// intact — then nothing is freed, finalized or dropped (a *dry run*, what
/// Python's `gc.DEBUG_SAVEALL` shows). The heap is left as it was: every
/// candidate goes back in the buffer in its old order (so with its old
/// index), and `VISITED` is cleared. `None` if a collection is running.
///
/// `inspect` receives the number of roots, of objects examined, and the
/// garbage set. It may run user code (labelled `Trace`, `heap_size`): the
/// heap stays marked as collecting (so no collection can free the set), and
/// each member's memory is held by an extra weak count until it returns; a
/// member whose value was dropped meanwhile must be skipped
/// (`value_alive`).
pub(crate) fn dry_run<R>(
    heap: &Heap,
    inspect: impl FnOnce(usize, usize, &[NonNull<Header>]) -> R,
) -> Option<R> {
    let _running = Running::start(heap)?;
    let (roots, examined, garbage) = {
        // Declared before `find_garbage`'s table: on a panic in user `Trace`
        // code, the table clears `VISITED` before the buffer is restored.
        let saved = Rebuffer {
            heap,
            objects: heap.take_candidates(|_| true),
        };
        let mut scratch = Scratch::default();
        let mut roots = 0;
        for root in saved.objects.iter().filter(|c| is_root(c)) {
            scratch.subgraph.add(*root);
            roots += 1;
        }
        validate_roots(&scratch.subgraph.nodes[..roots]);
        let examined = find_garbage(heap, &mut scratch, Taking::DryRun);
        validate_garbage(&scratch.garbage, Taking::DryRun);
        (roots, examined, std::mem::take(&mut scratch.garbage))
        // `saved` drops here and rebuffers every candidate.
    };
    let _hold = HoldMemory::new(heap, &garbage);
    Some(inspect(roots, examined, &garbage))
}

/// The heap held still for a walk over every object that writes to their
/// headers (the heap graph's capture): marked as collecting, so no
/// collection starts, with the candidate buffer taken aside, so no object is
/// `BUFFERED` and every `scratch` word is free (a `BUFFERED` object's scratch
/// is its buffer index). On drop, on every path, every candidate goes back
/// in the buffer in its old order (so with its old index), as after a dry
/// run, and the heap stops being marked. `None` if a collection (or a dry
/// run) is running: its objects may carry `VISITED`.
///
/// Whoever sets flags on objects meanwhile clears them before this drops
/// (declare the guard that clears them after this one).
pub(crate) struct Quiesced<'a> {
    // Dropped in this order: the buffer is restored, then the mark goes.
    _saved: Rebuffer<'a>,
    _running: Running<'a>,
}

impl<'a> Quiesced<'a> {
    pub(crate) fn start(heap: &'a Heap) -> Option<Quiesced<'a>> {
        let running = Running::start(heap)?;
        Some(Quiesced {
            _saved: Rebuffer {
                heap,
                objects: heap.take_candidates(|_| true),
            },
            _running: running,
        })
    }
}

/// An extra weak count on every member of a set: user code run by a dry
/// run's `inspect` may drop a member's last handle (then its value goes, but
/// its header stays readable) and the memory is freed only when this drops.
pub(crate) struct HoldMemory<'a> {
    heap: &'a Heap,
    members: &'a [NonNull<Header>],
}

impl<'a> HoldMemory<'a> {
    pub(crate) fn new(heap: &'a Heap, members: &'a [NonNull<Header>]) -> HoldMemory<'a> {
        for h in members {
            // SAFETY: members are live objects (strong > 0, nothing freed
            // since they were found).
            unsafe { h.as_ref() }.inc_weak();
        }
        HoldMemory { heap, members }
    }
}

impl Drop for HoldMemory<'_> {
    fn drop(&mut self) {
        for &h in self.members {
            // SAFETY: we own the weak count taken in `new`; `VISITED` and
            // `COLLECTING` are clear on members (their table is gone).
            unsafe { self.heap.release_weak(h) };
        }
    }
}

/// Puts candidates back in the candidate buffer, in their old order, when it
/// drops: a dry run and [`Quiesced`] put every candidate back this way, on
/// every path.
struct Rebuffer<'a> {
    heap: &'a Heap,
    objects: Vec<NonNull<Header>>,
}

impl Drop for Rebuffer<'_> {
    fn drop(&mut self) {
        // Roots had strong > 0 when selected and no object was freed since
        // (only `Trace` code ran), so they are live. (The other candidates
        // wait in the drop queue, whose implicit weak keeps their memory.)
        if !self.objects.is_empty() {
            self.heap.rebuffer(self.objects.drain(..));
        }
        self.heap
            .recycle_candidate_vec(std::mem::take(&mut self.objects));
    }
}

/// Phase 1: drains the candidate buffer into the (empty) node table of
/// `scratch`, keeping the candidates that may be part of a garbage cycle
/// ([`is_root`]), in one pass over the buffer (see
/// [`Subgraph::take_roots`]: above 16,384 candidates the buffer's own
/// vector becomes the table).
fn select_roots<'a>(heap: &'a Heap, scratch: &'a mut Scratch) -> RootsInTable<'a> {
    let count = scratch.subgraph.take_roots(heap, is_root);
    validate_roots(&scratch.subgraph.nodes[..count]);
    RootsInTable {
        heap,
        scratch,
        count,
    }
}

/// A collection's scratch vectors while the first `count` nodes of its table
/// are its roots, in their buffer order (phases 2 and 3 only append to the
/// table). If marking or scanning is cut short by a panic in user `Trace`
/// code, dropping this clears the table and puts the roots back in the
/// candidate buffer, in that order, so that the next collection retries
/// them. [`garbage_taken`](Self::garbage_taken) ends that duty (taking the
/// garbage reorders the table, and runs no user code).
struct RootsInTable<'a> {
    heap: &'a Heap,
    scratch: &'a mut Scratch,
    count: usize,
}

impl Drop for RootsInTable<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.count > 0 {
            self.put_back();
        }
    }
}

impl RootsInTable<'_> {
    /// The garbage is taken: nothing is put back.
    fn garbage_taken(mut self) {
        self.count = 0;
    }

    /// After a panic in user `Trace` code: clears the table and puts the
    /// roots back in the buffer.
    #[cold]
    #[inline(never)]
    fn put_back(&mut self) {
        let subgraph = &mut self.scratch.subgraph;
        let roots = subgraph.nodes[..self.count].to_vec();
        // Table flags off first: a buffered object carries none.
        subgraph.clear();
        // Roots had strong > 0 when selected and no object was freed since
        // (only `Trace` code ran), so they are live.
        self.heap.rebuffer(roots);
    }
}

/// Whether a candidate may be part of a garbage cycle: it is still referenced
/// and its value is intact. (A candidate whose count reached zero is being
/// dropped, or waits in the drop queue; one whose value went with a collected
/// cycle has no edges.)
fn is_root(candidate: &NonNull<Header>) -> bool {
    // SAFETY: buffered objects are live (an object leaves the buffer before
    // its memory is freed).
    let h = unsafe { candidate.as_ref() };
    h.strong() > 0 && h.value_alive()
}

/// Phase 2: finds the subgraph reachable from the roots in the table
/// (Bacon and Rajan's *mark gray*), giving each object a trial count equal
/// to its strong count and subtracting one for every edge found inside the
/// subgraph.
fn subtract_internal_references(heap: &Heap, subgraph: &mut Subgraph) {
    subgraph.mark(heap, Reach::Discover);
}

/// Phase 3: marks alive every object held from outside the subgraph (trial
/// count above zero, or not fully traceable) and everything it reaches.
#[inline]
fn scan(heap: &Heap, subgraph: &mut Subgraph) {
    subgraph.scan(heap);
}

/// Phases 2 to 4 from the roots already in the table: returns the number of
/// objects examined, and leaves the garbage set in `scratch.garbage` and the
/// subgraph cleared. A dead box (its value already went with an earlier
/// cycle) has no edges and nothing left to drop: it is freed by its last
/// handle, not here, even when only garbage refers to it.
fn find_garbage(heap: &Heap, scratch: &mut Scratch, taking: Taking) -> usize {
    let Scratch { subgraph, garbage } = scratch;
    subtract_internal_references(heap, subgraph);
    scan(heap, subgraph);
    let examined = subgraph.nodes.len();
    // Phase 4, which also clears the subgraph's flags (before anything can
    // be freed).
    subgraph.take_garbage(garbage, taking);
    examined
}

/// After phase 1 (debug builds; CPython's `validate_list`): every root is
/// referenced, has its value, is out of the buffer, and is in the table
/// (`VISITED`, its whole strong count as trial count) and in no other state
/// of a collection.
#[inline]
fn validate_roots(roots: &[NonNull<Header>]) {
    if cfg!(debug_assertions) {
        for root in roots {
            // SAFETY: roots are live (selected with strong > 0, nothing freed
            // since).
            let h = unsafe { root.as_ref() };
            debug_assert!(h.strong() > 0 && h.value_alive(), "a root is being dropped");
            debug_assert!(
                h.has(VISITED) && h.scratch() == h.strong(),
                "a root is not in the table"
            );
            debug_assert!(
                !h.has(BUFFERED | ALIVE | UNTRACEABLE | COLLECTING),
                "a root still carries a buffer flag, or a later phase's"
            );
        }
    }
}

/// After phase 4 (debug builds): every member has its value, no table flag
/// is left on it, and it is marked `COLLECTING` exactly when collecting.
#[inline]
fn validate_garbage(garbage: &[NonNull<Header>], taking: Taking) {
    if cfg!(debug_assertions) {
        for member in garbage {
            // SAFETY: members are live (nothing freed since they were found).
            let h = unsafe { member.as_ref() };
            debug_assert!(h.value_alive(), "a garbage member without its value");
            debug_assert!(
                !h.has(VISITED | ALIVE | UNTRACEABLE | BUFFERED),
                "a garbage member still carries a table flag"
            );
            debug_assert_eq!(h.has(COLLECTING), taking == Taking::Collect);
        }
    }
}

/// Phase 4: frees a garbage set, filling `freed`, `resurrected` and (if
/// `by_type`) `freed_by_type` of `stats`. Panics from finalizers and `Drop`
/// impls are caught and the work is finished; the first one is returned.
/// (`garbage` is left holding pointers to freed objects, to be cleared.)
///
/// The figures say what happened: a member whose value this collection
/// dropped counts as freed, one handed back alive as resurrected. A member
/// that the recount after the finalizers found alive can still go in this
/// collection (a finalizer dropped its last handle, or only other members
/// held it): [`Settle`] watches those until the values are dropped.
fn free_garbage(
    heap: &Heap,
    garbage: &mut Vec<NonNull<Header>>,
    stats: &mut CollectStats,
    by_type: bool,
) -> Panic {
    let mut first_panic = None;
    let mut survivors = Vec::new();
    // (The members are already `COLLECTING`: `Taking::Collect`.)
    if finalize_garbage(heap, garbage, &mut first_panic) {
        let members = std::mem::take(garbage);
        // (On a panic in the recount every member is handed back alive, and
        // counted resurrected.)
        stats.resurrected = members.len();
        (*garbage, survivors) = find_resurrected(heap, members);
        stats.resurrected = survivors.len();
    }
    stats.freed = garbage.len();
    let counts = by_type.then(|| count_types(heap, garbage));
    // (Only when it has work: the common collection, no survivor and no
    // per-type counts, skips building and dropping it.)
    let settle = (!survivors.is_empty() || counts.is_some()).then(|| Settle {
        heap,
        survivors,
        stats,
        counts,
    });
    heap.drop_scope(|| drop_garbage_values(heap, garbage, &mut first_panic));
    // Counts the survivors that went meanwhile (also on a panic out of the
    // drop loop, as it unwinds).
    drop(settle);
    // The set was freed in the order it was found: put memory back in
    // address order if much of it went (see `crate::alloc`).
    heap.tidy_memory();
    first_panic
}

/// The survivors of a garbage set, each holding an extra weak count (taken
/// by [`find_resurrected`]) while the set's values are dropped. On drop it
/// counts those whose value went meanwhile as freed instead of resurrected,
/// finishes the per-type counts, and lets go of the weak counts.
struct Settle<'a> {
    heap: &'a Heap,
    survivors: Vec<NonNull<Header>>,
    stats: &'a mut CollectStats,
    /// Freed members per type index, if asked for.
    counts: Option<Vec<usize>>,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        for &member in &self.survivors {
            // SAFETY: our extra weak count keeps the header readable.
            let h = unsafe { member.as_ref() };
            if !h.value_alive() {
                self.stats.freed += 1;
                self.stats.resurrected -= 1;
                if let Some(counts) = &mut self.counts {
                    counts[h.type_index() as usize] += 1;
                }
            }
            // SAFETY: we own the weak count taken in `find_resurrected`; the
            // member is neither `COLLECTING` (`survive` cleared it) nor
            // `VISITED` (its table is gone).
            unsafe { self.heap.release_weak(member) };
        }
        if let Some(counts) = self.counts.take() {
            self.stats.freed_by_type = by_type_names(self.heap, &counts);
        }
    }
}

/// The number of members per type index. Runs no user code: the type index
/// is in each header.
fn count_types(heap: &Heap, members: &[NonNull<Header>]) -> Vec<usize> {
    let mut counts = vec![0usize; heap.type_count() + 1];
    for h in members {
        // SAFETY: members are live until `drop_garbage_values`.
        counts[unsafe { h.as_ref() }.type_index() as usize] += 1;
    }
    counts
}

/// Counts per type index as counts per type name, most first (then by name).
fn by_type_names(heap: &Heap, counts: &[usize]) -> Vec<(&'static str, usize)> {
    let mut by_type: Vec<_> = (1..counts.len())
        .filter(|&i| counts[i] > 0)
        .map(|i| ((heap.type_entry(i as u32).info.type_name)(), counts[i]))
        .collect();
    by_type.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    by_type
}

/// Runs the finalizer of every member that has one and has not run it yet.
/// Returns whether any ran (then the set must be recounted).
fn finalize_garbage(heap: &Heap, garbage: &[NonNull<Header>], first_panic: &mut Panic) -> bool {
    if !heap.any_finalizer() {
        return false;
    }
    let mut ran = false;
    for &header in garbage {
        // SAFETY: members are live; their values are intact in this phase
        // (only the collector drops a member's value).
        let h = unsafe { header.as_ref() };
        let entry = heap.type_of(h);
        if !entry.has_finalizer || h.has(FINALIZED) {
            continue;
        }
        h.set(FINALIZED);
        ran = true;
        let finalize = entry.info.finalize;
        // SAFETY: the value is intact (see above).
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { finalize(header) }));
        if let Err(payload) = result {
            first_panic.get_or_insert(payload);
        }
    }
    ran
}

/// After finalizers ran: recounts the set (finalizers may have changed its
/// edges and added outside handles) and returns the members that are still
/// garbage, and the survivors. The survivors, and whatever they reach, are
/// handed back: `COLLECTING` is cleared on them and they go back to the
/// candidate buffer, so a later collection frees them once they are garbage
/// again (they keep `FINALIZED`: their finalizer never reruns). Each survivor
/// holds an extra weak count, for [`Settle`] to release.
fn find_resurrected(
    heap: &Heap,
    garbage: Vec<NonNull<Header>>,
) -> (Vec<NonNull<Header>>, Vec<NonNull<Header>>) {
    // If a `Trace` impl panics during the recount, every member survives this
    // collection and is handed back to the heap as if it had never been
    // selected.
    struct HandBackOnPanic<'a> {
        heap: &'a Heap,
        members: &'a [NonNull<Header>],
        armed: bool,
    }
    impl Drop for HandBackOnPanic<'_> {
        fn drop(&mut self) {
            if self.armed {
                survive(self.heap, self.members.iter().copied());
            }
        }
    }
    let (survivors, still_garbage): (Vec<_>, Vec<_>) = {
        let mut release = HandBackOnPanic {
            heap,
            members: &garbage,
            armed: true,
        };
        // Declared after `release`: on a panic in user `Trace` code, the
        // table clears its flags before the members are handed back.
        let mut subgraph = Subgraph::default();
        for &member in &garbage {
            subgraph.add(member);
        }
        mark_trial_counts(heap, &mut subgraph);
        scan(heap, &mut subgraph);
        release.armed = false;
        garbage
            .iter()
            .copied()
            .partition(|&member| subgraph.is_alive(member))
        // `subgraph` drops here, clearing its flags before members are
        // buffered (`scratch` then holds their buffer index).
    };
    for member in &survivors {
        // SAFETY: members are live (nothing was freed since they were found).
        unsafe { member.as_ref() }.inc_weak();
    }
    survive(heap, survivors.iter().copied());
    (still_garbage, survivors)
}

/// Subtracts the edges between the nodes already in `subgraph` from their
/// trial counts, without adding the objects they reach.
fn mark_trial_counts(heap: &Heap, subgraph: &mut Subgraph) {
    subgraph.mark(heap, Reach::TableOnly);
}

/// Hands members of a garbage set back to the heap alive: out of the
/// collector's hands, into the candidate buffer — or, if a finalizer dropped
/// every handle to one, into the drop queue.
fn survive(heap: &Heap, members: impl Iterator<Item = NonNull<Header>>) {
    for member in members {
        // SAFETY: members are live and their values intact.
        let h = unsafe { member.as_ref() };
        h.clear(COLLECTING);
        if h.strong() > 0 {
            heap.rebuffer([member]);
        } else {
            // SAFETY: strong zero, value intact, no longer `COLLECTING`.
            unsafe { heap.queue_drop(member) };
        }
    }
}

/// Drops every member's value, then frees the member if no handle refers to
/// it any more. A member is flagged `VALUE_DROPPED` before its destructor
/// starts, so a `Drop` impl that reaches it through a neighbour panics on
/// deref instead of reading a value being torn down. Once its value is gone
/// a member is no longer `COLLECTING`: it is a dead box, which its last
/// handle frees — the handles that later members' destructors drop, or a
/// handle a `Drop` impl stashed somewhere (then deref panics, and its
/// memory goes with that handle).
fn drop_garbage_values(heap: &Heap, garbage: &[NonNull<Header>], first_panic: &mut Panic) {
    // One `catch_unwind` for the whole loop, re-entered after a panic at the
    // member after the one that panicked.
    let mut next = 0;
    while next < garbage.len() {
        let result = catch_unwind(AssertUnwindSafe(|| {
            while next < garbage.len() {
                let header = garbage[next];
                next += 1;
                // SAFETY: a member stays allocated until `release_member`:
                // a count reaching zero does not free a `COLLECTING` object.
                let h = unsafe { header.as_ref() };
                let drop_value = heap.type_of(h).info.drop_value;
                debug_assert!(h.value_alive(), "a garbage member's value is dropped once");
                h.set(VALUE_DROPPED);
                // SAFETY: the value is intact (only this loop drops members'
                // values, once each: `next` moved past it before the call)
                // and no reference to it can be created any more.
                unsafe { drop_value(header) };
                // SAFETY: this member's value was just dropped.
                unsafe { release_member(heap, header) };
            }
        }));
        if let Err(payload) = result {
            first_panic.get_or_insert(payload);
            // The member whose destructor panicked: its value counts as
            // dropped (as `std` does for a panicking `drop_in_place`).
            // SAFETY: as above.
            unsafe { release_member(heap, garbage[next - 1]) };
        }
    }
}

/// Hands a member whose value was just dropped back to the counts: no longer
/// `COLLECTING`, and freed now if no handle refers to it.
///
/// # Safety
/// `header` is a `COLLECTING` member of the garbage set being freed, whose
/// value this collection has just dropped.
unsafe fn release_member(heap: &Heap, header: NonNull<Header>) {
    // SAFETY: still allocated: `COLLECTING` kept it.
    let h = unsafe { header.as_ref() };
    h.clear(COLLECTING);
    if h.strong() == 0 {
        // SAFETY: strong is zero and the value dropped: the implicit weak is
        // released exactly once, here (with `COLLECTING` clear, no count
        // reaching zero will release it again).
        unsafe { heap.release_weak(header) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_do_not_overlap() {
        use crate::header::{
            ACYCLIC, ALIVE, BUFFERED, HAS_ID, MUT_BORROWED, PINNED, UNTRACEABLE, VISITED,
        };
        let all = [
            BUFFERED,
            VALUE_DROPPED,
            COLLECTING,
            FINALIZED,
            VISITED,
            ACYCLIC,
            ALIVE,
            UNTRACEABLE,
            MUT_BORROWED,
            HAS_ID,
            PINNED,
        ];
        let mut seen = 0;
        for f in all {
            assert_eq!(seen & f.bits(), 0);
            seen |= f.bits();
        }
        // Every flag lies below the type index.
        assert_eq!(seen, (1 << crate::header::FLAG_BITS) - 1);
    }
}
