//! The type table: what the heap knows about each concrete value type put in
//! a `Gc` ([`TypeInfo`], one `'static` instance per type), and the thread's
//! table that gives each type the index stored in its objects' headers
//! ([`TypeTable`]).
//!
//! Most values have a size known at compile time. A slice or string value
//! (`Gc<[E]>`, `Gc<str>`, made from a `Vec`, a slice, a string or an
//! iterator) has one `TypeInfo` per element type, and each object keeps its
//! own length in the large-object word before its header
//! ([`large_object_word`]): such objects are always allocated on the
//! large-object path, and every type-erased function of their `TypeInfo`
//! reads the length there.

use std::alloc::Layout;
use std::any::TypeId;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::alloc::{large_object_word, LARGE_CLASS};
use crate::header::{GcBox, Header, ACYCLIC, FLAG_BITS, MAX_TYPE_INDEX};
use crate::trace::{Trace, Tracer};

/// Everything the heap needs to know about one concrete value type, without
/// knowing the type: how to trace, finalize and drop it, and how big its
/// objects are. One `'static` instance per type ([`Stored::INFO`]).
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
    /// The whole object's (header + value) layout, and its size class. For a
    /// slice type, those of an empty slice; use
    /// [`layout_of`](Self::layout_of).
    pub box_layout: Layout,
    pub size_class: usize,
    /// Whether every object of the type has the same size, and what it takes.
    pub shape: Shape,
}

/// How big the objects of a type are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    /// All the same: `alloc_size` is what each really takes in memory, its
    /// size-class slot or its own allocation with the list link (reports
    /// count this).
    Fixed { alloc_size: usize },
    /// A slice type: `element` is the layout of one element, and each
    /// object's length is in its large-object word.
    Slice { element: Layout },
}

impl TypeInfo {
    /// The layout of the object at `header`, whose type this is.
    ///
    /// # Safety
    /// `header` is an allocated object of this type (its value may be gone:
    /// the length stays).
    #[inline]
    pub unsafe fn layout_of(&self, header: NonNull<Header>) -> Layout {
        match self.shape {
            Shape::Fixed { .. } => self.box_layout,
            // SAFETY: forwarded.
            Shape::Slice { element } => unsafe { slice_layout_of(element, header) },
        }
    }

    /// What the object at `header` (of this type) takes in memory: its
    /// size-class slot, or its own allocation with the list link.
    ///
    /// # Safety
    /// As for [`layout_of`](Self::layout_of).
    #[inline]
    pub unsafe fn alloc_size_of(&self, header: NonNull<Header>) -> usize {
        match self.shape {
            Shape::Fixed { alloc_size } => alloc_size,
            Shape::Slice { element } => {
                // SAFETY: forwarded.
                let layout = unsafe { slice_layout_of(element, header) };
                crate::alloc::large_allocated_size(layout.size(), layout.align())
            }
        }
    }
}

/// The layout of a slice object (header, then `len` elements of `element`'s
/// layout), as `repr(C)` lays out a `GcBox<[E]>`; `None` if too large.
pub(crate) fn slice_box_layout(element: Layout, len: usize) -> Option<Layout> {
    let elements =
        Layout::from_size_align(element.size().checked_mul(len)?, element.align()).ok()?;
    let (layout, _) = Layout::new::<Header>().extend(elements).ok()?;
    Some(layout.pad_to_align())
}

/// [`TypeInfo::layout_of`] for a slice object, out of line (its callers
/// free small objects on their hot paths).
///
/// # Safety
/// `header` is an allocated slice object with elements of `element`'s
/// layout.
#[cold]
#[inline(never)]
unsafe fn slice_layout_of(element: Layout, header: NonNull<Header>) -> Layout {
    // SAFETY: forwarded.
    let len = unsafe { slice_len(header) };
    slice_box_layout(element, len).expect("checked when the object was made")
}

/// The length of a slice object.
///
/// # Safety
/// `header` is an allocated object of a slice type.
#[inline]
unsafe fn slice_len(header: NonNull<Header>) -> usize {
    // SAFETY: slice objects are large (their `TypeInfo::size_class`), and
    // their word holds the length from `Heap::alloc_slice` on.
    unsafe { large_object_word(header.cast()).read() }
}

/// How the type-erased functions find an object's value from its header,
/// and how the type table knows the value's type: a value of a fixed type
/// ([`Fixed`]), or a slice or string whose length the object keeps
/// ([`Slice`]).
pub(crate) trait Stored: 'static {
    /// The value's type, as `Gc<Value>` names it (its `TypeId` keys the
    /// table and its name is the type's name in reports).
    type Value: ?Sized + 'static;
    /// What the value is traced, finalized, dropped and measured as.
    type Traced: ?Sized + Trace;

    /// The value of the object at `header`.
    ///
    /// # Safety
    /// `header` is an allocated object of this type.
    unsafe fn value(header: NonNull<Header>) -> *mut Self::Traced;

    /// The type's `may_contain_gc` and `has_finalizer` (user code).
    fn flags() -> (bool, bool);

    const INFO: &'static TypeInfo;
}

/// A value of the fixed-size type `T`.
pub(crate) struct Fixed<T>(PhantomData<T>);

