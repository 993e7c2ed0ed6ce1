//! Where objects live, and how the heap enumerates them.
//!
//! Small objects (at most [`MAX_SMALL`] bytes, alignment at most 8) live in
//! *chunks*: arrays of equal-sized slots, one set of chunks per size class. A
//! free list threads through the empty slots. Chunks come zeroed from the
//! global allocator (so memory tools and counting allocators see them), and a
//! zero `state` word marks a slot as free, so walking every slot of every
//! chunk enumerates the live objects without any per-object link. Chunk sizes
//! are exact multiples of the slot size: a chunk of 24-byte slots wastes
//! nothing.
//!
//! Bigger or over-aligned objects get an allocation of their own, with a
//! prefix that links them into a list the heap can also walk, and one spare
//! word right before the object that the layer above may use
//! ([`large_object_word`]; objects whose size is known only at run time keep
//! their length there).
//!
//! # Keeping memory in address order
//!
//! The free list is last-in first-out, which is what a stack-like program
//! wants. But a collection frees a garbage set in the order it found it, not
//! in address order, and the next allocations come out in that order: the
//! next structure built is scattered over memory, its collection finds it in
//! yet another order, and every round scrambles memory more, until every
//! traversal is a cache miss per object (a 1M-node ring collected 16 times in
//! one process slowed from 103 to 321 ms). So after a class has had many
//! objects freed (at least a quarter of its slots since the last time) and
//! still has that many on its free list, the heap asks for its free list
//! to be rebuilt in address order
//! ([`Slabs::tidy`]): one sequential sweep over the class's chunks, paid for
//! by the frees that made it necessary.

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::ptr::{self, NonNull};

/// An object as this layer hands it out: the address of its first byte,
/// where the layer above puts the object's header.
pub(crate) type ObjectPtr = NonNull<u8>;

/// Where every object keeps its *state word*: a `u32`, 4-aligned, at this
/// offset from the object's start, non-zero for as long as the object is
/// allocated. This layer writes 0 there when it frees a slot, and reads it
/// to tell a live slot from a free one (chunks come zeroed). The layout
/// layer (`Header::state`) is checked against it at compile time.
pub(crate) const STATE_OFFSET: usize = 12;

/// Whether the slot or object at `object` is allocated (its state word is
/// not zero).
///
/// # Safety
/// `object` is a slot of a chunk of this heap, or a large object of it:
/// its state word is initialized (zeroed, or written by its object).
#[inline(always)]
pub(crate) unsafe fn is_allocated(object: ObjectPtr) -> bool {
    // SAFETY: in bounds and initialized (caller); 4-aligned (slots and
    // objects are 8-aligned).
    unsafe { object.as_ptr().add(STATE_OFFSET).cast::<u32>().read() != 0 }
}

/// Slot sizes of the size classes, in bytes.
const CLASS_SIZES: [usize; 23] = [
    16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768,
    896, 1024,
];
const NUM_CLASSES: usize = CLASS_SIZES.len();
/// The largest object that lives in a chunk.
const MAX_SMALL: usize = CLASS_SIZES[NUM_CLASSES - 1];
/// The class number meaning "an allocation of its own".
const LARGE: usize = NUM_CLASSES;
/// The class of every object that needs [`large_object_word`].
pub(crate) const LARGE_CLASS: usize = LARGE;
/// Alignment of every chunk and therefore of every slot.
const SLOT_ALIGN: usize = 8;
/// Chunks start small (a program with three objects should not pay 64 KiB per
/// class) and double up to about this size.
const MAX_CHUNK_BYTES: usize = 64 * 1024;
const FIRST_CHUNK_BYTES: usize = 1024;

/// The size class of an object of `size` bytes and alignment `align`
/// (`LARGE` if it does not fit a slot).
pub(crate) const fn class_of(size: usize, align: usize) -> usize {
    if align > SLOT_ALIGN || size > MAX_SMALL {
        return LARGE;
    }
    let mut c = 0;
    while CLASS_SIZES[c] < size {
        c += 1;
    }
    c
}

