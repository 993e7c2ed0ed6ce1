//! Object layout: the 16-byte header every `Gc` object starts with, and its
//! state bits. (The per-type information the header names by index is the
//! heap's type table, a layer above this one.)
//!
//! ```text
//!  offset 0        4        8        12       16
//!        +--------+--------+--------+--------+---------------- - -
//!        | strong |  weak  | scratch| state  | value: T ...
//!        +--------+--------+--------+--------+---------------- - -
//!                                    state = type index (21 bits) | flags (11 bits)
//! ```
//!
//! There is no per-object type pointer and no per-object list link: the heap
//! finds every object by walking the chunks it allocated them from
//! ([`crate::alloc`]), and the type index names a
//! `TypeInfo` in the thread's type table
//! (`TypeTable`). A `Gc<u64>` object is therefore 24 bytes, the
//! same as an `Rc<u64>` allocation.

use std::cell::Cell;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;
use std::sync::atomic::{compiler_fence, Ordering};

/// The header at offset 0 of every object.
///
/// # Invariants
///
/// * `strong` is the number of live `Gc` handles to the object. It never
///   overflows: incrementing past `u32::MAX` aborts the process.
/// * `weak` is the number of live `WeakGc` handles, **plus one** for as long
///   as the value has not finished dropping (the *implicit weak*, exactly as
///   in `std::rc`). The slot is returned to the allocator only when `weak`
///   reaches zero and [`BUFFERED`] is clear; until then the header stays
///   readable, so every handle can always read its object's header.
/// * [`VALUE_DROPPED`] set means the value is gone (or never was written, or
///   is being dropped right now): no reference to it may be created. It is
///   set *before* the value's destructor starts and never cleared.
/// * [`COLLECTING`] is set only while the collector owns the object as a
///   member of a garbage set; a strong count reaching zero then only
///   decrements, the collector frees.
/// * `scratch` is the object's index in the thread's candidate buffer while
///   [`BUFFERED`] is set, and its *trial count* while [`VISITED`] is set
///   (only during a collection, which first empties the buffer; the two are
///   never set together). A heap graph capture uses the pair too: while the
///   heap is quiesced (marked as collecting, so no collection runs, with the
///   candidate buffer set aside), each object it lists gets `VISITED` and its
///   node number in `scratch`, both cleared before the buffer is restored.
///   [`ALIVE`] and [`UNTRACEABLE`] are only set
///   along with `VISITED`.
/// * A `BUFFERED` object is never freed: it leaves the buffer first.
/// * [`MUT_BORROWED`] is set while a `GcMut` lends the value
///   out mutably (and stays set if that guard is leaked). While it is set,
///   nothing but the guard's owner may read the value: the collector does not
///   trace the object (it is held from outside, and what it points to is
///   kept alive), reports skip its value, and no handle to it may be made
///   (`upgrade`, `objects()` and the reporter's pins refuse it).
/// * [`PINNED`] is set on an object made by `Gc::pin`,
///   before its `Pin` exists, and never cleared: no handle may move its value
///   or lend it out mutably, whichever handle it is (see `PINNED`).
/// * A free slot has `state == 0` (type index 0 is never used for objects).
#[repr(C)]
pub(crate) struct Header {
    strong: Cell<u32>,
    weak: Cell<u32>,
    scratch: Cell<u32>,
    state: Cell<u32>,
}

