//! Object layout: the 16-byte header every `Gc` object starts with, its state
//! bits, and the per-type information the header points to by index.
//!
//! ```text
//!  offset 0        4        8        12       16
//!        +--------+--------+--------+--------+---------------- - -
//!        | strong |  weak  | scratch| state  | value: T ...
//!        +--------+--------+--------+--------+---------------- - -
//!                                    state = type index (22 bits) | flags (10 bits)
//! ```
//!
//! There is no per-object type pointer and no per-object list link: the heap
//! finds every object by walking the chunks it allocated them from
//! ([`crate::alloc`]), and the type index names a [`TypeInfo`] in the thread's
//! type table ([`TypeTable`]). A `Gc<u64>` object is therefore 24 bytes, the
//! same as an `Rc<u64>` allocation.

use std::any::TypeId;
use std::cell::Cell;
use std::ptr::NonNull;

use crate::trace::{Trace, Tracer};

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
///   node number in `scratch`, both cleared before the buffer is restored
///   (`crate::report::graph`). [`ALIVE`] and [`UNTRACEABLE`] are only set
///   along with `VISITED`.
/// * A `BUFFERED` object is never freed: it leaves the buffer first.
/// * [`MUT_BORROWED`] is set while a [`GcMut`](crate::GcMut) lends the value
///   out mutably (and stays set if that guard is leaked). While it is set,
///   nothing but the guard's owner may read the value: the collector does not
///   trace the object (it is held from outside, and what it points to is
///   kept alive), reports skip its value, and no handle to it may be made
///   (`upgrade`, `objects()` and the reporter's pins refuse it).
/// * A free slot has `state == 0` (type index 0 is never used for objects).
#[repr(C)]
pub(crate) struct Header {
    pub strong: Cell<u32>,
    pub weak: Cell<u32>,
    pub scratch: Cell<u32>,
    pub state: Cell<u32>,
}

/// The object is in the thread's candidate buffer.
pub(crate) const BUFFERED: u32 = 1 << 0;
/// The value has been dropped, is being dropped, or is not yet written.
pub(crate) const VALUE_DROPPED: u32 = 1 << 1;
/// The object belongs to the garbage set of the running collection.
pub(crate) const COLLECTING: u32 = 1 << 2;
/// The object's finalizer has run (it never runs twice).
pub(crate) const FINALIZED: u32 = 1 << 3;
/// The object is in the running collection's node table (or, with the heap
/// quiesced, in the node table of a heap graph capture).
pub(crate) const VISITED: u32 = 1 << 4;
/// The object's type cannot own a `Gc`, so the object is never part of a
/// cycle: it is not traced, and not buffered as a candidate when its count
/// drops to a non-zero value. Stored inverted (set for the *acyclic* types)
/// so that `Drop for Gc` decides "buffer or not" with a single test: all of
/// `ACYCLIC | BUFFERED | VALUE_DROPPED | COLLECTING` clear.
pub(crate) const ACYCLIC: u32 = 1 << 5;
/// The collector found the object held from outside the subgraph it is
/// examining, or reachable from such an object (only while `VISITED`).
pub(crate) const ALIVE: u32 = 1 << 6;
/// Part of the object's value could not be traced in the running collection
/// (only while `VISITED`).
pub(crate) const UNTRACEABLE: u32 = 1 << 7;
/// A [`GcMut`](crate::GcMut) lends the value out mutably: nobody else may
/// read it (see the invariants of [`Header`]).
pub(crate) const MUT_BORROWED: u32 = 1 << 8;
/// A heap snapshot or DevTools export gave the object an id, kept in the
/// heap's table of snapshot ids ([`crate::report::ids`]). Set only by that
/// module; a fresh object's header is written whole
/// ([`Header::new_uninit`]) and a freed slot's state is zeroed, so the flag
/// never outlives the object that got the id (nothing else sets or clears
/// it, and no other code depends on it).
pub(crate) const HAS_ID: u32 = 1 << 9;
/// Bits 0..10 are flags; the type index lives above them.
pub(crate) const FLAG_BITS: u32 = 10;
const FLAG_MASK: u32 = (1 << FLAG_BITS) - 1;
/// The largest type index that fits beside the flags.
pub(crate) const MAX_TYPE_INDEX: u32 = u32::MAX >> FLAG_BITS;

impl Header {
    /// A header for a fresh object whose type has the state template
    /// `type_state` (from [`TypeTable::cached_state`] or
    /// [`TypeTable::register`]), not yet holding a value: strong 0, only the
    /// implicit weak, value marked absent.
    #[inline]
    pub fn new_uninit(type_state: u32) -> Header {
        Header {
            strong: Cell::new(0),
            weak: Cell::new(1),
            scratch: Cell::new(0),
            state: Cell::new(type_state | VALUE_DROPPED),
        }
    }

