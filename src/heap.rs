//! The per-thread heap: object memory, the type table, the candidate buffer,
//! the automatic-collection trigger, the iterative freeing of objects whose
//! count reaches zero, and the final collections at thread exit (and after
//! it: the *exited* state).
//!
//! `Gc` is `!Send`, so every object belongs to the heap of the thread that
//! made it and only that thread ever touches it: no atomics, no locks.

use std::alloc::Layout;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use crate::alloc::{class_of, Slabs};
use crate::header::{
    Header, TypeEntry, TypeInfo, TypeTable, BUFFERED, COLLECTING, VALUE_DROPPED, VISITED,
};
use crate::trace::Trace;

/// The threshold of buffered candidates that starts an automatic collection,
/// unless [`crate::set_threshold`] says otherwise.
pub(crate) const DEFAULT_THRESHOLD: usize = 10_000;

/// The number of objects may grow by this many (or by half, if more) between
/// collections before waiting candidates are collected. A candidate count
/// alone lets unbounded garbage wait: one candidate can be the last handle
/// into a big dead structure (the root of a tree whose nodes point back to
/// their parents), and 10,000 of those can be hundreds of thousands of
/// objects.
const MIN_GROWTH: usize = 8192;

/// The most collections the thread-exit teardown runs. One usually frees
/// everything; another is needed only where a `Drop` impl or finalizer let go
/// of handles that kept more cycles alive. A `Drop` that makes a new garbage
/// cycle every time it runs would keep an unbounded loop collecting forever:
/// after this many rounds, what is still waiting is left to the exited heap
/// (collected at the next trigger, if any comes; otherwise leaked, which is
/// safe).
pub(crate) const FINAL_COLLECTIONS: usize = 8;

/// One thread's heap.
///
/// # Invariants
///
/// The `UnsafeCell` fields are only borrowed inside this module's methods, for
/// the duration of a short operation that runs no user code (no `Drop`, no
/// `Trace`), so no two borrows of one field ever overlap: user code that
/// re-enters the heap (a `Drop` that drops a `Gc`, a `Trace` impl) always
/// finds every field unborrowed.
///
/// # Lifetime
///
/// A heap is a `Box` leaked by `new_heap`, and the thread's `HEAP` points to
/// it until it is freed. It is freed (and `HEAP` set back to null) only by
/// [`free_if_exited_and_empty`], and only when
///
/// 1. `exited` is set: the thread's teardown has run (or the heap was made
///    after it), so nothing else will free it;
/// 2. no object is allocated (`live_objects() == 0`): no `Gc`, `WeakGc`,
///    queue or collector table refers to its memory;
/// 3. neither `collecting` nor `dropping` is set.
///
/// Every function of the crate that holds a `&Heap` while user code runs
/// either has `collecting` or `dropping` set, or keeps an object of the heap
/// allocated until it stops using the `&Heap` (the object whose `Drop`,
/// `Trace`, finalizer or `heap_size` is running, whose implicit weak count or
/// pin holds its memory; the objects a report holds with `HoldMemory`). So
/// 2 or 3 fails while such a frame is on the stack, and a heap is never freed
/// under a function that still uses it. `free_if_exited_and_empty` takes no
/// `&Heap`, and is called only by functions that received none as an
/// argument, after the heap methods they called have returned: no function
/// argument (whose borrow would be protected for the whole call) refers to the
/// heap when it goes.
pub(crate) struct Heap {
    slabs: UnsafeCell<Slabs>,
    types: UnsafeCell<TypeTable>,
    /// Objects whose count dropped to a non-zero value: possible roots of a
    /// garbage cycle. Each is in here at most once (its `BUFFERED` flag).
    candidates: UnsafeCell<Vec<NonNull<Header>>>,
    /// An empty vector with capacity, swapped in for the candidate buffer
    /// when a collection takes it (so the buffer does not regrow from
    /// nothing after every collection).
    spare_candidates: Cell<Vec<NonNull<Header>>>,
    /// The collector's working vectors, kept between collections.
    pub(crate) scratch: Cell<Option<Box<crate::collect::Scratch>>>,
    /// Objects whose count reached zero while another object's value was
    /// being dropped: their values are dropped by the outermost drop loop,
    /// so dropping a long chain never recurses.
    pending_drops: UnsafeCell<Vec<NonNull<Header>>>,
    dropping: Cell<bool>,
    pub(crate) collecting: Cell<bool>,
    /// The thread's teardown has run (or the heap was made after it): the
    /// heap collects at every trigger (see [`exited_op_end`]) and frees
    /// itself once its last object goes (see *Lifetime* above).
    exited: Cell<bool>,
    enabled: Cell<bool>,
    threshold: Cell<usize>,
    /// Candidate count at which the next automatic collection starts:
    /// `threshold`, raised to the size of the live subgraph the last
    /// collection had to walk (so walking it again is amortized).
    next_collection: Cell<usize>,
    /// Live objects the last collection walked.
    last_survivors: Cell<usize>,
    pub(crate) collections: Cell<u64>,
    pub(crate) freed_total: Cell<u64>,
    /// Collection callbacks and cumulative statistics.
    pub(crate) stats: crate::stats::HeapStats,
    /// The ids heap snapshots gave objects ([`crate::report::ids`]): `None`
    /// until the first snapshot or DevTools export. Taken out and put back
    /// around operations that run no user code.
    pub(crate) snapshot_ids: Cell<Option<Box<crate::report::ids::SnapshotIds>>>,
    /// Where each live object was allocated (cargo feature `sites`).
    #[cfg(feature = "sites")]
    sites: UnsafeCell<crate::addr_map::AddrMap<&'static std::panic::Location<'static>>>,
}

