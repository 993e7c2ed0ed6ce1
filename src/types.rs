//! The type table: what the heap knows about each concrete value type put in
//! a `Gc` ([`TypeInfo`], one `'static` instance per type), and the thread's
//! table that gives each type the index stored in its objects' headers
//! ([`TypeTable`]).

use std::any::TypeId;
use std::ptr::NonNull;

use crate::header::{GcBox, Header, ACYCLIC, FLAG_BITS, MAX_TYPE_INDEX};
use crate::trace::{Trace, Tracer};

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

/// Per-type constants, computed at compile time for every `T` put in a `Gc`.
struct InfoFor<T>(std::marker::PhantomData<T>);

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
            state |= ACYCLIC.bits();
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