/// The bytes an object of `size` bytes and alignment `align` really takes:
/// its slot, or for a large object its own allocation with the link prefix.
pub(crate) const fn allocated_size(size: usize, align: usize) -> usize {
    let class = class_of(size, align);
    if class < LARGE {
        return CLASS_SIZES[class];
    }
    large_allocated_size(size, align)
}

/// The bytes a large object (class [`LARGE_CLASS`]) of `size` bytes and
/// alignment `align` takes, whatever its size: its allocation with the
/// prefix.
pub(crate) const fn large_allocated_size(size: usize, align: usize) -> usize {
    let offset = large_offset(align);
    let align = if align > SLOT_ALIGN {
        align
    } else {
        SLOT_ALIGN
    };
    (offset + size).div_ceil(align) * align
}

/// The offset of a large object of alignment `align` in its allocation: past
/// the link and the spare word, rounded up to the alignment.
const fn large_offset(align: usize) -> usize {
    let prefix = size_of::<LargeLink>() + size_of::<usize>();
    prefix.div_ceil(align) * align
}

/// The spare word right before a large object (class [`LARGE_CLASS`]): zero
/// when the object is allocated, then the layer above's to use, and
/// readable for as long as the object is allocated.
///
/// # Safety
/// `object` came from [`Slabs::alloc`] with class `LARGE_CLASS` and is not
/// freed.
#[inline]
pub(crate) unsafe fn large_object_word(object: ObjectPtr) -> NonNull<usize> {
    // SAFETY: the word lies inside the object's allocation, between its link
    // and the object (`large_offset`), and is 8-aligned (so is the object).
    unsafe { object.cast::<usize>().sub(1) }
}

/// One chunk of slots.
struct Chunk {
    base: NonNull<u8>,
    bytes: usize,
}

struct SizeClass {
    slot_size: usize,
    /// Head of the free list; each free slot stores the next one's address in
    /// its first 8 bytes.
    free: *mut u8,
    /// Never-used slots of the newest chunk: `[bump, bump_end)`.
    bump: *mut u8,
    bump_end: *mut u8,
    chunks: Vec<Chunk>,
    next_chunk_bytes: usize,
    /// Slots in all chunks of the class.
    slots: usize,
    /// Slots freed since the free list was last put in address order.
    freed_since_tidy: usize,
    /// Slots on the free list now.
    free_listed: usize,
}

impl SizeClass {
    /// A class with no chunk yet (`slot_size` is set by `Slabs::new`).
    const EMPTY: SizeClass = SizeClass {
        slot_size: 0,
        free: ptr::null_mut(),
        bump: ptr::null_mut(),
        bump_end: ptr::null_mut(),
        chunks: Vec::new(),
        next_chunk_bytes: FIRST_CHUNK_BYTES,
        slots: 0,
        freed_since_tidy: 0,
        free_listed: 0,
    };

    /// Rebuilds the free list so that it hands out slots in address order.
    fn rebuild_free_list(&mut self) {
        self.chunks.sort_unstable_by_key(|chunk| chunk.base);
        // The newest chunk's never-used tail is not on the free list (it is
        // handed out by bumping), though its slots have `state == 0` too.
        let (bump, bump_end) = (self.bump as usize, self.bump_end as usize);
        let mut head: *mut u8 = ptr::null_mut();
        let mut tail: *mut *mut u8 = &mut head;
        let mut listed = 0;
        for chunk in &self.chunks {
            let mut offset = 0;
            while offset < chunk.bytes {
                // SAFETY: `offset` is a slot boundary inside the chunk.
                let slot = unsafe { chunk.base.as_ptr().add(offset) };
                offset += self.slot_size;
                if (bump..bump_end).contains(&(slot as usize)) {
                    continue;
                }
                // SAFETY: every slot's header is initialized (zeroed or
                // written); a slot with `state == 0` outside the bump range
                // is free (struct invariant), so its link word is ours.
                unsafe {
                    if !is_allocated(NonNull::new_unchecked(slot)) {
                        tail.write(slot);
                        tail = slot.cast::<*mut u8>();
                        listed += 1;
                    }
                }
            }
        }
        // SAFETY: `tail` is `&mut head` or the link word of the last free slot.
        unsafe { tail.write(ptr::null_mut()) };
        self.free = head;
        self.free_listed = listed;
        self.freed_since_tidy = 0;
    }
}

