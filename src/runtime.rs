//! The runtime: one thread's whole, its heap and its collector (with the
//! collection policy and statistics), made on first use and torn down at
//! thread exit; and the calls that go up from the heap (a trigger reached, an
//! operation that ends on an exited heap) and from the teardown (the at-exit
//! report).
//!
//! `Gc` is `!Send`, so every object belongs to the runtime of the thread that
//! made it and only that thread ever touches it: no atomics, no locks.
//!
//! # The exited state
//!
//! A thread's teardown (a thread-local destructor) runs the final
//! collections, then marks the heap *exited*: objects may outlive it (held by
//! thread-locals destroyed later), so from then on every buffered candidate
//! is a trigger ([`Policy::enter_exited`](crate::policy::Policy::enter_exited)), each outermost operation ends by
//! collecting ([`exited_op_end`]), and the runtime frees itself with its last
//! object ([`free_if_exited_and_empty`]); a runtime made after the teardown
//! by a report, to read, goes when the report is done ([`Query`]).

use std::any::Any;
use std::cell::Cell;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use crate::collect::{self, Collector};
use crate::heap::{Heap, HeapHooks};
use crate::policy::{Decision, FINAL_COLLECTIONS};
use crate::stats::{Callback, CallbackId, CollectStats};

/// The calls that go up from the teardown, handed over by the crate root
/// (which sees every layer): the runtime names no layer above it.
pub(crate) struct ExitHooks {
    /// Runs after the final collections, before the heap is marked exited
    /// (`RCYCLE_REPORT_AT_EXIT`: print what is left). Must not unwind.
    pub at_thread_exit: fn(),
}

/// One thread's runtime.
///
/// # Lifetime
///
/// A runtime is a `Box` leaked by `new_runtime`, and the thread's `RUNTIME`
/// points to it until it is freed. It is freed (and `RUNTIME` set back to
/// null) only by [`free_if_exited_and_empty`], and only when
///
/// 1. the heap is exited: the thread's teardown has run (or the runtime was
///    made after it), so nothing else will free it;
/// 2. no object is allocated (`live_objects() == 0`): no `Gc`, `WeakGc`,
///    queue or collector table refers to its memory;
/// 3. no collection and no drop loop runs.
///
/// Every function of the crate that holds a `&Heap` (or `&Runtime`) while
/// user code runs either has a collection or a drop loop running, or keeps an
/// object of the heap allocated until it stops using the reference (the
/// object whose `Drop`, `Trace`, finalizer or `heap_size` is running, whose
/// implicit weak count or pin holds its memory; the objects a report holds
/// with `HoldMemory`). So 2 or 3 fails while such a frame is on the stack,
/// and a runtime is never freed under a function that still uses it.
/// `free_if_exited_and_empty` takes no reference, and is called only by
/// functions that received none as an argument, after the methods they
/// called have returned: no function argument (whose borrow would be
/// protected for the whole call) refers to the runtime when it goes.
pub(crate) struct Runtime {
    pub heap: Heap,
    pub collector: Collector,
}

/// The heap's calls up into the runtime (see [`HeapHooks`]).
static HEAP_HOOKS: HeapHooks = HeapHooks {
    candidate_limit_reached,
    live_limit_passed,
    exited_op_end,
};

thread_local! {
    /// The current thread's runtime, made on first use. A plain pointer with
    /// no destructor: it stays readable while other thread-locals are being
    /// destroyed (their destructors may drop `Gc`s).
    static RUNTIME: Cell<*const Runtime> = const { Cell::new(ptr::null()) };
    /// Registered when the runtime is made; its destructor is the thread's
    /// teardown.
    static TEARDOWN: Teardown = const { Teardown };
}

struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        let p = RUNTIME.with(Cell::get);
        if p.is_null() {
            return;
        }
        {
            // SAFETY: a non-null `RUNTIME` points to the thread's live runtime
            // (see *Lifetime* at `Runtime`).
            let rt = unsafe { &*p };
            let h = &rt.heap;
            if h.is_collecting() || h.is_dropping() {
                // Thread-locals destroyed from inside a collection or drop loop
                // (`exit` called by a `Drop` impl): the heap is in use below
                // us, and stays as it is.
                return;
            }
            // The final collections call no collection callback.
            rt.collector.stats.thread_exiting();
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
                if collect_contained(rt) == 0 {
                    break;
                }
            }
            (crate::EXIT_HOOKS.at_thread_exit)();
            // Objects may outlive this (held by thread-locals destroyed later,
            // or left by the bound above): from now on the heap collects at
            // every trigger and frees itself with its last object.
            rt.enter_exited();
        }
        // SAFETY: this destructor took no reference argument and the methods
        // it called have returned (`rt` is not used again).
        unsafe { free_if_exited_and_empty() };
    }
}