thread_local! {
    /// The current thread's heap, created on first use. A plain pointer with
    /// no destructor: it stays readable while other thread-locals are being
    /// destroyed, so a `Gc` kept in one of them can still be dropped.
    static HEAP: Cell<*const Heap> = const { Cell::new(ptr::null()) };
    /// Runs the final collection when the thread exits.
    static TEARDOWN: Teardown = const { Teardown };
}

struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        let heap = HEAP.with(Cell::get);
        if heap.is_null() {
            return;
        }
        {
            // SAFETY: a non-null `HEAP` points to the thread's live heap (see
            // *Lifetime* at `Heap`).
            let h = unsafe { &*heap };
            if h.collecting.get() || h.dropping.get() {
                // Thread-locals destroyed from inside a collection or drop loop
                // (`exit` called by a `Drop` impl): the heap is in use below
                // us, and stays as it is.
                return;
            }
            // The final collections call no collection callback.
            h.stats.thread_exiting();
            // Objects left queued by a panicking `Drop` go first. Nothing may
            // unwind out of a thread-local destructor (the process would
            // abort): panics are reported and dropped, and the teardown goes on.
            // (A panicking `Drop` stops a drop loop, leaving the rest queued:
            // retry, a bounded number of times.)
            for _ in 0..FINAL_COLLECTIONS {
                match catch_unwind(AssertUnwindSafe(|| h.drop_scope(|| {}))) {
                    Ok(()) => break,
                    Err(payload) => report_contained_panic(payload),
                }
            }
            // Freeing one garbage set can leave another behind (cycles that
            // only the first kept alive): repeat while something goes, a
            // bounded number of times.
            for _ in 0..FINAL_COLLECTIONS {
                if crate::collect::collect_contained(h) == 0 {
                    break;
                }
            }
            // `RCYCLE_REPORT_AT_EXIT=1`: print what is left.
            crate::report::daemon::at_thread_exit(h);
            // Objects may outlive this (held by thread-locals destroyed later,
            // or left by the bound above): from now on the heap collects at
            // every trigger and frees itself with its last object.
            h.enter_exited();
        }
        // SAFETY: this destructor took no `&Heap` argument and the heap
        // methods it called have returned (`h` is not used again).
        unsafe { free_if_exited_and_empty() };
    }
}

/// Reports a panic caught by a collection at or after thread exit, which is
/// not re-raised: one line on stderr (the panic hook has already printed the
/// panic's message), written straight to the process's stderr (test capture
/// may be gone at thread exit). The payload is dropped; if its own `Drop`
/// panics, that second payload is leaked.
#[cold]
pub(crate) fn report_contained_panic(payload: Box<dyn Any + Send>) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "rcycle: a Drop impl or finalizer panicked while objects were freed at thread exit; \
         the panic was not re-raised (unwinding out of a thread-local destructor aborts \
         the process) and the freeing went on"
    );
    if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(again);
    }
}

/// Ends an outermost operation (the end of the outermost drop loop, a
/// candidate buffered outside any, the last `WeakGc` of an object dropped)
/// on an exited heap: collects the candidates waiting, with panics contained
/// as at thread exit, then frees the heap if no object is left. Does nothing
/// if the thread has no heap, the heap has not exited, or a collection or drop
/// loop is running (then that is not the outermost operation, and candidates
/// wait: a `Drop` that makes a new garbage cycle each time it runs gets one
/// collection per trigger, never a loop).
///
/// # Safety
/// As for [`free_if_exited_and_empty`].
#[cold]
#[inline(never)]
pub(crate) unsafe fn exited_op_end() {
    let heap = HEAP.with(Cell::get);
    if heap.is_null() {
        return;
    }
    {
        // SAFETY: a non-null `HEAP` points to the thread's live heap.
        let h = unsafe { &*heap };
        if !h.exited.get() || h.collecting.get() || h.dropping.get() {
            return;
        }
        if h.candidate_count() > 0 {
            crate::collect::collect_contained(h);
        }
    }
    // SAFETY: forwarded (`h` is not used again).
    unsafe { free_if_exited_and_empty() }
}

