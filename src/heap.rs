//! The per-thread heap: object memory, the type table, the candidate buffer
//! and its two triggers, and the iterative freeing of objects whose count
//! reaches zero.
//!
//! The heap knows nothing of the layers above it. It counts and compares:
//! when the candidate buffer reaches its limit
//! ([`set_candidate_limit`](Heap::set_candidate_limit)), when the number of
//! objects passes its live limit, and when an operation ends on an exited
//! heap, it calls up through the [`HeapHooks`] its owner gave it (the owner
//! sets the limits and decides what a trigger does).
//!
//! `Gc` is `!Send`, so every object belongs to the heap of the thread that
//! made it and only that thread ever touches it: no atomics, no locks.

use std::alloc::Layout;
use std::cell::{Cell, UnsafeCell};
use std::ptr::{self, NonNull};

use crate::alloc::{class_of, large_object_word, Slabs, LARGE_CLASS};
use crate::header::{Header, BUFFERED, COLLECTING, VALUE_DROPPED, VISITED};
use crate::trace::Trace;
use crate::types::{slice_box_layout, Fixed, Stored, TypeEntry, TypeInfo, TypeTable};

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
/// A heap lives inside its owner (one per thread), which frees it only when
/// it is exited, empty and idle (the owner's type says how).
/// The entry points that may end by freeing it
/// ([`buffer_candidate`](Self::buffer_candidate),
/// [`drop_unreferenced`](Self::drop_unreferenced)) take a pointer, not a
/// `&Heap`.
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
    /// Objects whose count reached zero while another object's value was
    /// being dropped and the drop recursion had used up its stack budget
    /// ([`DROP_RECURSION_BYTES`]): their values are dropped by the outermost
    /// drop loop, so dropping a long chain never overflows the stack.
    pending_drops: UnsafeCell<Vec<NonNull<Header>>>,
    /// While a drop loop runs ([`drop_scope`](Self::drop_scope)), the stack
    /// position where it started ([`stack_position`]); 0 otherwise.
    drop_stack_base: Cell<usize>,
    /// A collection (or a dry run, or a quiesced walk) runs.
    collecting: Cell<bool>,
    /// The number of collections so far (a pin compares it to know whether
    /// one ran while it held its object).
    collections: Cell<u64>,
    /// The thread's teardown has run (or the heap was made after it): every
    /// outermost operation ends by calling [`HeapHooks::exited_op_end`].
    exited: Cell<bool>,
    /// Buffer length at which [`HeapHooks::candidate_limit_reached`] is
    /// called (set by the policy).
    candidate_limit: Cell<usize>,
    /// The calls up into the heap's owner.
    hooks: &'static HeapHooks,
    /// Where each live object was allocated (cargo feature `sites`).
    #[cfg(feature = "sites")]
    sites: UnsafeCell<crate::sites::SiteTable>,
}

/// How much stack the drops nested in one drop loop may use before objects
/// whose count reaches zero are queued instead of dropped at once (see
/// [`Heap::drop_unreferenced`]). Enough for every balanced structure (a
/// nested drop takes about 100-200 bytes of frames with no user `Drop`), and
/// small beside any thread's stack: a chain 10 million long still drops on
/// an 8 MiB stack, 32 KiB at a time.
const DROP_RECURSION_BYTES: usize = 32 * 1024;

/// A position on this thread's stack: the stack pointer where the register
/// can be read (so the caller needs no stack slot and can end in a tail
/// call), else the address of a local of the caller (the function is
/// inlined). Only differences between two positions are used, so the
/// direction the stack grows does not matter.
#[inline(always)]
fn stack_position() -> usize {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        let sp: usize;
        // SAFETY: copies the stack pointer to a register; reads and writes
        // no memory, no flags, no stack.
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(all(target_arch = "aarch64", not(miri)))]
    {
        let sp: usize;
        // SAFETY: as above.
        unsafe {
            std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(miri))))]
    {
        let marker = std::mem::MaybeUninit::<u8>::uninit();
        std::hint::black_box(&raw const marker).addr()
    }
}

/// The bytes of stack used since [`stack_position`] returned `base` (in a
/// caller further up this thread's stack).
#[inline(always)]
fn stack_used_since(base: usize) -> usize {
    // Both targets whose stack pointer is read grow their stack down.
    #[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(miri)))]
    {
        base.wrapping_sub(stack_position())
    }
    #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(miri))))]
    {
        stack_position().abs_diff(base)
    }
}