impl Runtime {
    fn new() -> Runtime {
        let heap = Heap::new(&HEAP_HOOKS);
        let collector = Collector::new(&heap);
        Runtime { heap, collector }
    }

    /// After the thread's teardown (see the module documentation).
    fn enter_exited(&self) {
        self.heap.mark_exited();
        self.collector.stats.thread_exiting();
        self.collector.policy.enter_exited(&self.heap);
    }
}

/// Collects as [`collect::collect`] does, but a panic from user code during
/// the collection is not re-raised: it is reported on stderr (one line; the
/// panic hook has already printed its message) and dropped. For the
/// collections at and after thread exit, which run in thread-local
/// destructors, where an unwinding panic aborts the process.
fn collect_contained(rt: &Runtime) -> usize {
    let mut stats = CollectStats::default();
    if let Some(payload) = collect::collect_catching(&rt.heap, &rt.collector, false, &mut stats) {
        report_contained_panic(payload);
    }
    stats.freed
}

/// Reports a panic caught by a collection at or after thread exit, which is
/// not re-raised: one line on stderr (the panic hook has already printed the
/// panic's message), written straight to the process's stderr (test capture
/// may be gone at thread exit). The payload is dropped; if its own `Drop`
/// panics, that second payload is leaked.
#[cold]
fn report_contained_panic(payload: Box<dyn Any + Send>) {
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

// ---- the heap's calls up (`HeapHooks`) ----

/// The candidate buffer reached its limit: collect, unless the policy says
/// wait. On an exited heap (whose limit is 0), collect now unless a
/// collection or drop loop runs (then the end of the outermost drop loop
/// collects), and free the runtime if nothing is left.
///
/// # Safety
/// As for [`Heap::buffer_candidate`]: `this` is the thread's heap, and the
/// caller holds no reference to it that it will use again.
#[cold]
#[inline(never)]
unsafe fn candidate_limit_reached(this: *const Heap) {
    {
        // SAFETY: the thread's live heap (caller), inside the thread's
        // runtime; not used after the call below that may free it.
        let heap = unsafe { &*this };
        if !heap.is_exited() {
            let rt = runtime_of(heap);
            if rt.collector.policy.on_trigger(heap) == Decision::Collect {
                collect::collect(heap, &rt.collector);
            }
            return;
        }
    }
    // SAFETY: no reference argument is live here, and the caller holds none
    // it will use again.
    unsafe { exited_op_end() }
}

/// The number of objects passed the heap's live limit (just after an
/// allocation): collect the waiting candidates before the heap grows any
/// further, unless the policy says wait; then set the next limit.
#[cold]
#[inline(never)]
fn live_limit_passed(heap: &Heap) {
    let rt = runtime_of(heap);
    let policy = &rt.collector.policy;
    if policy.on_trigger(heap) == Decision::Collect {
        // (Sets the next limit itself. Never frees the runtime: the object
        // just made is alive.)
        if heap.is_exited() {
            collect_contained(rt);
        } else {
            collect::collect(heap, &rt.collector);
        }
    }
    // Nothing to collect, collection off or already running: wait for the
    // next step of growth.
    if heap.past_live_limit() {
        policy.after_collection(heap);
    }
}

/// Ends an outermost operation (the end of the outermost drop loop, a
/// candidate buffered outside any, the last `WeakGc` of an object dropped)
/// on an exited heap: collects the candidates waiting, with panics contained
/// as at thread exit, then frees the runtime if no object is left. Does
/// nothing if the thread has no runtime, the heap has not exited, or a
/// collection or drop loop is running (then that is not the outermost
/// operation, and candidates wait: a `Drop` that makes a new garbage cycle
/// each time it runs gets one collection per trigger, never a loop).
///
/// # Safety
/// As for [`free_if_exited_and_empty`].
#[cold]
#[inline(never)]
pub(crate) unsafe fn exited_op_end() {
    let p = RUNTIME.with(Cell::get);
    if p.is_null() {
        return;
    }
    {
        // SAFETY: a non-null `RUNTIME` points to the thread's live runtime.
        let rt = unsafe { &*p };
        let h = &rt.heap;
        if !h.is_exited() || h.is_collecting() || h.is_dropping() {
            return;
        }
        if h.candidate_count() > 0 {
            collect_contained(rt);
        }
    }
    // SAFETY: forwarded (`rt` is not used again).
    unsafe { free_if_exited_and_empty() }
}

/// Frees the thread's runtime if its heap has exited, no object is left and
/// no collection or drop loop runs (see *Lifetime* at [`Runtime`]).
///
/// # Safety
/// The caller received no `&Heap` or `&Runtime` as an argument, holds none
/// it will use again, and the methods it called have returned.
unsafe fn free_if_exited_and_empty() {
    let p = RUNTIME.with(Cell::get);
    if p.is_null() {
        return;
    }
    {
        // SAFETY: a non-null `RUNTIME` points to the thread's live runtime.
        let h = unsafe { &(*p).heap };
        if !h.is_exited() || h.live_objects() != 0 || h.is_collecting() || h.is_dropping() {
            return;
        }
        // SAFETY: no object is left, so no chunk holds one.
        unsafe { h.release_memory() };
    }
    // A later `Gc::new` on this thread (from another thread-local's
    // destructor) makes a new runtime.
    RUNTIME.with(|c| c.set(ptr::null()));
    // SAFETY: conditions 1-3 of *Lifetime* at `Runtime` hold (checked above),
    // so nothing refers to the runtime or uses it; no function argument
    // refers to it (caller); the pointer came from `Box::into_raw` in
    // `new_runtime`. (Dropping it may run user code, the `Drop` of collection
    // callbacks: `RUNTIME` no longer points to it.)
    drop(unsafe { Box::from_raw(p.cast_mut()) });
}

// ---- the accessors ----

/// The current thread's runtime.
///
/// (The reference is only as `'static` as the runtime: an exited runtime is
/// freed with its last object, see *Lifetime* at [`Runtime`]. Callers use it
/// for the operation at hand, and pass it to nothing that could free it.)
#[inline]
pub(crate) fn runtime() -> &'static Runtime {
    let p = RUNTIME.with(Cell::get);
    if p.is_null() {
        return new_runtime();
    }
    // SAFETY: a non-null `RUNTIME` points to a live, leaked `Box<Runtime>`
    // (see *Lifetime* at `Runtime`).
    unsafe { &*p }
}