/// Frees the thread's heap if it has exited, no object is left and no
/// collection or drop loop runs (see *Lifetime* at [`Heap`]).
///
/// # Safety
/// The caller received no `&Heap` as an argument, holds no `&Heap` it will
/// use again, and the heap methods it called have returned.
pub(crate) unsafe fn free_if_exited_and_empty() {
    let heap = HEAP.with(Cell::get);
    if heap.is_null() {
        return;
    }
    {
        // SAFETY: a non-null `HEAP` points to the thread's live heap.
        let h = unsafe { &*heap };
        if !h.exited.get() || h.live_objects() != 0 || h.collecting.get() || h.dropping.get() {
            return;
        }
        // SAFETY: short borrow, no user code; no object is left, so no chunk
        // holds one.
        unsafe { (*h.slabs.get()).release_all() };
    }
    // A later `Gc::new` on this thread (from another thread-local's
    // destructor) makes a new heap.
    HEAP.with(|c| c.set(ptr::null()));
    // SAFETY: conditions 1-3 of *Lifetime* at `Heap` hold (checked above), so
    // nothing refers to the heap or uses it; no function argument refers to it
    // (caller); the pointer came from `Box::into_raw` in `new_heap`. (Dropping
    // it may run user code, the `Drop` of collection callbacks: `HEAP` no
    // longer points to it.)
    drop(unsafe { Box::from_raw(heap.cast_mut()) });
}

/// The current thread's heap.
///
/// (The reference is only as `'static` as the heap: an exited heap is freed
/// with its last object, see *Lifetime* at [`Heap`]. Callers use it for the
/// operation at hand, and pass it to nothing that could free the heap.)
#[inline]
pub(crate) fn heap() -> &'static Heap {
    let p = HEAP.with(Cell::get);
    if p.is_null() {
        return new_heap();
    }
    // SAFETY: a non-null `HEAP` points to a live, leaked `Box<Heap>` (see
    // *Lifetime* at `Heap`).
    unsafe { &*p }
}

/// The current thread's heap, known to exist.
///
/// # Safety
/// An object of this thread's heap is allocated (the caller holds a count
/// of it), so `HEAP` is not null (see *Lifetime* at [`Heap`]).
#[inline]
pub(crate) unsafe fn heap_of_live_object() -> &'static Heap {
    let p = HEAP.with(Cell::get);
    debug_assert!(!p.is_null());
    // SAFETY: non-null (caller) and live (see *Lifetime* at `Heap`).
    unsafe { &*p }
}

/// The current thread's heap, as a pointer, for the entry points that may
/// end by freeing it ([`Heap::drop_unreferenced`],
/// [`Heap::buffer_candidate`]).
#[inline]
pub(crate) fn heap_ptr() -> *const Heap {
    let p = HEAP.with(Cell::get);
    if p.is_null() {
        return new_heap();
    }
    p
}

#[cold]
fn new_heap() -> &'static Heap {
    let heap = Box::into_raw(Box::new(Heap::new()));
    HEAP.with(|c| c.set(heap));
    // Register the thread-exit collection. Fails if the thread's teardown has
    // already run (a `Gc` made by a thread-local's destructor): the heap
    // starts in the exited state, and frees itself with its last object.
    if TEARDOWN.try_with(|_| {}).is_err() {
        // SAFETY: just leaked; see `heap()`.
        unsafe { &*heap }.enter_exited();
    }
    // SAFETY: just leaked; see `heap()`.
    unsafe { &*heap }
}

impl Heap {
    fn new() -> Heap {
        let mut slabs = Slabs::new();
        slabs.set_live_limit(MIN_GROWTH);
        Heap {
            slabs: UnsafeCell::new(slabs),
            types: UnsafeCell::new(TypeTable::new()),
            candidates: UnsafeCell::new(Vec::new()),
            spare_candidates: Cell::new(Vec::new()),
            scratch: Cell::new(None),
            pending_drops: UnsafeCell::new(Vec::new()),
            dropping: Cell::new(false),
            collecting: Cell::new(false),
            exited: Cell::new(false),
            enabled: Cell::new(true),
            threshold: Cell::new(DEFAULT_THRESHOLD),
            next_collection: Cell::new(DEFAULT_THRESHOLD),
            last_survivors: Cell::new(0),
            collections: Cell::new(0),
            freed_total: Cell::new(0),
            stats: crate::stats::HeapStats::new(),
            snapshot_ids: Cell::new(None),
            #[cfg(feature = "sites")]
            sites: UnsafeCell::new(Default::default()),
        }
    }