/// The heap's calls up, into the layer that owns it (which decides what a
/// trigger does). Each is made on a cold path only.
pub(crate) struct HeapHooks {
    /// The candidate buffer reached its limit
    /// ([`Heap::set_candidate_limit`]; an object was just buffered).
    ///
    /// Safety contract: as for [`Heap::buffer_candidate`], whose pointer it
    /// receives (it may free the heap, on an exited heap).
    pub candidate_limit_reached: unsafe fn(*const Heap),
    /// The number of objects passed the live limit (an object was just made).
    pub live_limit_passed: fn(&Heap),
    /// An outermost operation (the outermost drop loop, the last `WeakGc` of
    /// an object) ended on an exited heap: collect, and free the heap and
    /// its owner if nothing is left.
    ///
    /// Safety contract: the caller holds no `&Heap` it will use again, and
    /// received none as an argument.
    pub exited_op_end: unsafe fn(),
}

impl Heap {
    /// An empty heap that calls `hooks` when a trigger is reached (its limits
    /// start out unreachable: the policy sets them).
    pub fn new(hooks: &'static HeapHooks) -> Heap {
        let mut slabs = Slabs::new();
        slabs.set_live_limit(usize::MAX);
        Heap {
            slabs: UnsafeCell::new(slabs),
            types: UnsafeCell::new(TypeTable::new()),
            candidates: UnsafeCell::new(Vec::new()),
            spare_candidates: Cell::new(Vec::new()),
            pending_drops: UnsafeCell::new(Vec::new()),
            drop_stack_base: Cell::new(0),
            collecting: Cell::new(false),
            collections: Cell::new(0),
            exited: Cell::new(false),
            candidate_limit: Cell::new(usize::MAX),
            hooks,
            #[cfg(feature = "sites")]
            sites: UnsafeCell::new(Default::default()),
        }
    }

    // ---- the triggers ----

    /// After an object was made: if the number of objects grew past the
    /// live limit, the owner decides (collect the waiting candidates
    /// before the heap grows any further, or wait).
    #[inline]
    pub fn after_alloc(&self) {
        if self.past_live_limit() {
            (self.hooks.live_limit_passed)(self);
        }
    }