/// The current thread's runtime if it has one (none before its first use,
/// or after its thread-exit teardown freed it): for queries, which should
/// not make one only to read its defaults (after the teardown, a runtime
/// made for a query would never be freed: nothing ends an operation on it).
#[inline]
pub(crate) fn existing_runtime() -> Option<&'static Runtime> {
    let p = RUNTIME.with(Cell::get);
    // SAFETY: a non-null `RUNTIME` points to a live, leaked `Box<Runtime>`
    // (see *Lifetime* at `Runtime`).
    (!p.is_null()).then(|| unsafe { &*p })
}

/// After a setting was changed on the thread's runtime: on a thread whose
/// teardown has run, the runtime goes if it holds no object (a setting on
/// such a thread only lasts as long as its objects).
pub(crate) fn setting_changed() {
    if runtime().heap.is_exited() {
        // SAFETY: no reference argument here, and the caller holds none.
        unsafe { free_if_exited_and_empty() }
    }
}

/// The current thread's heap (see [`runtime`]).
#[inline]
pub(crate) fn heap() -> &'static Heap {
    &runtime().heap
}

/// The thread's runtime for a report, which reads the whole heap (see
/// [`Query`]).
pub(crate) fn query() -> Query {
    let made = RUNTIME.with(Cell::get).is_null();
    Query {
        rt: runtime(),
        made,
    }
}

/// The thread's runtime as a report holds it while it reads the heap: made
/// if the thread has none, as [`runtime`] does, and, if this guard made it,
/// freed again when the guard drops, if its heap has exited and holds no
/// object. A report asked for from a thread-local's destructor after the
/// thread's teardown has freed the runtime makes a new one to read; no
/// operation would end on it, so without this it would never be freed.
///
/// # Why freeing it on drop is sound
/// A guard frees only the runtime it made: no frame older than the guard can
/// refer to that runtime, as it did not exist when the guard was made (a
/// guard made while a runtime exists does nothing). References into it come
/// from [`Deref`](std::ops::Deref), borrowed from the guard, so the borrow
/// checker ends them before the guard drops; a report keeps no other
/// reference (from [`heap`]) past its own return, and returns none.
/// [`free_if_exited_and_empty`] checks the rest (*Lifetime* at [`Runtime`]):
/// an object still allocated, or a collection or drop loop running below,
/// keeps the runtime. (As with [`heap`], a report holds no reference across
/// a call that may free the runtime: a collection from the public API, a
/// setting, an operation that ends on an exited heap.)
pub(crate) struct Query {
    rt: &'static Runtime,
    made: bool,
}