    /// After an object was made: if the number of objects grew past the
    /// limit set at the last collection and candidates are waiting, collect
    /// them before the heap grows any further.
    #[inline]
    pub fn after_alloc(&self) {
        // SAFETY: short borrow, no user code.
        if unsafe { (*self.slabs.get()).past_live_limit() } {
            self.collect_for_growth();
        }
    }

    #[cold]
    fn collect_for_growth(&self) {
        if self.candidate_count() > 0 && self.enabled.get() && !self.collecting.get() {
            // Sets the next limit (`reset_growth_limit`).
            if self.exited.get() {
                // (Never frees the heap: the object just made is alive.)
                crate::collect::collect_contained(self);
            } else {
                crate::collect::collect(self);
            }
        }
        // Nothing to collect, collection off or already running: wait for
        // the next step of growth.
        // SAFETY: short borrow, no user code.
        if unsafe { (*self.slabs.get()).past_live_limit() } {
            self.reset_growth_limit();
        }
    }

    /// The next collection for growth comes after `MIN_GROWTH` more objects,
    /// or half as many as now, or as many as the last collection found alive
    /// (so that walking them again is amortized, as for the candidate
    /// threshold), whichever is more. Called at the end of every collection,
    /// once its garbage is freed.
    pub fn reset_growth_limit(&self) {
        // SAFETY: short borrow, no user code.
        let slabs = unsafe { &mut *self.slabs.get() };
        let live = slabs.live();
        let step = MIN_GROWTH.max(live / 2).max(self.last_survivors.get());
        slabs.set_live_limit(live.saturating_add(step));
    }