    /// Whether the number of objects is past the live limit.
    #[inline]
    pub fn past_live_limit(&self) -> bool {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.slabs.get()).past_live_limit() }
    }

    /// Sets the number of objects past which [`after_alloc`](Self::after_alloc)
    /// calls up.
    pub fn set_live_limit(&self, limit: usize) {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.slabs.get()).set_live_limit(limit) }
    }

    /// Sets the candidate buffer length at which
    /// [`buffer_candidate`](Self::buffer_candidate) calls up.
    pub fn set_candidate_limit(&self, limit: usize) {
        self.candidate_limit.set(limit);
    }

    pub fn candidate_limit(&self) -> usize {
        self.candidate_limit.get()
    }

    // ---- states ----

    /// Marks the heap as collecting; `false` (and nothing done) if it
    /// already was.
    pub fn begin_collecting(&self) -> bool {
        !self.collecting.replace(true)
    }

    /// Ends what [`begin_collecting`](Self::begin_collecting) began.
    pub fn end_collecting(&self) {
        self.collecting.set(false);
    }

    /// Whether a collection (or a dry run, or a quiesced walk) runs.
    #[inline]
    pub fn is_collecting(&self) -> bool {
        self.collecting.get()
    }

    /// Counts one collection (see [`collections`](Self::collections)).
    pub fn count_collection(&self) {
        self.collections.set(self.collections.get() + 1);
    }

    /// The number of collections so far.
    #[inline]
    pub fn collections(&self) -> u64 {
        self.collections.get()
    }

    /// Whether a drop loop runs.
    pub fn is_dropping(&self) -> bool {
        self.drop_stack_base.get() != 0
    }

    /// Enters the exited state (see [`exited`](Heap#structfield.exited)):
    /// after the thread's teardown.
    pub fn mark_exited(&self) {
        self.exited.set(true);
    }

    /// Whether the thread's teardown has run.
    #[inline]
    pub fn is_exited(&self) -> bool {
        self.exited.get()
    }

    /// Returns every chunk to the allocator.
    ///
    /// # Safety
    /// No object is allocated, and none will be made from this heap again.
    pub unsafe fn release_memory(&self) {
        // SAFETY: short borrow, no user code; no object is left (caller).
        unsafe { (*self.slabs.get()).release_all() }
    }

    /// Allocates an object for a `T`, with an uninitialized value and a header
    /// from [`Header::new_uninit`].
    #[inline]
    pub fn alloc<T: Trace + 'static>(&self) -> NonNull<Header> {
        let type_state = self.type_state::<Fixed<T>>();
        let layout = Layout::new::<crate::header::GcBox<T>>();
        let class = const {
            class_of(
                size_of::<crate::header::GcBox<T>>(),
                align_of::<crate::header::GcBox<T>>(),
            )
        };
        // SAFETY: as above.
        let header = unsafe { (*self.slabs.get()).alloc(class, layout) }.cast::<Header>();
        // SAFETY: fresh memory for a `GcBox<T>`, so room for its header.
        unsafe { header.as_ptr().write(Header::new_uninit(type_state)) };
        header
    }

    /// Allocates a slice object of type `S` (a [`Slice`](crate::types::Slice)) with room for
    /// `len` elements, uninitialized, its length recorded and a header from
    /// [`Header::new_uninit`].
    ///
    /// # Panics
    /// If the object's size overflows `isize`.
    pub fn alloc_slice<S: Stored>(&self, len: usize) -> NonNull<Header> {
        let crate::types::Shape::Slice { element } = S::INFO.shape else {
            unreachable!("a slice type")
        };
        let Some(layout) = slice_box_layout(element, len) else {
            panic!("rcycle: capacity overflow")
        };
        let type_state = self.type_state::<S>();
        // SAFETY: short borrow (struct invariant), no user code.
        let object = unsafe { (*self.slabs.get()).alloc(LARGE_CLASS, layout) };
        // SAFETY: a fresh large object: its word is ours; the memory has room
        // for the header.
        unsafe {
            large_object_word(object).write(len);
            object
                .cast::<Header>()
                .write(Header::new_uninit(type_state));
        }
        object.cast()
    }

    /// The initial state word of an object of type `S`, registering the type
    /// if it is new.
    #[inline(always)]
    fn type_state<S: Stored>(&self) -> u32 {
        // SAFETY: short borrow (struct invariant).
        let cached = unsafe { (*self.types.get()).cached_state::<S>() };
        match cached {
            Some(state) => state,
            None => self.register_type::<S>(),
        }
    }

    #[cold]
    fn register_type<S: Stored>(&self) -> u32 {
        // User code (the `Trace` impl's flags) runs before the borrow.
        let (may_contain_gc, has_finalizer) = S::flags();
        // SAFETY: short borrow, no user code.
        unsafe { (*self.types.get()).register::<S>(may_contain_gc, has_finalizer) }
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
            (*self.sites.get()).remove(header.as_ptr() as usize);
        }
        // SAFETY: the object came from `alloc` or `alloc_slice` with this
        // class and layout (both derive from its type and, for a slice, its
        // length, still in its word), and the caller guarantees it is unused.
        unsafe {
            (*self.slabs.get()).free(header.cast(), info.size_class, || info.layout_of(header))
        };
    }

    /// Records where an object was allocated (cargo feature `sites`): the
    /// line, and the stack if frames are asked for
    /// ([`set_site_frames`](Self::set_site_frames)).
    #[cfg(feature = "sites")]
    pub fn record_site(
        &self,
        header: NonNull<Header>,
        site: &'static std::panic::Location<'static>,
    ) {
        // SAFETY: short borrow; no user code (the stack walk calls none).
        unsafe { (*self.sites.get()).record(header.as_ptr() as usize, site) };
    }

    /// Where an object was allocated, if recorded (cargo feature `sites`).
    #[cfg(feature = "sites")]
    pub fn site_of(
        &self,
        header: NonNull<Header>,
    ) -> Option<&'static std::panic::Location<'static>> {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.sites.get()).line_of(header.as_ptr() as usize) }
    }

    /// The number of the stack an object was allocated with, if recorded
    /// (cargo feature `sites`, with frames asked for).
    #[cfg(feature = "sites")]
    pub fn site_stack_number(&self, header: NonNull<Header>) -> Option<u32> {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.sites.get()).stack_number_of(header.as_ptr() as usize) }
    }

    /// Stack number `number`: the frames asked for when it was recorded,
    /// and its instruction addresses, innermost first.
    #[cfg(feature = "sites")]
    pub fn site_stack(&self, number: u32) -> (usize, Vec<usize>) {
        // SAFETY: short borrow, no user code; the stack is copied out.
        let (frames, ips) = unsafe { (*self.sites.get()).stack(number) };
        (frames, ips.to_vec())
    }

    /// How many frames of the call stack later allocations record (1: the
    /// line of the `Gc::new` call only).
    #[cfg(feature = "sites")]
    pub fn set_site_frames(&self, frames: usize) {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.sites.get()).set_frames(frames) }
    }

    /// See [`set_site_frames`](Self::set_site_frames).
    #[cfg(feature = "sites")]
    pub fn site_frames(&self) -> usize {
        // SAFETY: short borrow, no user code.
        unsafe { (*self.sites.get()).frames() }
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
            for slot in span.slots() {
                // SAFETY: a chunk slot, readable: the chunks stay while `f`
                // frees nothing (see `ChunkSpan`).
                if unsafe { crate::alloc::is_allocated(slot) } {
                    f(slot.cast());
                }
            }
        }
        large.for_each(f);
    }

    /// Every chunk's memory and every large object (see
    /// [`ChunkSpan`](crate::alloc::ChunkSpan)). Runs no user code.
    pub fn object_spans(&self) -> (Vec<crate::alloc::ChunkSpan>, Vec<NonNull<Header>>) {
        // SAFETY: short borrow, no user code.
        let (spans, large) = unsafe { (*self.slabs.get()).object_spans() };
        // (In place: the pointers only change type.)
        (spans, large.into_iter().map(NonNull::cast).collect())
    }

    /// Calls `f` with every allocated object, read from the slabs in place.
    ///
    /// # Safety
    /// `f` must not allocate or free objects of this heap (it runs with the
    /// slabs borrowed): it may run `Trace::trace`, whose contract forbids
    /// both, but no other user code.
    pub unsafe fn for_each_object(&self, mut f: impl FnMut(NonNull<Header>)) {
        // SAFETY: `f` neither allocates nor frees (caller), so the slabs are
        // not borrowed mutably meanwhile.
        unsafe { (*self.slabs.get()).for_each_object(|object| f(object.cast())) }
    }

    /// The number of objects freed since the heap was made (wrapping): while
    /// it stays the same, every object listed from the heap's slots is
    /// still allocated.
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
        unsafe { (*self.slabs.get()).for_each_object(|h| all.push(h.cast())) };
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

    // ---- candidates and automatic collection ----

    /// Buffers `header` as a possible root of a garbage cycle (its count just
    /// dropped to a non-zero value), then maybe collects; on an exited heap,
    /// may free the heap (so it takes a pointer, not a `&self`).
    ///
    /// # Safety
    /// `this` is the thread's heap, `header` a live object of it, and the
    /// caller holds no `&Heap` it will use again.
    #[inline]
    pub unsafe fn buffer_candidate(this: *const Heap, header: NonNull<Header>) {
        // SAFETY: the thread's live heap (caller); this reference is not used
        // after the call below that may free it.
        let heap = unsafe { &*this };
        // (A pointer, not a `&Header`: the collector will read the value
        // through it, so it must carry the whole object's provenance.)
        let len = heap.push_candidate(header);
        if len >= heap.candidate_limit.get() {
            let reached = heap.hooks.candidate_limit_reached;
            // SAFETY: forwarded; `heap` is not used again.
            unsafe { reached(this) };
        }
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
        h.set_scratch(c.len() as u32);
        c.push(header);
        c.len()
    }

    /// Removes a `BUFFERED` object from the candidate buffer.
    fn unbuffer(&self, h: &Header) {
        // SAFETY: short borrow, no user code.
        let c = unsafe { &mut *self.candidates.get() };
        let index = h.scratch() as usize;
        debug_assert!(ptr::eq(c[index].as_ptr(), h));
        c.swap_remove(index);
        if let Some(moved) = c.get(index) {
            // SAFETY: buffered objects are live (never freed while buffered).
            unsafe { moved.as_ref() }.set_scratch(index as u32);
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
        let mut taken = self.swap_out_candidates();
        taken.retain(|h| {
            // SAFETY: buffered objects are live.
            unsafe { h.as_ref() }.clear(BUFFERED);
            keep(h)
        });
        taken
    }

    /// Empties the candidate buffer, clearing every `BUFFERED` flag and
    /// handing each candidate to `each`, in buffer order. `each` must run no
    /// user code. (The buffer's vector becomes the spare one: no allocation.
    /// Draining in place, with one vector, measured 5-7% slower on the
    /// linked-lists benchmark, whose collections drain 10,000 candidates
    /// each, though it ran fewer instructions: see benches/notes.md.)
    pub fn drain_candidates(&self, mut each: impl FnMut(NonNull<Header>)) {
        let taken = self.swap_out_candidates();
        for &h in &taken {
            // SAFETY: buffered objects are live.
            unsafe { h.as_ref() }.clear(BUFFERED);
            each(h);
        }
        self.recycle_candidate_vec(taken);
    }

    /// The buffer's vector, its objects still flagged `BUFFERED`; the spare
    /// vector (empty) becomes the buffer.
    #[inline(always)]
    fn swap_out_candidates(&self) -> Vec<NonNull<Header>> {
        let spare = self.spare_candidates.take();
        // SAFETY: short borrow, no user code.
        unsafe { std::mem::replace(&mut *self.candidates.get(), spare) }
    }

    /// Takes back a vector that [`take_candidates`](Self::take_candidates)
    /// returned or [`drain_candidates`](Self::drain_candidates) emptied, to
    /// serve as the next spare buffer, unless it is big (then its memory
    /// goes back to the allocator).
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

    // ---- freeing objects whose count reached zero ----

    /// The strong count of a live object has just reached zero: drop its
    /// value and free it. If another value is being dropped on this thread
    /// right now, this one is dropped at once, nested in that drop as `Rc`
    /// would (so it is dropped while its memory is still in cache), as long
    /// as the nesting has used less than [`DROP_RECURSION_BYTES`] of stack
    /// since the outermost drop loop began and no panic is unwinding; else
    /// it is queued, and the outermost loop drops it after the values being
    /// dropped now.
    ///
    /// On an exited heap, the end of the outermost drop loop may free the
    /// heap (so this takes a pointer, not a `&self`).
    ///
    /// # Safety
    /// `this` is the thread's heap and the caller holds no
    /// `&Heap` it will use again; `header` is an object of it whose strong
    /// count is zero, whose value is intact, and which is not `COLLECTING`.
    ///
    #[inline]
    pub unsafe fn drop_unreferenced(this: *const Heap, header: NonNull<Header>) {
        // SAFETY: the thread's live heap (caller); not used after the calls
        // below, which may free it.
        let base = unsafe { (*this).drop_stack_base.get() };
        if base != 0 {
            // SAFETY: forwarded.
            return unsafe { Heap::drop_nested(this, header, base) };
        }
        // SAFETY: forwarded.
        unsafe { Heap::drop_outermost(this, header) }
    }

    /// Whether objects wait in the drop queue (left there by a panicking
    /// `Drop`, or by a drop loop running now).
    #[inline]
    pub fn has_queued_drops(&self) -> bool {
        // SAFETY: short borrow.
        unsafe { !(*self.pending_drops.get()).is_empty() }
    }

    /// [`drop_unreferenced`](Self::drop_unreferenced) inside a drop loop
    /// that began at stack position `base`. Out of line (the pointers'
    /// `drop_last` reaches it by a tail call), so that the nested drop is a
    /// direct call inside this file: inlined into another codegen unit, it
    /// went through the GOT.
    ///
    /// # Safety
    /// As for `drop_unreferenced`, and a drop loop runs.
    #[inline(never)]
    unsafe fn drop_nested(this: *const Heap, header: NonNull<Header>, base: usize) {
        // SAFETY: the thread's live heap (caller), which a nested drop does
        // not free (only the end of the outermost loop may).
        let heap = unsafe { &*this };
        if stack_used_since(base) < DROP_RECURSION_BYTES {
            // SAFETY: forwarded.
            return unsafe { heap.drop_nested_unless_unwinding(header) };
        }
        // (Rare: past the stack budget.)
        // SAFETY: forwarded.
        unsafe { heap.queue_drop(header) }
    }

    /// The nested drop, within the stack budget: not while unwinding from a
    /// panic in a `Drop` (the drop glue drops the rest of the panicking
    /// value's fields), because a nested `Drop` that panicked too would abort
    /// the process. Queued, the value waits for the next drop loop instead.
    ///
    /// (A function of its own, holding the whole drop: the test calls into
    /// `std` on its slow path, and in [`drop_nested`](Self::drop_nested) that
    /// call made every nested drop save and restore registers, 6
    /// instructions, where here it shares the drop's own frame.)
    ///
    /// # Safety
    /// As for `drop_nested`.
    #[inline(never)]
    unsafe fn drop_nested_unless_unwinding(&self, header: NonNull<Header>) {
        if std::thread::panicking() {
            // SAFETY: forwarded.
            return unsafe { self.queue_drop(header) };
        }
        // SAFETY: forwarded (no reference into the heap's tables is held
        // across the nested drop: they are short borrows).
        unsafe { self.drop_value_and_release(header) }
    }

    /// [`drop_unreferenced`](Self::drop_unreferenced) when no drop loop runs.
    ///
    /// # Safety
    /// As for `drop_unreferenced`.
    #[inline(never)]
    unsafe fn drop_outermost(this: *const Heap, header: NonNull<Header>) {
        let exited_op_end = {
            // SAFETY: as in `drop_unreferenced`.
            let heap = unsafe { &*this };
            // (No drop loop runs: `drop_unreferenced` checked. Not testing
            // `drop_stack_base` again pays for the test of `exited` below.)
            // SAFETY: forwarded.
            heap.drop_loop(|| unsafe { heap.drop_value_and_release(header) });
            if !heap.exited.get() {
                return;
            }
            heap.hooks.exited_op_end
        };
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
        if self.is_dropping() {
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
    /// has checked [`is_dropping`](Self::is_dropping)).
    #[inline(always)]
    fn drop_loop(&self, f: impl FnOnce()) {
        debug_assert!(!self.is_dropping());
        struct Reset<'a>(&'a Cell<usize>);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                // On a panic in a `Drop`, queued objects stay queued (their
                // values intact, their memory held by the implicit weak) and
                // are dropped by the next drop loop, and an object whose
                // nested drop was unwound keeps its memory: a leak at worst.
                self.0.set(0);
            }
        }
        self.drop_stack_base.set(stack_position());
        let _reset = Reset(&self.drop_stack_base);
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
    #[inline(always)]
    unsafe fn drop_value_and_release(&self, header: NonNull<Header>) {
        // SAFETY: the header is readable while the implicit weak is held.
        let h = unsafe { header.as_ref() };
        // Looked up once for the drop and the free (`&'static`, so a type
        // registered by the `Drop` below cannot move it).
        let info = self.type_of(h).info;
        // Flag first: from now on no reference to the value can be made.
        h.set(VALUE_DROPPED);
        /// Lets go of the implicit weak when the value's `Drop` panicked:
        /// the drop glue has dropped the rest of its fields by the time the
        /// unwinding reaches this frame, so the value is gone, and its
        /// memory is not leaked. (Forgotten on the normal path.)
        struct ReleaseOnUnwind<'a> {
            heap: &'a Heap,
            header: NonNull<Header>,
            info: &'static TypeInfo,
        }
        impl Drop for ReleaseOnUnwind<'_> {
            #[cold]
            fn drop(&mut self) {
                // SAFETY: the value is gone; the implicit weak is ours to
                // release, and `info` is the object's type.
                unsafe { self.heap.release_weak_of(self.header, self.info) };
            }
        }
        let unwinding = ReleaseOnUnwind {
            heap: self,
            header,
            info,
        };
        // SAFETY: value intact, no handle can reach it (strong == 0) and the
        // flag stops upgrades; memory stays valid (implicit weak).
        unsafe { (info.drop_value)(header) };
        std::mem::forget(unwinding);
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
        let weak = h.weak() - 1;
        h.set_weak(weak);
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
        debug_assert!(h.weak() == 0);
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