/// One chunk's memory, as [`Slabs::object_spans`] hands it out.
///
/// A chunk is returned to the allocator only by [`Slabs::release_all`],
/// when no object is left: while any object of the heap stays allocated,
/// every slot of every chunk stays readable, and its header is always
/// initialized (a free slot has `state == 0`, a live one is an object). So a
/// walk can read the slots of a span one by one while user code allocates
/// and frees objects between them: each slot it reads is free, an object
/// it listed, or one made meanwhile — never freed memory.
#[derive(Clone, Copy)]
pub(crate) struct ChunkSpan {
    pub base: NonNull<u8>,
    pub bytes: usize,
    pub slot_size: usize,
}

impl ChunkSpan {
    /// The header of every slot, free or not, in address order.
    pub fn slots(self) -> impl Iterator<Item = ObjectPtr> {
        (0..self.bytes / self.slot_size).map(move |i| {
            // SAFETY: `i * slot_size` is a slot boundary inside the chunk.
            unsafe { self.base.add(i * self.slot_size) }
        })
    }
}

/// The link prefix of a large object. The object follows at `offset`, the
/// spare word right before it.
#[repr(C)]
struct LargeLink {
    prev: *mut LargeLink,
    next: *mut LargeLink,
    offset: usize,
}

/// All memory of one thread's heap.
///
/// # Invariants
///
/// * Every slot of every chunk is either a live object (its header's `state`
///   is non-zero) or free (`state == 0`; never-used slots are zeroed memory).
/// * The free slots of a class are exactly those on its free list plus the
///   never-used ones in `[bump, bump_end)` of its newest chunk.
/// * `live` is the number of slots and large objects handed out by `alloc`
///   and not yet returned by `free`.
pub(crate) struct Slabs {
    /// One per entry of `CLASS_SIZES`: a fixed array, so that `alloc` (whose
    /// class is a constant) needs no bounds check and no "first use" test.
    classes: [SizeClass; NUM_CLASSES],
    large: *mut LargeLink,
    live: usize,
    /// The heap considers a collection once `live` reaches this.
    live_limit: usize,
    /// Objects freed (all classes, large ones too) since the heap was made,
    /// wrapping. Never goes back: a report that runs user code compares it
    /// before and after to learn whether any object it listed may be gone
    /// ([`frees`](Self::frees)).
    frees: u64,
    /// `frees` when `tidy` last looked at the classes.
    frees_at_tidy: u64,
}

impl Slabs {
    pub const fn new() -> Self {
        let mut classes = [SizeClass::EMPTY; NUM_CLASSES];
        let mut i = 0;
        while i < NUM_CLASSES {
            classes[i].slot_size = CLASS_SIZES[i];
            i += 1;
        }
        Slabs {
            classes,
            large: ptr::null_mut(),
            live: 0,
            live_limit: usize::MAX,
            frees: 0,
            frees_at_tidy: 0,
        }
    }

    /// Whether `live` reached the limit of [`set_live_limit`](Self::set_live_limit).
    #[inline]
    pub fn past_live_limit(&self) -> bool {
        self.live >= self.live_limit
    }

    pub fn set_live_limit(&mut self, limit: usize) {
        self.live_limit = limit;
    }