    /// Allocates an object for a `T`, with an uninitialized value and a header
    /// from [`Header::new_uninit`].
    #[inline]
    pub fn alloc<T: Trace + 'static>(&self) -> NonNull<Header> {
        // SAFETY: short borrow (struct invariant).
        let cached = unsafe { (*self.types.get()).cached_state::<T>() };
        let type_state = match cached {
            Some(state) => state,
            None => self.register_type::<T>(),
        };
        let layout = Layout::new::<crate::header::GcBox<T>>();
        let class = const {
            class_of(
                size_of::<crate::header::GcBox<T>>(),
                align_of::<crate::header::GcBox<T>>(),
            )
        };
        // SAFETY: as above.
        let header = unsafe { (*self.slabs.get()).alloc(class, layout) };
        // SAFETY: fresh memory for a `GcBox<T>`, so room for its header.
        unsafe { header.as_ptr().write(Header::new_uninit(type_state)) };
        header
    }

    #[cold]
    fn register_type<T: Trace + 'static>(&self) -> u32 {
        // User code (the `Trace` impl's flags) runs before the borrow.
        let (may_contain_gc, has_finalizer) = (T::may_contain_gc(), T::has_finalizer());
        // SAFETY: short borrow, no user code.
        unsafe { (*self.types.get()).register::<T>(may_contain_gc, has_finalizer) }
    }

    /// The type entry of a live object.
    #[inline]
    pub fn type_of(&self, header: &Header) -> TypeEntry {
        // SAFETY: short borrow; the entry is copied out because registering a
        // type (from user code, later) may move the table.
        unsafe { *(*self.types.get()).get(header.type_index()) }
    }

    /// Returns an object's memory to the allocator.
    ///
    /// # Safety
    /// The object's `weak` is zero, it is not `BUFFERED`, its value is gone,
    /// no collection table refers to it, and `info` is its type's.
    unsafe fn free(&self, header: NonNull<Header>, info: &TypeInfo) {
        #[cfg(feature = "sites")]
        // SAFETY: short borrow, no user code.
        unsafe {
            (*self.sites.get()).remove(&(header.as_ptr() as usize));
        }
        // SAFETY: the object came from `alloc` with this class and layout (both
        // derive from its type), and the caller guarantees it is unused.
        unsafe { (*self.slabs.get()).free(header, info.size_class, info.box_layout) };
    }

    /// Records where an object was allocated (cargo feature `sites`).
    #[cfg(feature = "sites")]
    pub fn record_site(
        &self,
        header: NonNull<Header>,
        site: &'static std::panic::Location<'static>,
    ) {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.sites.get()).insert(header.as_ptr() as usize, site) };
    }

    /// Where an object was allocated, if recorded (cargo feature `sites`).
    #[cfg(feature = "sites")]
    pub fn site_of(
        &self,
        header: NonNull<Header>,
    ) -> Option<&'static std::panic::Location<'static>> {
        // SAFETY: short borrow, no user code.
        unsafe {
            (*self.sites.get())
                .get(&(header.as_ptr() as usize))
                .copied()
        }
    }

    /// Puts free lists back in address order where many objects were freed
    /// (see `crate::alloc`).
    pub fn tidy_memory(&self) {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.slabs.get()).tidy() }
    }

    /// Objects allocated and not yet freed (including dead boxes).
    pub fn live_objects(&self) -> usize {
        // SAFETY: short borrow.
        unsafe { (*self.slabs.get()).live() }
    }

    /// Calls `f` with every allocated object in address order, read from
    /// the chunks' slots in place (no list of every object, no sort but
    /// of the chunks).
    ///
    /// # Safety
    /// As [`for_each_object`](Self::for_each_object): `f` allocates and
    /// frees no object.
    pub unsafe fn for_each_object_by_address(&self, mut f: impl FnMut(NonNull<Header>)) {
        let (mut spans, mut large) = self.object_spans();
        // Chunks do not overlap: sorted by base, their slots are in address
        // order; so are the large objects, merged in between.
        spans.sort_unstable_by_key(|s| s.base);
        large.sort_unstable();
        let mut large = large.into_iter().peekable();
        for span in spans {
            while let Some(l) = large.next_if(|l| l.cast::<u8>() < span.base) {
                f(l);
            }
            for header in span.slots() {
                // SAFETY: a chunk slot, readable: the chunks stay while `f`
                // frees nothing (see `ChunkSpan`).
                if unsafe { header.as_ref() }.state.get() != 0 {
                    f(header);
                }
            }
        }
        large.for_each(f);
    }

    /// Every chunk's memory and every large object (see
    /// [`ChunkSpan`](crate::alloc::ChunkSpan)). Runs no user code.
    pub fn object_spans(&self) -> (Vec<crate::alloc::ChunkSpan>, Vec<NonNull<Header>>) {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.slabs.get()).object_spans() }
    }

    /// Calls `f` with every allocated object, read from the slabs in place.
    ///
    /// # Safety
    /// `f` must not allocate or free objects of this heap (it runs with the
    /// slabs borrowed): it may run `Trace::trace`, whose contract forbids
    /// both, but no other user code.
    pub unsafe fn for_each_object(&self, f: impl FnMut(NonNull<Header>)) {
        // SAFETY: `f` neither allocates nor frees (caller), so the slabs are
        // not borrowed mutably meanwhile.
        unsafe { (*self.slabs.get()).for_each_object(f) }
    }

    /// The number of objects freed since the heap was made (wrapping): while
    /// it stays the same, every object listed by
    /// [`all_objects`](Self::all_objects) is still allocated.
    pub fn frees(&self) -> u64 {
        // SAFETY: short borrow.
        unsafe { (*self.slabs.get()).frees() }
    }

    /// Every allocated object (live values, dead boxes, objects being
    /// dropped), in no particular order. Runs no user code. (Queries read
    /// the slots in place: [`for_each_object`](Self::for_each_object).)
    #[cfg(test)]
    pub fn all_objects(&self) -> Vec<NonNull<Header>> {
        let mut all = Vec::with_capacity(self.live_objects());
        // SAFETY: the closure only pushes to a vector (no allocation or
        // freeing of objects), so the slabs are not borrowed mutably meanwhile.
        unsafe { (*self.slabs.get()).for_each_object(|h| all.push(h)) };
        all
    }

    /// The type index of `T`, if any `T` was ever allocated on this heap.
    pub fn type_index_of<T: 'static>(&self) -> Option<u32> {
        // SAFETY: short borrow.
        unsafe { (*self.types.get()).index_of(std::any::TypeId::of::<T>()) }
    }

    /// Whether some type registered on this heap has a finalizer.
    pub fn any_finalizer(&self) -> bool {
        // SAFETY: short borrow.
        unsafe { (*self.types.get()).any_finalizer() }
    }

    /// The number of registered types (type indices are `1..=type_count()`).
    pub fn type_count(&self) -> usize {
        // SAFETY: short borrow.
        unsafe { (*self.types.get()).len() }
    }

    /// The entry of type index `index` (in `1..=type_count()`).
    pub fn type_entry(&self, index: u32) -> TypeEntry {
        // SAFETY: short borrow; the entry is copied out.
        unsafe { *(*self.types.get()).get(index) }
    }

    // ---- the exited state ----

    /// After the thread's teardown: every buffered candidate is a trigger
    /// (`next_collection` stays 0), and `exited_op_end` collects and frees.
    fn enter_exited(&self) {
        self.exited.set(true);
        self.stats.thread_exiting();
        self.next_collection.set(0);
    }

    /// Whether the thread's teardown has run (see [`exited_op_end`]).
    #[inline]
    pub fn is_exited(&self) -> bool {
        self.exited.get()
    }

    // ---- candidates and automatic collection ----

    /// Buffers `header` as a possible root of a garbage cycle (its count just
    /// dropped to a non-zero value), then maybe collects; on an exited heap,
    /// may free the heap (so it takes a pointer, not a `&self`).
    ///
    /// # Safety
    /// `this` is the thread's heap ([`heap_ptr`]), `header` a live object of
    /// it, and the caller holds no `&Heap` it will use again.
    #[inline]
    pub unsafe fn buffer_candidate(this: *const Heap, header: NonNull<Header>) {
        // SAFETY: the thread's live heap (caller); this reference is not used
        // after the call below that may free it.
        let heap = unsafe { &*this };
        // (A pointer, not a `&Header`: the collector will read the value
        // through it, so it must carry the whole object's provenance.)
        let len = heap.push_candidate(header);
        if len >= heap.next_collection.get() {
            // SAFETY: forwarded.
            unsafe { Heap::threshold_reached(this) };
        }
    }

    /// The candidate threshold is reached: collect, unless collection is
    /// off or running. On an exited heap (whose threshold is 0), collect now
    /// unless a collection or drop loop runs (then the end of the outermost
    /// drop loop collects), and free the heap if nothing is left.
    ///
    /// # Safety
    /// As for [`buffer_candidate`](Self::buffer_candidate).
    #[cold]
    #[inline(never)]
    unsafe fn threshold_reached(this: *const Heap) {
        {
            // SAFETY: as in `buffer_candidate`.
            let heap = unsafe { &*this };
            if !heap.exited.get() {
                if heap.enabled.get() && !heap.collecting.get() {
                    crate::collect::collect(heap);
                }
                return;
            }
        }
        // SAFETY: no `&Heap` argument is live here, and the caller holds none
        // it will use again.
        unsafe { exited_op_end() }
    }

    /// Adds an object to the candidate buffer; returns the buffer's length.
    /// While buffered, `scratch` is the object's index in the buffer, so that
    /// an object freed meanwhile leaves the buffer at once
    /// ([`unbuffer`](Self::unbuffer)) instead of holding its memory until the
    /// next collection.
    #[inline]
    fn push_candidate(&self, header: NonNull<Header>) -> usize {
        // SAFETY: the caller passes a live object.
        let h = unsafe { header.as_ref() };
        // SAFETY: short borrow, no user code.
        let c = unsafe { &mut *self.candidates.get() };
        h.set(BUFFERED);
        h.scratch.set(c.len() as u32);
        c.push(header);
        c.len()
    }

    /// Removes a `BUFFERED` object from the candidate buffer.
    fn unbuffer(&self, h: &Header) {
        // SAFETY: short borrow, no user code.
        let c = unsafe { &mut *self.candidates.get() };
        let index = h.scratch.get() as usize;
        debug_assert!(ptr::eq(c[index].as_ptr(), h));
        c.swap_remove(index);
        if let Some(moved) = c.get(index) {
            // SAFETY: buffered objects are live (never freed while buffered).
            unsafe { moved.as_ref() }.scratch.set(index as u32);
        }
        h.clear(BUFFERED);
    }

    /// Empties the candidate buffer, clearing every `BUFFERED` flag, and
    /// returns the candidates for which `keep` is true (in buffer order).
    /// `keep` must run no user code.
    pub fn take_candidates(
        &self,
        mut keep: impl FnMut(&NonNull<Header>) -> bool,
    ) -> Vec<NonNull<Header>> {
        let spare = self.spare_candidates.take();
        // SAFETY: short borrow, no user code.
        let mut taken = unsafe { std::mem::replace(&mut *self.candidates.get(), spare) };
        taken.retain(|h| {
            // SAFETY: buffered objects are live.
            unsafe { h.as_ref() }.clear(BUFFERED);
            keep(h)
        });
        taken
    }

    /// Takes back a vector that [`take_candidates`](Self::take_candidates)
    /// returned, emptied, to serve as the next spare buffer, unless it is
    /// big (then its memory goes back to the allocator).
    pub fn recycle_candidate_vec(&self, mut v: Vec<NonNull<Header>>) {
        v.clear();
        if v.capacity() <= 1 << 16 {
            self.spare_candidates.set(v);
        }
    }

    /// Puts objects back in the candidate buffer (after an interrupted
    /// collection).
    pub fn rebuffer(&self, objects: impl IntoIterator<Item = NonNull<Header>>) {
        for h in objects {
            self.push_candidate(h);
        }
    }

    pub fn candidate_count(&self) -> usize {
        // SAFETY: short borrow.
        unsafe { (*self.candidates.get()).len() }
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.set(on)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.get()
    }

    pub fn set_threshold(&self, n: usize) {
        let n = n.max(1);
        self.threshold.set(n);
        if !self.exited.get() {
            self.next_collection.set(n);
        }
    }

    pub fn threshold(&self) -> usize {
        self.threshold.get()
    }

    /// After a collection that walked `survivors` live objects and found
    /// `garbage` objects: the next one waits until at least that many
    /// candidates have been buffered (or until the number of objects has
    /// grown: `reset_growth_limit`), so walking them again is amortized.
    ///
    /// A collection that found no garbage at all waits for as many
    /// candidates as there are objects: its candidates were live data that
    /// the program was using (each use of a live object makes it a
    /// candidate), and a collection started from part of such a walk would
    /// cover part of the heap only, and set a low trigger that fires again
    /// halfway through the next walk. Garbage that appears meanwhile is still
    /// collected by the growth trigger.
    ///
    /// An exited heap keeps a threshold of 0: every candidate is a trigger.
    pub fn adapt_threshold(&self, survivors: usize, garbage: usize) {
        let mut next = self.threshold.get().max(survivors.saturating_add(1));
        if garbage == 0 {
            next = next.max(self.live_objects().saturating_add(1));
        }
        if self.exited.get() {
            next = 0;
        }
        self.next_collection.set(next);
        self.last_survivors.set(survivors);
    }

    // ---- freeing objects whose count reached zero ----

    /// The strong count of a live object has just reached zero: drop its
    /// value and free it, without recursion. If another value is being
    /// dropped on this thread right now, the object is queued instead and the
    /// outermost drop loop handles it.
    ///
    /// On an exited heap, the end of the outermost drop loop may free the
    /// heap (so this takes a pointer, not a `&self`).
    ///
    /// # Safety
    /// `this` is the thread's heap ([`heap_ptr`]) and the caller holds no
    /// `&Heap` it will use again; `header` is an object of it whose strong
    /// count is zero, whose value is intact, and which is not `COLLECTING`.
    #[inline]
    pub unsafe fn drop_unreferenced(this: *const Heap, header: NonNull<Header>) {
        // SAFETY: the thread's live heap (caller); not used after the call
        // below that may free it.
        let heap = unsafe { &*this };
        if heap.dropping.get() {
            // SAFETY: short borrow.
            let queue = unsafe { &mut *heap.pending_drops.get() };
            if queue.len() < queue.capacity() {
                // (No reallocation: the common case stays a leaf.)
                queue.push(header);
                return;
            }
            // SAFETY: forwarded.
            return unsafe { heap.queue_drop(header) };
        }
        // SAFETY: forwarded.
        unsafe { Heap::drop_outermost(this, header) }
    }

    /// [`drop_unreferenced`](Self::drop_unreferenced) when no drop loop runs.
    ///
    /// # Safety
    /// As for `drop_unreferenced`.
    #[inline(never)]
    unsafe fn drop_outermost(this: *const Heap, header: NonNull<Header>) {
        {
            // SAFETY: as in `drop_unreferenced`.
            let heap = unsafe { &*this };
            // (No drop loop runs: `drop_unreferenced` checked. Not testing
            // `dropping` again pays for the test of `exited` below.)
            // SAFETY: forwarded.
            heap.drop_loop(|| unsafe { heap.drop_value_and_release(header) });
            if !heap.exited.get() {
                return;
            }
        }
        // SAFETY: `drop_scope` has returned; no `&Heap` argument is live
        // here, and the caller holds none it will use again.
        unsafe { exited_op_end() }
    }

    /// Queues an object whose value is to be dropped by the next drop loop
    /// (the current one, or the next `Drop` of a last handle, or thread exit).
    ///
    /// # Safety
    /// As for [`drop_unreferenced`](Self::drop_unreferenced).
    #[inline(never)]
    pub unsafe fn queue_drop(&self, header: NonNull<Header>) {
        // SAFETY: short borrow.
        unsafe { (*self.pending_drops.get()).push(header) };
    }

    /// Runs `f` as the outermost drop loop: objects whose count reaches zero
    /// meanwhile are queued and dropped after `f`, one at a time. Nested
    /// calls just run `f` (the outer loop drains the queue).
    pub fn drop_scope(&self, f: impl FnOnce()) {
        if self.dropping.get() {
            return f();
        }
        let mut f = Some(f);
        self.drop_loop_dyn(&mut || {
            if let Some(f) = f.take() {
                f()
            }
        })
    }

    /// [`drop_loop`](Self::drop_loop) for [`drop_scope`](Self::drop_scope)'s
    /// callers (a collection, thread teardown: once per call, not per
    /// object), out of line and not generic, so that the per-object path
    /// (`drop_value_and_release`) is only ever called from this file's
    /// code. (Called from a generic instance in another codegen unit, it
    /// was reached through the GOT from `drop_outermost` too: 6 more
    /// instructions per object dropped.)
    #[inline(never)]
    fn drop_loop_dyn(&self, f: &mut dyn FnMut()) {
        self.drop_loop(f)
    }

    /// [`drop_scope`](Self::drop_scope) when no drop loop runs (the caller
    /// has checked `dropping`).
    #[inline(always)]
    fn drop_loop(&self, f: impl FnOnce()) {
        debug_assert!(!self.dropping.get());
        struct Reset<'a>(&'a Cell<bool>);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                // On a panic in a `Drop`, queued objects stay queued (their
                // values intact, their memory held by the implicit weak) and
                // are dropped by the next drop loop: a leak at worst.
                self.0.set(false);
            }
        }
        self.dropping.set(true);
        let _reset = Reset(&self.dropping);
        f();
        loop {
            // SAFETY: short borrow, released before the user `Drop` runs.
            let next = unsafe { (*self.pending_drops.get()).pop() };
            let Some(header) = next else { break };
            // SAFETY: queued objects have strong == 0, an intact value, and
            // are not `COLLECTING` (the collector owns those and never queues).
            unsafe { self.drop_value_and_release(header) };
        }
    }

    /// Drops the value of an object with no strong handle left, then lets go
    /// of the implicit weak (freeing the memory if no `WeakGc` remains).
    ///
    /// # Safety
    /// As for [`drop_unreferenced`](Self::drop_unreferenced).
    unsafe fn drop_value_and_release(&self, header: NonNull<Header>) {
        // SAFETY: the header is readable while the implicit weak is held.
        let h = unsafe { header.as_ref() };
        // Looked up once for the drop and the free (`&'static`, so a type
        // registered by the `Drop` below cannot move it).
        let info = self.type_of(h).info;
        // Flag first: from now on no reference to the value can be made.
        h.set(VALUE_DROPPED);
        // SAFETY: value intact, no handle can reach it (strong == 0) and the
        // flag stops upgrades; memory stays valid (implicit weak).
        unsafe { (info.drop_value)(header) };
        // SAFETY: the value is gone; the implicit weak is ours to release,
        // and `info` is the object's type.
        unsafe { self.release_weak_of(header, info) };
    }

    /// Decrements the weak count and frees the object if it reached zero and
    /// the candidate buffer does not refer to it (collection frees those).
    ///
    /// # Safety
    /// The caller owns one weak count of a readable object.
    #[inline]
    pub unsafe fn release_weak(&self, header: NonNull<Header>) {
        // SAFETY: forwarded; the type is looked up only if the object goes.
        unsafe { self.release_weak_with(header, |h| self.type_of(h).info) }
    }

    /// [`release_weak`](Self::release_weak) for a caller that has already
    /// looked up the object's type.
    ///
    /// # Safety
    /// As for `release_weak`, and `info` is the object's type.
    #[inline]
    unsafe fn release_weak_of(&self, header: NonNull<Header>, info: &TypeInfo) {
        // SAFETY: forwarded.
        unsafe { self.release_weak_with(header, |_| info) }
    }

    /// The body of both: `info` gives the object's type, and is called only
    /// when the object is about to be freed.
    ///
    /// # Safety
    /// As for `release_weak`, and `info` returns the object's type.
    #[inline(always)]
    unsafe fn release_weak_with<'t>(
        &self,
        header: NonNull<Header>,
        info: impl FnOnce(&Header) -> &'t TypeInfo,
    ) {
        // SAFETY: the caller's weak count keeps the header readable.
        let h = unsafe { header.as_ref() };
        let weak = h.weak.get() - 1;
        h.weak.set(weak);
        if weak == 0 {
            // SAFETY: the last weak count was just released; `info` gives
            // the object's type (caller).
            unsafe { self.free_unreferenced(header, info(h)) };
        }
    }

    /// Frees an object whose weak count just reached zero, taking it out of
    /// the candidate buffer first.
    ///
    /// # Safety
    /// The object's weak count (the implicit one included) has just reached
    /// zero, and `info` is its type.
    #[inline]
    pub unsafe fn free_unreferenced(&self, header: NonNull<Header>, info: &TypeInfo) {
        // SAFETY: its memory is not freed yet (this frees it).
        let h = unsafe { header.as_ref() };
        debug_assert!(h.weak.get() == 0);
        debug_assert!(h.has(VALUE_DROPPED) && !h.has(COLLECTING | VISITED));
        if h.has(BUFFERED) {
            self.unbuffer(h);
        }
        // SAFETY: weak == 0 means strong == 0 and the value is gone; no
        // longer buffered; the collector's tables only hold objects that are
        // `COLLECTING` or `VISITED` (asserted) or have weak > 0; `info` is
        // the object's type (caller).
        unsafe { self.free(header, info) };
    }
}