impl<T: Trace + 'static> Stored for Fixed<T> {
    type Value = T;
    type Traced = T;

    #[inline(always)]
    unsafe fn value(header: NonNull<Header>) -> *mut T {
        // SAFETY: `Header` is at offset 0 of the `repr(C)` box (caller: the
        // object is a `GcBox<T>`).
        unsafe { &raw mut (*header.cast::<GcBox<T>>().as_ptr()).value }
    }

    fn flags() -> (bool, bool) {
        (T::may_contain_gc(), T::has_finalizer())
    }

    const INFO: &'static TypeInfo = &type_info::<Self>(
        Layout::new::<GcBox<T>>(),
        crate::alloc::class_of(size_of::<GcBox<T>>(), align_of::<GcBox<T>>()),
        Shape::Fixed {
            alloc_size: crate::alloc::allocated_size(size_of::<GcBox<T>>(), align_of::<GcBox<T>>()),
        },
    );
}

/// A slice of `E` whose length the object keeps, seen as the type `V`: `[E]`,
/// or `str` for `E = u8` (traced as its bytes).
pub(crate) struct Slice<E, V: ?Sized>(PhantomData<fn() -> (E, *const V)>);

impl<E: Trace + 'static, V: ?Sized + 'static> Stored for Slice<E, V> {
    type Value = V;
    type Traced = [E];

    #[inline(always)]
    unsafe fn value(header: NonNull<Header>) -> *mut [E] {
        // SAFETY: the object is a slice object (caller); its length is in
        // its word, and `GcBox<[E]>`'s metadata is that length.
        let len = unsafe { slice_len(header) };
        let boxed =
            std::ptr::slice_from_raw_parts_mut(header.as_ptr().cast::<E>(), len) as *mut GcBox<[E]>;
        // SAFETY: `boxed` is the object, with its length.
        unsafe { &raw mut (*boxed).value }
    }

    fn flags() -> (bool, bool) {
        // As for `[E; N]`: the elements' finalizers are not run.
        (E::may_contain_gc(), false)
    }

    const INFO: &'static TypeInfo = &type_info::<Self>(
        Layout::new::<GcBox<[E; 0]>>(),
        LARGE_CLASS,
        Shape::Slice {
            element: Layout::new::<E>(),
        },
    );
}

/// The `TypeInfo` of `S`: its type-erased functions, its name (that of
/// `S::Value`), and the layout figures the caller computed (see the fields).
const fn type_info<S: Stored>(box_layout: Layout, size_class: usize, shape: Shape) -> TypeInfo {
    TypeInfo {
        trace: trace_value::<S>,
        finalize: finalize_value::<S>,
        drop_value: drop_value::<S>,
        heap_size: heap_size_of::<S>,
        inert_heap_size: inert_heap_size_of::<S>,
        type_name: std::any::type_name::<S::Value>,
        box_layout,
        size_class,
        shape,
    }
}

/// # Safety
/// `header` is the header of a live object of type `S` whose value is intact.
unsafe fn trace_value<S: Stored>(header: NonNull<Header>, tracer: &mut Tracer<'_>) {
    // SAFETY: the caller guarantees an object of `S` with an intact value.
    let value = unsafe { &*S::value(header) };
    value.trace(tracer)
}

/// # Safety
/// As for `trace_value`.
unsafe fn finalize_value<S: Stored>(header: NonNull<Header>) {
    // SAFETY: as in `trace_value`.
    let value = unsafe { &*S::value(header) };
    value.finalize()
}

/// # Safety
/// As for `trace_value`.
unsafe fn heap_size_of<S: Stored>(header: NonNull<Header>) -> usize {
    // SAFETY: as in `trace_value`.
    let value = unsafe { &*S::value(header) };
    value.heap_size()
}

/// # Safety
/// As for `trace_value`.
unsafe fn inert_heap_size_of<S: Stored>(header: NonNull<Header>) -> Option<usize> {
    // SAFETY: as in `trace_value`.
    let value = unsafe { &*S::value(header) };
    value.__inert_heap_size(crate::trace::INERT_DEPTH)
}

/// # Safety
/// `header` is the header of an object of type `S` with an intact value that
/// nothing will read again (its `VALUE_DROPPED` flag is already set).
unsafe fn drop_value<S: Stored>(header: NonNull<Header>) {
    // SAFETY: the caller guarantees the value is intact and no longer
    // reachable through any reference (deref checks `VALUE_DROPPED`).
    unsafe { std::ptr::drop_in_place(S::value(header)) }
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
    pub fn cached_state<S: Stored>(&self) -> Option<u32> {
        let type_id = TypeId::of::<S::Value>();
        let (cached, state) = self.cache[Self::cache_slot(type_id)];
        (cached == type_id && state != 0).then_some(state)
    }

    /// Registers `T` (if new) with the flags its `Trace` impl gave, and
    /// returns its initial state word. The flags are computed by the caller,
    /// before borrowing the table, because they come from user code.
    #[cold]
    pub fn register<S: Stored>(&mut self, may_contain_gc: bool, has_finalizer: bool) -> u32 {
        let info = S::INFO;
        let type_id = TypeId::of::<S::Value>();
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