    /// Objects handed out and not yet freed.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Memory for one object of size class `class` (or, if `class == LARGE`,
    /// of `layout`). The memory is uninitialized as far as the caller is
    /// concerned; it must write a header with a non-zero `state` before
    /// anything enumerates the heap.
    #[inline]
    pub fn alloc(&mut self, class: usize, layout: Layout) -> ObjectPtr {
        self.live += 1;
        if class == LARGE {
            return self.alloc_large(layout);
        }
        let c = &mut self.classes[class];
        if !c.free.is_null() {
            let slot = c.free;
            // SAFETY: `slot` is on the free list, so it is a free slot of one
            // of our chunks whose first 8 bytes hold the next free slot.
            c.free = unsafe { slot.cast::<*mut u8>().read() };
            c.free_listed -= 1;
            // SAFETY: non-null, checked above.
            return unsafe { NonNull::new_unchecked(slot.cast()) };
        }
        if c.bump == c.bump_end {
            self.grow(class);
        }
        let c = &mut self.classes[class];
        let slot = c.bump;
        // SAFETY: `bump < bump_end`, both inside the newest chunk, which holds
        // a whole number of slots.
        c.bump = unsafe { slot.add(c.slot_size) };
        // SAFETY: chunk pointers are never null.
        unsafe { NonNull::new_unchecked(slot.cast()) }
    }

    #[cold]
    fn grow(&mut self, class: usize) {
        let c = &mut self.classes[class];
        let slots = (c.next_chunk_bytes / c.slot_size).max(1);
        let bytes = slots * c.slot_size;
        c.next_chunk_bytes = (c.next_chunk_bytes * 2).min(MAX_CHUNK_BYTES);
        let layout = Layout::from_size_align(bytes, SLOT_ALIGN).expect("chunk layout");
        // SAFETY: `layout` has a non-zero size.
        let base = unsafe { alloc_zeroed(layout) };
        let Some(base) = NonNull::new(base) else {
            handle_alloc_error(layout)
        };
        c.chunks.push(Chunk { base, bytes });
        c.slots += slots;
        c.bump = base.as_ptr();
        // SAFETY: one past the end of the chunk.
        c.bump_end = unsafe { base.as_ptr().add(bytes) };
    }

    /// Layout of a large allocation and the offset of the object inside it.
    fn large_layout(object: Layout) -> (Layout, usize) {
        let offset = large_offset(object.align());
        let align = object.align().max(align_of::<LargeLink>());
        let size = offset.checked_add(object.size()).expect("object too large");
        let layout = Layout::from_size_align(size, align).expect("object too large");
        (layout.pad_to_align(), offset)
    }

    #[cold]
    fn alloc_large(&mut self, object: Layout) -> ObjectPtr {
        let (layout, offset) = Self::large_layout(object);
        // SAFETY: `layout` has a non-zero size (it includes the link).
        let base = unsafe { alloc_zeroed(layout) }.cast::<LargeLink>();
        if base.is_null() {
            handle_alloc_error(layout)
        }
        // SAFETY: `base` is a fresh allocation large enough for the link;
        // `self.large` is null or the head of our list.
        unsafe {
            base.write(LargeLink {
                prev: ptr::null_mut(),
                next: self.large,
                offset,
            });
            if !self.large.is_null() {
                (*self.large).prev = base;
            }
        }
        self.large = base;
        // SAFETY: `offset` is inside the allocation (from `Layout::extend`).
        unsafe { NonNull::new_unchecked(base.cast::<u8>().add(offset).cast()) }
    }