/// A set of the header's flags (the low [`FLAG_BITS`] bits of the state
/// word): the constants below, combined with `|`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Flags(u32);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);

    /// Both sets (`|`, usable in constants).
    #[inline(always)]
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The bits, as they sit in the state word.
    #[inline(always)]
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;

    #[inline(always)]
    fn bitor(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl std::ops::BitAnd for Flags {
    type Output = Flags;

    #[inline(always)]
    fn bitand(self, other: Flags) -> Flags {
        Flags(self.0 & other.0)
    }
}

/// The object is in the thread's candidate buffer.
pub(crate) const BUFFERED: Flags = Flags(1 << 0);
/// The value has been dropped, is being dropped, or is not yet written.
pub(crate) const VALUE_DROPPED: Flags = Flags(1 << 1);
/// The object belongs to the garbage set of the running collection.
pub(crate) const COLLECTING: Flags = Flags(1 << 2);
/// The object's finalizer has run (it never runs twice).
pub(crate) const FINALIZED: Flags = Flags(1 << 3);
/// The object is in the running collection's node table (or, with the heap
/// quiesced, in the node table of a heap graph capture).
pub(crate) const VISITED: Flags = Flags(1 << 4);
/// The object's type cannot own a `Gc`, so the object is never part of a
/// cycle: it is not traced, and not buffered as a candidate when its count
/// drops to a non-zero value. Stored inverted (set for the *acyclic* types)
/// so that `Drop for Gc` decides "buffer or not" with a single test: all of
/// `ACYCLIC | BUFFERED | VALUE_DROPPED | COLLECTING` clear.
pub(crate) const ACYCLIC: Flags = Flags(1 << 5);
/// The collector found the object held from outside the subgraph it is
/// examining, or reachable from such an object (only while `VISITED`).
pub(crate) const ALIVE: Flags = Flags(1 << 6);
/// Part of the object's value could not be traced in the running collection
/// (only while `VISITED`).
pub(crate) const UNTRACEABLE: Flags = Flags(1 << 7);
/// A `GcMut` lends the value out mutably: nobody else may
/// read it (see the invariants of [`Header`]).
pub(crate) const MUT_BORROWED: Flags = Flags(1 << 8);
/// A heap snapshot or DevTools export gave the object an id, kept in the
/// thread's table of snapshot ids. Set only by that table's code; a fresh
/// object's header is written whole
/// ([`Header::new_uninit`]) and a freed slot's state is zeroed, so the flag
/// never outlives the object that got the id (nothing else sets or clears
/// it, and no other code depends on it).
pub(crate) const HAS_ID: Flags = Flags(1 << 9);
/// The value was pinned (`Gc::pin`): it must stay where
/// it is until it is dropped in place, so no handle may move it out or lend
/// it out mutably (`try_unwrap`, `into_inner`, `get_mut` refuse, `make_mut`
/// clones it). Set once, before the `Pin` exists, and never cleared: a
/// `Gc<T>` handle to a pinned object can still be had without the `Pin`
/// (a query listing the objects of a type hands one out, and `upgrade`
/// works).
pub(crate) const PINNED: Flags = Flags(1 << 10);
/// Bits 0..11 are flags; the type index lives above them.
pub(crate) const FLAG_BITS: u32 = 11;
/// The largest type index that fits beside the flags.
pub(crate) const MAX_TYPE_INDEX: u32 = u32::MAX >> FLAG_BITS;

// The memory layer tells live slots from free ones by the state word alone.
const _: () = assert!(std::mem::offset_of!(Header, state) == crate::alloc::STATE_OFFSET);

impl Header {
    /// A header for a fresh object whose type has the state template
    /// `type_state` (from `TypeTable::cached_state` or
    /// `TypeTable::register`), not yet holding a value: strong 0, only the
    /// implicit weak, value marked absent.
    #[inline]
    pub fn new_uninit(type_state: u32) -> Header {
        Header {
            strong: Cell::new(0),
            weak: Cell::new(1),
            scratch: Cell::new(0),
            state: Cell::new(type_state | VALUE_DROPPED.bits()),
        }
    }

    // The counts and the state word are read and written through these
    // methods only (the fields are private to this layer): a thread-safe
    // header would give the same methods over atomics.

    /// The number of strong handles.
    #[inline(always)]
    pub fn strong(&self) -> u32 {
        self.strong.get()
    }

    #[inline(always)]
    pub fn set_strong(&self, n: u32) {
        self.strong.set(n)
    }

    /// The value of a new object has just been written: its one strong count
    /// (the handle about to be made) and a value that may be read.
    #[inline(always)]
    pub fn value_written(&self) {
        self.set_strong(1);
        self.clear(VALUE_DROPPED);
    }

    /// The number of weak handles, plus one while the value is there.
    #[inline(always)]
    pub fn weak(&self) -> u32 {
        self.weak.get()
    }

    #[inline(always)]
    pub fn set_weak(&self, n: u32) {
        self.weak.set(n)
    }

    /// The scratch word (see the invariants).
    #[inline(always)]
    pub fn scratch(&self) -> u32 {
        self.scratch.get()
    }

    #[inline(always)]
    pub fn set_scratch(&self, n: u32) {
        self.scratch.set(n)
    }

    /// The whole state word: type index and flags (0: a free slot).
    #[inline(always)]
    pub fn state(&self) -> u32 {
        self.state.get()
    }

    /// The flags set, out of the state word.
    #[inline(always)]
    pub fn flags(&self) -> Flags {
        Flags(self.state.get() & ((1 << FLAG_BITS) - 1))
    }

    /// Whether any of `flags` is set.
    #[inline(always)]
    pub fn has(&self, flags: Flags) -> bool {
        self.state.get() & flags.0 != 0
    }

    #[inline(always)]
    pub fn set(&self, flags: Flags) {
        self.state.set(self.state.get() | flags.0)
    }

    #[inline(always)]
    pub fn clear(&self, flags: Flags) {
        self.state.set(self.state.get() & !flags.0)
    }

    /// Sets `flags` if `cond`, without a branch on `cond` (for a pass whose
    /// `cond` is a coin toss: the state word is written either way).
    #[inline(always)]
    pub fn set_if(&self, flags: Flags, cond: bool) {
        let mask = u32::from(cond).wrapping_neg();
        self.state.set(self.state.get() | (flags.0 & mask))
    }

    /// Clears `flags` unless `keep`, without a branch on `keep` (for a pass
    /// whose `keep` is a coin toss: the state word is written either way).
    #[inline(always)]
    pub fn clear_unless(&self, flags: Flags, keep: bool) {
        let kept = u32::from(keep).wrapping_neg();
        self.state.set(self.state.get() & (!flags.0 | kept))
    }

    #[inline(always)]
    pub fn type_index(&self) -> u32 {
        self.state.get() >> FLAG_BITS
    }

    /// Whether `Gc` handles may read the value right now.
    #[inline(always)]
    pub fn value_alive(&self) -> bool {
        !self.has(VALUE_DROPPED)
    }

    /// Whether the heap itself (the collector, a report, a new handle) may
    /// read the value right now: it is alive and not lent out mutably by a
    /// `GcMut`.
    #[inline(always)]
    pub fn value_readable(&self) -> bool {
        !self.has(VALUE_DROPPED | MUT_BORROWED)
    }

    #[inline(always)]
    pub fn inc_strong(&self) {
        // One read-modify-write and a test of its result, as `Rc` does: the
        // count wraps to zero only after `u32::MAX` handles, and then the
        // process stops before anything can see the zero (an overflowed
        // count would later free live memory).
        let n = self.strong.get().wrapping_add(1);
        self.strong.set(n);
        if n == 0 {
            std::process::abort();
        }
    }

    #[inline(always)]
    pub fn inc_weak(&self) {
        // As in `inc_strong`.
        let n = self.weak.get().wrapping_add(1);
        self.weak.set(n);
        if n == 0 {
            std::process::abort();
        }
    }
}

/// The object as the type system sees it: the header, then the value.
/// Public only so that `coerce_gc!` can name it.
#[doc(hidden)]
#[repr(C)]
pub struct GcBox<T: ?Sized> {
    pub(crate) header: Header,
    pub(crate) value: T,
}

impl<T> GcBox<T> {
    /// Values up to this size are moved in word by word (see
    /// [`write_value`](Self::write_value)); larger ones with `ptr::write`.
    const WORD_COPY_UP_TO: usize = 64;

    /// Moves `value` into the value slot of `this`, as `ptr::write` does.
    ///
    /// A value of 17 to 64 bytes aligned to 8 is copied one 8-byte word at a
    /// time. The caller has usually just built it on the stack with 8-byte
    /// stores (a field, a child handle returned by a recursive call), and
    /// `ptr::write` copies it with 16-byte loads. A load that spans two
    /// stores still in the store buffer cannot take its data from them and
    /// waits until both reach the cache: about a dozen cycles on current x86
    /// cores. `Rc::new` hides that wait behind its call to `malloc`; the slab
    /// allocation takes a few instructions, so the copy followed the stores
    /// at once. Loads of the stores' own width are forwarded. Measured on a
    /// 4-ary tree of 100,000 nodes with weak parent pointers (48-byte values;
    /// `benches/phases.rs`): build 1.08x `Rc` with `ptr::write`, 0.71-0.73x
    /// this way (benches/notes.md).
    ///
    /// A compiler fence after each word keeps the compiler from merging the
    /// loads back into wide ones (it emits no instruction). It leaves alone
    /// a value the compiler holds in registers (built from constants or
    /// arguments): that one is still stored straight into the box. Volatile
    /// loads did the same job but forced such values through the stack (up
    /// to +4% instructions on the benchmarks, against under +1% this way).
    /// Up to 64 bytes the narrower copy costs less than one stalled load;
    /// beyond that `ptr::write`'s block copy is kept, and a 16-byte value
    /// (two words, usually in registers) measured no better word by word.
    ///
    /// # Safety
    /// `this` points to an allocated `GcBox<T>` whose value slot is ours to
    /// initialize (no value in it, nobody reading it).
    #[inline(always)]
    pub(crate) unsafe fn write_value(this: NonNull<Self>, value: T) {
        // SAFETY: `this` is allocated (caller); no reference is made.
        let slot = unsafe { &raw mut (*this.as_ptr()).value };
        let size = size_of::<T>();
        if size > 16 && size <= Self::WORD_COPY_UP_TO && align_of::<T>() >= 8 {
            // The value is moved out bit for bit and must not be dropped here.
            let value = ManuallyDrop::new(value);
            let from = (&raw const *value).cast::<MaybeUninit<u64>>();
            let to = slot.cast::<MaybeUninit<u64>>();
            // (`size` is a multiple of the alignment, so of 8.)
            for i in 0..size / 8 {
                // SAFETY: both are aligned to 8 (tested above) and `T`-sized,
                // so word `i` lies inside each; the slot is ours to write
                // (caller). `MaybeUninit<u64>` copies padding and pointer
                // provenance as they are.
                unsafe { to.add(i).write(from.add(i).read()) };
                compiler_fence(Ordering::SeqCst);
            }
        } else {
            // SAFETY: as above; the slot is valid for a `T`.
            unsafe { slot.write(value) };
        }
    }
}