    #[inline(always)]
    pub fn has(&self, flag: u32) -> bool {
        self.state.get() & flag != 0
    }

    #[inline(always)]
    pub fn set(&self, flag: u32) {
        self.state.set(self.state.get() | flag)
    }

    #[inline(always)]
    pub fn clear(&self, flag: u32) {
        self.state.set(self.state.get() & !flag)
    }

    #[inline(always)]
    pub fn type_index(&self) -> u32 {
        self.state.get() >> FLAG_BITS
    }

    /// Flags only, for tests and debugging.
    #[allow(dead_code)]
    pub fn flags(&self) -> u32 {
        self.state.get() & FLAG_MASK
    }

    /// Whether `Gc` handles may read the value right now.
    #[inline(always)]
    pub fn value_alive(&self) -> bool {
        !self.has(VALUE_DROPPED)
    }

    /// Whether the heap itself (the collector, a report, a new handle) may
    /// read the value right now: it is alive and not lent out mutably by a
    /// [`GcMut`](crate::GcMut).
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

/// Everything the heap needs to know about one concrete value type, without
/// knowing the type: how to trace, finalize and drop it, and how big its
/// objects are. One `'static` instance per type ([`InfoFor::INFO`]).
pub(crate) struct TypeInfo {
    /// Traces the value of the object whose header is given.
    pub trace: unsafe fn(NonNull<Header>, &mut Tracer<'_>),
    /// Runs `Trace::finalize` on the value.
    pub finalize: unsafe fn(NonNull<Header>),
    /// Drops the value in place (not the memory).
    pub drop_value: unsafe fn(NonNull<Header>),
    /// Runs `Trace::heap_size` on the value (for reports).
    pub heap_size: unsafe fn(NonNull<Header>) -> usize,
    /// The value's `heap_size` if measuring it runs no user code
    /// (`Trace::__inert_heap_size`), else `None`.
    pub inert_heap_size: unsafe fn(NonNull<Header>) -> Option<usize>,
    pub type_name: fn() -> &'static str,
    /// The whole object's (header + value) layout, and its size class.
    pub box_layout: std::alloc::Layout,
    pub size_class: usize,
    /// What the object really takes in memory: its size-class slot, or its
    /// own allocation with the list link (reports count this).
    pub alloc_size: usize,
}

/// The object as the type system sees it: the header, then the value.
/// Public only so that `coerce_gc!` can name it.
#[doc(hidden)]
#[repr(C)]
pub struct GcBox<T: ?Sized> {
    pub(crate) header: Header,
    pub(crate) value: T,
}

/// Per-type constants, computed at compile time for every `T` put in a `Gc`.
pub(crate) struct InfoFor<T>(std::marker::PhantomData<T>);

impl<T: Trace + 'static> InfoFor<T> {
    pub const INFO: &'static TypeInfo = &TypeInfo {
        trace: trace_value::<T>,
        finalize: finalize_value::<T>,
        drop_value: drop_value::<T>,
        heap_size: heap_size_of::<T>,
        inert_heap_size: inert_heap_size_of::<T>,
        type_name: std::any::type_name::<T>,
        box_layout: std::alloc::Layout::new::<GcBox<T>>(),
        size_class: crate::alloc::class_of(
            std::mem::size_of::<GcBox<T>>(),
            std::mem::align_of::<GcBox<T>>(),
        ),
        alloc_size: crate::alloc::allocated_size(
            std::mem::size_of::<GcBox<T>>(),
            std::mem::align_of::<GcBox<T>>(),
        ),
    };
}

/// # Safety
/// `header` is the header of a live `GcBox<T>` whose value is intact.
unsafe fn trace_value<T: Trace>(header: NonNull<Header>, tracer: &mut Tracer<'_>) {
    // SAFETY: the caller guarantees a `GcBox<T>` with an intact value; `Header`
    // is at offset 0 of the `repr(C)` box.
    let value = unsafe { &(*header.cast::<GcBox<T>>().as_ptr()).value };
    value.trace(tracer)
}

/// # Safety
/// As for `trace_value`.
unsafe fn finalize_value<T: Trace>(header: NonNull<Header>) {
    // SAFETY: as in `trace_value`.
    let value = unsafe { &(*header.cast::<GcBox<T>>().as_ptr()).value };
    value.finalize()
}

/// # Safety
/// As for `trace_value`.
unsafe fn heap_size_of<T: Trace>(header: NonNull<Header>) -> usize {
    // SAFETY: as in `trace_value`.
    let value = unsafe { &(*header.cast::<GcBox<T>>().as_ptr()).value };
    value.heap_size()
}

/// # Safety
/// As for `trace_value`.
unsafe fn inert_heap_size_of<T: Trace>(header: NonNull<Header>) -> Option<usize> {
    // SAFETY: as in `trace_value`.
    let value = unsafe { &(*header.cast::<GcBox<T>>().as_ptr()).value };
    value.__inert_heap_size(crate::trace::INERT_DEPTH)
}