    /// Returns an object's memory. `layout` is called only for a large
    /// object (whose layout may depend on its spare word, still readable
    /// then).
    ///
    /// # Safety
    /// `header` came from `alloc(class, layout())` of this `Slabs` with the
    /// same `class` and layout, has not been freed, and nothing will use it
    /// again.
    #[inline]
    pub unsafe fn free(
        &mut self,
        header: ObjectPtr,
        class: usize,
        layout: impl FnOnce() -> Layout,
    ) {
        self.live -= 1;
        if class == LARGE {
            // SAFETY: forwarded from the caller.
            return unsafe { self.free_large(header, layout()) };
        }
        let c = &mut self.classes[class];
        let slot = header.as_ptr();
        // SAFETY: the slot is ours and unused from now on: mark it free
        // (`state == 0`) and push it on the free list.
        unsafe {
            slot.add(STATE_OFFSET).cast::<u32>().write(0);
            slot.cast::<*mut u8>().write(c.free);
        }
        c.free = slot;
        c.free_listed += 1;
        c.freed_since_tidy += 1;
        self.frees = self.frees.wrapping_add(1);
    }

    /// The number of objects freed since the heap was made (wrapping): if it
    /// has not changed, every object listed before is still allocated.
    #[inline]
    pub fn frees(&self) -> u64 {
        self.frees
    }

    /// Puts back in address order the free list of every class that had at
    /// least a quarter of its slots (and at least `MIN_TIDY`) freed since
    /// the last time and has as many on its free list now (see the module
    /// documentation). Costs one sequential read of each such class's
    /// slots.
    pub fn tidy(&mut self) {
        /// Below this, scrambling costs less than the sweep.
        const MIN_TIDY: usize = 1024;
        // (Most collections free little: then this is the only check.)
        if self.frees.wrapping_sub(self.frees_at_tidy) < MIN_TIDY as u64 {
            return;
        }
        self.frees_at_tidy = self.frees;
        for c in &mut self.classes {
            // Both: many frees since the last sweep (else the order is
            // mostly the sweep's), and many of them still free (slots
            // freed and reused at once, as when a program makes and drops
            // small cycles beside a big live graph, are not scattered: the
            // next allocations take them back in the order they came).
            let quarter = MIN_TIDY.max(c.slots / 4);
            if c.freed_since_tidy >= quarter && c.free_listed >= quarter {
                c.rebuild_free_list();
            }
        }
    }