impl std::ops::Deref for Query {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        self.rt
    }
}

impl Drop for Query {
    fn drop(&mut self) {
        if self.made {
            // SAFETY: the runtime is this guard's own (see the type): nothing
            // older refers to it, and what borrowed it from the guard has
            // ended; no reference argument is live here.
            unsafe { free_if_exited_and_empty() }
        }
    }
}

/// The runtime whose heap is `heap`, the thread's (the only heap a thread
/// ever uses: `Gc` is `!Send`).
#[inline]
fn runtime_of(heap: &Heap) -> &Runtime {
    let rt = runtime();
    debug_assert!(ptr::eq(&rt.heap, heap));
    rt
}

/// The current thread's heap, known to exist.
///
/// # Safety
/// An object of this thread's heap is allocated (the caller holds a count
/// of it), so `RUNTIME` is not null (see *Lifetime* at [`Runtime`]).
#[inline]
pub(crate) unsafe fn heap_of_live_object() -> &'static Heap {
    let p = RUNTIME.with(Cell::get);
    debug_assert!(!p.is_null());
    // SAFETY: non-null (caller) and live (see *Lifetime* at `Runtime`).
    unsafe { &(*p).heap }
}

/// The current thread's heap, as a pointer, for the entry points that may
/// end by freeing it ([`Heap::drop_unreferenced`],
/// [`Heap::buffer_candidate`]).
#[inline]
pub(crate) fn heap_ptr() -> *const Heap {
    let mut p = RUNTIME.with(Cell::get);
    if p.is_null() {
        p = new_runtime();
    }
    // SAFETY: a live runtime (see `runtime`); a raw projection, no reference.
    unsafe { ptr::addr_of!((*p).heap) }
}

#[cold]
fn new_runtime() -> &'static Runtime {
    let p = Box::into_raw(Box::new(Runtime::new()));
    RUNTIME.with(|c| c.set(p));
    // Register the thread-exit teardown. Fails if the thread's teardown has
    // already run (a `Gc` made by a thread-local's destructor): the runtime
    // starts in the exited state, and frees itself with its last object.
    if TEARDOWN.try_with(|_| {}).is_err() {
        // SAFETY: just leaked; see `runtime()`.
        unsafe { &*p }.enter_exited();
    }
    // SAFETY: just leaked; see `runtime()`.
    unsafe { &*p }
}

// ---- the public controls (re-exported by the crate root) ----

/// Runs a collection of this thread's heap now ([`crate::collect()`]) and
/// returns the number of objects freed; on an exited heap, then frees the
/// runtime if nothing is left (see the module documentation).
pub(crate) fn collect_now() -> usize {
    let rt = runtime();
    // (Only the count: returning the whole statistics by value cost a
    // measurable copy in a collection of two objects.)
    let freed = collect::collect(&rt.heap, &rt.collector);
    if rt.heap.is_exited() {
        // After the thread's teardown (called from a thread-local's
        // destructor): the runtime goes with its last object.
        // SAFETY: no reference argument here, and `rt` is not used again.
        unsafe { free_if_exited_and_empty() }
    }
    freed
}

/// [`collect_now`] with the collection's figures, freed objects per type
/// included ([`crate::collect_with_stats`]).
pub(crate) fn collect_now_with_stats() -> CollectStats {
    let rt = runtime();
    let stats = collect::collect_with(&rt.heap, &rt.collector, true);
    if rt.heap.is_exited() {
        // SAFETY: as in `collect_now`.
        unsafe { free_if_exited_and_empty() }
    }
    stats
}

/// Registers a collection callback (see [`crate::add_collect_callback`]).
/// After the thread's teardown it lasts, as a setting does, only while the
/// heap holds objects ([`setting_changed`]).
pub(crate) fn add_collect_callback(callback: Callback) -> CallbackId {
    let id = runtime().collector.stats.add(callback);
    setting_changed();
    id
}

/// Removes a collection callback (see [`crate::remove_collect_callback`]);
/// a thread without a runtime has none to remove (and makes none).
pub(crate) fn remove_collect_callback(id: CallbackId) -> bool {
    existing_runtime().is_some_and(|rt| rt.collector.stats.remove(id))
}