/// # Safety
/// `header` is the header of a `GcBox<T>` with an intact value that nothing
/// will read again (its `VALUE_DROPPED` flag is already set).
unsafe fn drop_value<T>(header: NonNull<Header>) {
    // SAFETY: the caller guarantees the value is intact and no longer
    // reachable through any reference (deref checks `VALUE_DROPPED`).
    unsafe { std::ptr::drop_in_place(&raw mut (*header.cast::<GcBox<T>>().as_ptr()).value) }
}

/// The thread's table of types, indexed by the type index in each header.
///
/// Index 0 is reserved (free slots). Lookups by `TypeId` go through a small
/// direct-mapped cache, because `Gc::new` does one per allocation; a miss
/// falls back to a search of the table. (The cache is keyed by `TypeId`, not
/// by the address of the type's `TypeInfo`: a promoted constant may have a
/// different address in each codegen unit, and keyed so the cache missed on
/// every allocation made outside this crate.)
pub(crate) struct TypeTable {
    entries: Vec<TypeEntry>,
    /// Some registered type has a finalizer.
    any_finalizer: bool,
    /// `(type, state)`; a zero state marks an empty slot (a registered type's
    /// state holds its index, which is never zero).
    cache: [(TypeId, u32); CACHE_SLOTS],
}

#[derive(Clone, Copy)]
pub(crate) struct TypeEntry {
    pub info: &'static TypeInfo,
    pub type_id: TypeId,
    pub may_contain_gc: bool,
    pub has_finalizer: bool,
}

const CACHE_SLOTS: usize = 64;

impl TypeTable {
    pub fn new() -> Self {
        TypeTable {
            entries: Vec::new(),
            any_finalizer: false,
            cache: [(TypeId::of::<()>(), 0); CACHE_SLOTS],
        }
    }

    /// The cache slot of a type: low bits of its `TypeId`'s hash (constant
    /// after inlining, since the `TypeId` is).
    #[inline]
    fn cache_slot(type_id: TypeId) -> usize {
        use std::hash::{Hash, Hasher};
        /// Folds whatever `TypeId` hashes into one word.
        struct Fold(u64);
        impl Hasher for Fold {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for &b in bytes {
                    self.0 = self.0.rotate_left(8) ^ u64::from(b);
                }
            }
            fn write_u64(&mut self, n: u64) {
                self.0 = self.0.rotate_left(8) ^ n;
            }
        }
        let mut fold = Fold(0);
        type_id.hash(&mut fold);
        let h = fold.finish();
        ((h ^ (h >> 32)) as usize) % CACHE_SLOTS
    }

    /// The initial state word of a `T` object (its type index, plus
    /// [`ACYCLIC`] if the type cannot own a `Gc`), if `T` is registered and
    /// in the cache.
    #[inline]
    pub fn cached_state<T: Trace + 'static>(&self) -> Option<u32> {
        let type_id = TypeId::of::<T>();
        let (cached, state) = self.cache[Self::cache_slot(type_id)];
        (cached == type_id && state != 0).then_some(state)
    }

    /// Registers `T` (if new) with the flags its `Trace` impl gave, and
    /// returns its initial state word. The flags are computed by the caller,
    /// before borrowing the table, because they come from user code.
    #[cold]
    pub fn register<T: Trace + 'static>(
        &mut self,
        may_contain_gc: bool,
        has_finalizer: bool,
    ) -> u32 {
        let info = InfoFor::<T>::INFO;
        let type_id = TypeId::of::<T>();
        let pos = match self.entries.iter().position(|e| e.type_id == type_id) {
            Some(pos) => pos,
            None => {
                assert!(
                    self.entries.len() < MAX_TYPE_INDEX as usize,
                    "rcycle: too many types"
                );
                self.entries.push(TypeEntry {
                    info,
                    type_id,
                    may_contain_gc,
                    has_finalizer,
                });
                self.any_finalizer |= has_finalizer;
                self.entries.len() - 1
            }
        };
        let index = pos as u32 + 1;
        let mut state = index << FLAG_BITS;
        if !self.entries[pos].may_contain_gc {
            state |= ACYCLIC;
        }
        self.cache[Self::cache_slot(type_id)] = (type_id, state);
        state
    }

    /// The entry for a type index taken from a live object's header.
    #[inline]
    pub fn get(&self, index: u32) -> &TypeEntry {
        &self.entries[index as usize - 1]
    }

    /// The index of the type with this `TypeId`, if registered.
    pub fn index_of(&self, type_id: TypeId) -> Option<u32> {
        let pos = self.entries.iter().position(|e| e.type_id == type_id)?;
        Some(pos as u32 + 1)
    }

    /// Whether some registered type has a finalizer.
    pub fn any_finalizer(&self) -> bool {
        self.any_finalizer
    }

    /// The number of registered types.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