    /// # Safety
    /// As for `free`, with `class == LARGE`.
    #[cold]
    unsafe fn free_large(&mut self, header: ObjectPtr, object: Layout) {
        let (layout, offset) = Self::large_layout(object);
        // SAFETY: the caller guarantees the object came from `alloc_large`
        // with this layout, so the link sits `offset` bytes before it and is
        // a member of our list.
        unsafe {
            let link = header.as_ptr().cast::<u8>().sub(offset).cast::<LargeLink>();
            let LargeLink { prev, next, .. } = link.read();
            if prev.is_null() {
                self.large = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            dealloc(link.cast(), layout);
        }
        self.frees = self.frees.wrapping_add(1);
    }

    /// Calls `f` with the header of every live object (free slots skipped),
    /// in allocation order within each chunk.
    ///
    /// `f` must not allocate or free objects of this heap.
    pub fn for_each_object(&self, mut f: impl FnMut(ObjectPtr)) {
        for c in &self.classes {
            for chunk in &c.chunks {
                let mut offset = 0;
                while offset < chunk.bytes {
                    // SAFETY: `offset` is a slot boundary inside the chunk.
                    let slot = unsafe { chunk.base.add(offset) };
                    // SAFETY: every slot's state word is initialized (zeroed
                    // or written).
                    if unsafe { is_allocated(slot) } {
                        f(slot);
                    }
                    offset += c.slot_size;
                }
            }
        }
        let mut link = self.large;
        while !link.is_null() {
            // SAFETY: `link` is a member of our large-object list.
            let header = unsafe { Self::large_header(link) };
            f(header);
            // SAFETY: list member.
            link = unsafe { (*link).next };
        }
    }

    /// Every chunk's memory and slot size, and every large object: what a
    /// walk that runs user code between objects reads (see
    /// [`ChunkSpan`]). Runs no user code.
    pub fn object_spans(&self) -> (Vec<ChunkSpan>, Vec<ObjectPtr>) {
        let mut spans = Vec::new();
        for c in &self.classes {
            for chunk in &c.chunks {
                spans.push(ChunkSpan {
                    base: chunk.base,
                    bytes: chunk.bytes,
                    slot_size: c.slot_size,
                });
            }
        }
        let mut large = Vec::new();
        let mut link = self.large;
        while !link.is_null() {
            // SAFETY: `link` is a member of our large-object list.
            large.push(unsafe { Self::large_header(link) });
            // SAFETY: list member.
            link = unsafe { (*link).next };
        }
        (spans, large)
    }

    /// The header that follows a large object's link.
    ///
    /// # Safety
    /// `link` is a member of the large-object list.
    unsafe fn large_header(link: *mut LargeLink) -> ObjectPtr {
        // SAFETY: a list member's link is initialized, and its object lies
        // `offset` bytes after it, inside the allocation (so not null).
        unsafe { NonNull::new_unchecked(link.cast::<u8>().add((*link).offset)) }
    }

    /// Frees every chunk and large object. Only for a heap whose objects are
    /// all gone.
    ///
    /// # Safety
    /// No object of this heap is live or will be used again.
    pub unsafe fn release_all(&mut self) {
        debug_assert_eq!(self.live, 0);
        for c in &mut self.classes {
            let slot_size = c.slot_size;
            let chunks = std::mem::replace(c, SizeClass::EMPTY).chunks;
            c.slot_size = slot_size;
            for chunk in chunks {
                let layout = Layout::from_size_align(chunk.bytes, SLOT_ALIGN).expect("layout");
                // SAFETY: allocated in `grow` with this layout; no object
                // lives in it (caller's guarantee).
                unsafe { dealloc(chunk.base.as_ptr(), layout) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout and class of the 24-byte test objects.
    fn small() -> (Layout, usize) {
        (Layout::from_size_align(24, 8).unwrap(), class_of(24, 8))
    }

    /// A 24-byte object with a header (a live slot, as the heap makes them).
    fn alloc(slabs: &mut Slabs) -> ObjectPtr {
        let (layout, class) = small();
        let h = slabs.alloc(class, layout);
        // SAFETY: a fresh slot of 24 bytes, room for a state word.
        unsafe { h.as_ptr().add(STATE_OFFSET).cast::<u32>().write(1 << 10) };
        h
    }

    /// After many scattered frees, `tidy` makes the free list hand slots out
    /// in address order, and every free slot is still handed out once.
    #[test]
    fn tidy_hands_out_free_slots_in_address_order() {
        let mut slabs = Slabs::new();
        let (layout, class) = small();
        let objects: Vec<_> = (0..10_000).map(|_| alloc(&mut slabs)).collect();
        // Free 4000 of them in a scrambled order (a stride coprime to 10000).
        let mut freed: Vec<_> = (0..4000).map(|i| objects[(i * 7919) % 10_000]).collect();
        for &h in &freed {
            // SAFETY: allocated above with this class and layout, freed once.
            unsafe { slabs.free(h, class, || layout) };
        }
        slabs.tidy();
        let again: Vec<_> = (0..4000).map(|_| alloc(&mut slabs)).collect();
        assert!(
            again.windows(2).all(|w| w[0] < w[1]),
            "not in address order"
        );
        freed.sort();
        assert_eq!(again, freed);
        for &h in &objects {
            // SAFETY: every object is allocated once and freed once here.
            unsafe { slabs.free(h, class, || layout) };
        }
        assert_eq!(slabs.live(), 0);
        // SAFETY: no object is left.
        unsafe { slabs.release_all() };
    }

    /// Slots freed and taken again at once (small cycles made and
    /// collected beside a big live graph) do not make `tidy` sweep the
    /// class, however many there were: the free list stays LIFO.
    #[test]
    fn tidy_skips_classes_whose_frees_were_reused() {
        let mut slabs = Slabs::new();
        let (layout, class) = small();
        let mut objects: Vec<_> = (0..10_000).map(|_| alloc(&mut slabs)).collect();
        // 5,000 frees (half the slots), each slot taken again at once.
        for object in &mut objects[..5_000] {
            // SAFETY: allocated above with this class and layout, freed once.
            unsafe { slabs.free(*object, class, || layout) };
            *object = alloc(&mut slabs);
        }
        // Two more frees, the higher address last: LIFO hands it out first,
        // a sweep would hand out the lower one first.
        let (low, high) = (objects[3], objects[5]);
        assert!(low < high);
        // SAFETY: as above.
        unsafe {
            slabs.free(low, class, || layout);
            slabs.free(high, class, || layout);
        }
        slabs.tidy();
        assert_eq!(alloc(&mut slabs), high, "the free list was swept");
        assert_eq!(alloc(&mut slabs), low);
        for &h in &objects {
            // SAFETY: every object is live once here (3 and 5 taken again).
            unsafe { slabs.free(h, class, || layout) };
        }
        assert_eq!(slabs.live(), 0);
        // SAFETY: no object is left.
        unsafe { slabs.release_all() };
    }

    /// Below a quarter of the class's slots, `tidy` leaves the list alone.
    #[test]
    fn tidy_skips_classes_with_few_frees() {
        let mut slabs = Slabs::new();
        let (layout, class) = small();
        let objects: Vec<_> = (0..10_000).map(|_| alloc(&mut slabs)).collect();
        for &h in objects[..2000].iter() {
            // SAFETY: as above.
            unsafe { slabs.free(h, class, || layout) };
        }
        slabs.tidy();
        // LIFO: the last freed comes out first.
        let h = slabs.alloc(class, layout);
        assert_eq!(h, objects[1999]);
        // SAFETY: as above.
        unsafe { slabs.free(h, class, || layout) };
        for &h in &objects[2000..] {
            // SAFETY: as above.
            unsafe { slabs.free(h, class, || layout) };
        }
        // SAFETY: no object is left.
        unsafe { slabs.release_all() };
    }

    /// Large objects of every alignment: each is aligned, its spare word is
    /// its own (zero, then what was written), the walk finds each once, and
    /// `allocated_size` counts what the allocation takes.
    #[test]
    fn large_objects_keep_their_word() {
        let mut slabs = Slabs::new();
        let mut objects = Vec::new();
        for (i, align) in [4usize, 8, 16, 64, 4096].into_iter().enumerate() {
            let layout = Layout::from_size_align(2000, align).unwrap();
            let object = slabs.alloc(LARGE, layout);
            assert_eq!(object.as_ptr() as usize % align, 0);
            assert_eq!(
                Slabs::large_layout(layout).0.size(),
                allocated_size(2000, align)
            );
            // SAFETY: a fresh large object: its word is ours, its memory
            // has room for a state word.
            unsafe {
                assert_eq!(large_object_word(object).read(), 0);
                large_object_word(object).write(i + 100);
                object
                    .as_ptr()
                    .add(STATE_OFFSET)
                    .cast::<u32>()
                    .write(1 << 10);
            }
            objects.push((object, layout));
        }
        let mut seen = Vec::new();
        slabs.for_each_object(|o| seen.push(o));
        seen.sort();
        let mut expected: Vec<_> = objects.iter().map(|&(o, _)| o).collect();
        expected.sort();
        assert_eq!(seen, expected);
        for (i, &(object, layout)) in objects.iter().enumerate() {
            // SAFETY: allocated above, freed once, its word still ours.
            unsafe {
                assert_eq!(large_object_word(object).read(), i + 100);
                slabs.free(object, LARGE, || layout);
            }
        }
        assert_eq!(slabs.live(), 0);
    }
}
