//! `Gc<T>`: the strong handle.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

use crate::header::{
    GcBox, Header, ACYCLIC, BUFFERED, COLLECTING, MUT_BORROWED, PINNED, VALUE_DROPPED,
};
use crate::heap::Heap;
use crate::runtime::{exited_op_end, heap, heap_ptr};
use crate::trace::{Trace, Tracer};
use crate::weak::WeakGc;

mod rc_api;
mod slices;

/// A reference-counted pointer whose reference cycles are collected.
///
/// Used exactly like [`std::rc::Rc`]: cloning makes another handle, dropping
/// the last handle drops the value at once. In addition, objects that only
/// keep *each other* alive (a cycle) are freed by [`collect`](crate::collect()),
/// which also runs automatically.
///
/// `Gc<T>` is one pointer wide, and so is `Option<Gc<T>>`. It is neither
/// `Send` nor `Sync`: every thread has its own heap.
///
/// # Dropped values
///
/// When a garbage cycle is freed, a `Drop` impl of one member may still hold
/// (or stash) a handle to another member whose value is already gone.
/// Dereferencing such a handle panics with a clear message instead of reading
/// freed memory; [`Gc::try_deref`] returns `None` instead.
///
/// ```
/// use rcycle::{collect, Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { name: String, next: RefCell<Option<Gc<Node>>> }
///
/// let a = Gc::new(Node { name: "a".into(), next: RefCell::new(None) });
/// let b = Gc::new(Node { name: "b".into(), next: RefCell::new(Some(a.clone())) });
/// *a.next.borrow_mut() = Some(b.clone()); // a <-> b
/// assert_eq!(b.name, "b");
/// drop((a, b));
/// assert_eq!(collect(), 2); // the cycle is gone
/// ```
///
/// # Variance
///
/// Unlike `Rc<T>`, `Gc<T>` is *invariant* in `T`: a `Gc<&'static str>` is
/// not a `Gc<&'a str>`. Every object is on a heap that can hand out handles
/// to it by type ([`objects`](crate::report::objects())), typed as it was made; a
/// handle that forgot part of a lifetime could write a shorter-lived value
/// through [`Gc::get_mut`] that such a handle would then read after it is
/// gone.
///
/// ```compile_fail
/// fn shorten<'a>(g: rcycle::Gc<&'static str>) -> rcycle::Gc<&'a str> {
///     g // error: lifetime may not live long enough
/// }
/// ```
#[repr(transparent)] // (`__gc_headers` reads a slice of them as pointers)
pub struct Gc<T: ?Sized> {
    ptr: NonNull<GcBox<T>>,
    _owns: PhantomData<GcBox<T>>,
    /// Invariance in `T` (see the type's docs).
    _invariant: PhantomData<*mut T>,
}

#[cold]
#[inline(never)]
#[track_caller]
fn dead_value() -> ! {
    panic!(
        "rcycle: dereferenced a Gc whose value has already been dropped \
         (it was part of a collected garbage cycle, or is being dropped now); \
         use Gc::try_deref to check"
    )
}

impl<T: Trace + 'static> Gc<T> {
    /// Moves `value` into a new object on this thread's heap.
    ///
    /// ```
    /// let five = rcycle::Gc::new(5);
    /// assert_eq!(*five, 5);
    /// ```
    #[inline]
    #[track_caller]
    pub fn new(value: T) -> Gc<T> {
        // One thread-local lookup for both the allocation and the growth check.
        let heap = heap();
        let boxed = Self::alloc_box(heap);
        // SAFETY: a fresh box with no value and no strong handle.
        let gc = unsafe { Self::init_value(boxed, value) };
        heap.after_alloc();
        gc
    }

    /// A fresh box for a `T` (its header written, no value, strong 0, the
    /// implicit weak), with its allocation site recorded (feature `sites`).
    #[inline(always)]
    #[track_caller]
    fn alloc_box(heap: &Heap) -> NonNull<GcBox<T>> {
        let header = heap.alloc::<T>();
        #[cfg(feature = "sites")]
        heap.record_site(header, std::panic::Location::caller());
        header.cast::<GcBox<T>>()
    }

    /// Writes the value of a box from [`alloc_box`](Self::alloc_box) and
    /// makes its first strong handle.
    ///
    /// # Safety
    /// `boxed` came from `alloc_box`, has no value yet and no strong handle.
    #[inline(always)]
    unsafe fn init_value(boxed: NonNull<GcBox<T>>, value: T) -> Gc<T> {
        // SAFETY: `alloc` returned memory for a `GcBox<T>` with its header
        // written; the value slot is ours to initialize (caller).
        unsafe { GcBox::write_value(boxed, value) };
        // SAFETY: header written.
        unsafe { &(*boxed.as_ptr()).header }.value_written();
        // SAFETY: the object was just made with one strong count, ours.
        unsafe { Gc::from_box(boxed) }
    }

    /// Makes an object that refers to itself: `data_fn` receives a [`WeakGc`]
    /// to the object being built (its `upgrade` returns `None` until
    /// `new_cyclic` returns).
    ///
    /// ```
    /// use rcycle::{Gc, Trace, WeakGc};
    /// #[derive(Trace)]
    /// struct Me { me: WeakGc<Me> }
    /// let m = Gc::new_cyclic(|w| Me { me: w.clone() });
    /// assert!(Gc::ptr_eq(&m.me.upgrade().unwrap(), &m));
    /// ```
    #[track_caller]
    pub fn new_cyclic<F: FnOnce(&WeakGc<T>) -> T>(data_fn: F) -> Gc<T> {
        let boxed = Self::alloc_box(heap());
        let header = boxed.cast::<Header>();
        // The implicit weak (1) is kept until the value exists; `weak` holds
        // one more. If `data_fn` panics, `Uninit` releases the implicit weak,
        // and `weak`'s own drop releases its count: memory is freed, never
        // read (the value is still marked absent).
        struct Uninit(NonNull<Header>);
        impl Drop for Uninit {
            fn drop(&mut self) {
                let heap = heap();
                // SAFETY: we own the implicit weak of an object with no value.
                unsafe { heap.release_weak(self.0) };
                if heap.is_exited() {
                    // SAFETY: no `&Heap` argument here, and `heap` is not
                    // used again.
                    unsafe { exited_op_end() }
                }
            }
        }
        let guard = Uninit(header);
        // SAFETY: the header is written; a weak handle may exist.
        unsafe { header.as_ref() }.inc_weak();
        let weak = WeakGc::from_box(boxed);
        let value = data_fn(&weak);
        std::mem::forget(guard);
        // SAFETY: the box has no value yet and no strong handle (`weak` is
        // weak).
        let gc = unsafe { Self::init_value(boxed, value) };
        drop(weak);
        heap().after_alloc();
        gc
    }
}

impl<T> Gc<T> {
    /// Returns the value if this is the only strong handle (weak handles then
    /// stop upgrading), or `Err(this)` otherwise: also while the value is
    /// being collected, after it was dropped, and for an object made by
    /// [`Gc::pin`] (its value must not move).
    ///
    /// ```
    /// use rcycle::Gc;
    /// let x = Gc::new(3);
    /// assert_eq!(Gc::try_unwrap(x), Ok(3));
    /// let y = Gc::new(4);
    /// let y2 = y.clone();
    /// assert_eq!(*Gc::try_unwrap(y).unwrap_err(), 4);
    /// # drop(y2);
    /// ```
    pub fn try_unwrap(this: Self) -> Result<T, Self> {
        let h = this.header();
        if h.strong() != 1 || !h.value_alive() || h.has(COLLECTING | PINNED) {
            return Err(this);
        }
        let this = ManuallyDrop::new(this);
        let h = this.header();
        h.set(VALUE_DROPPED);
        h.set_strong(0);
        // SAFETY: the value is intact, we hold the only strong handle, and the
        // flag just set stops every other access; the value is moved out once.
        let value = unsafe { ptr::read(&(*this.ptr.as_ptr()).value) };
        let heap = heap();
        // SAFETY: strong is zero and the value gone: release the implicit weak.
        unsafe { heap.release_weak(this.ptr.cast()) };
        if heap.is_exited() {
            // SAFETY: no `&Heap` argument here, and `heap` is not used again.
            unsafe { exited_op_end() }
        }
        Ok(value)
    }
}

impl<T: ?Sized> Gc<T> {
    #[inline(always)]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a `Gc` holds a strong count, which keeps the header readable
        // (the implicit weak is held at least as long as any strong handle).
        unsafe { &*self.ptr.as_ptr().cast::<Header>() }
    }

    #[inline(always)]
    pub(crate) fn header_ptr(&self) -> NonNull<Header> {
        self.ptr.cast()
    }

    /// Wraps an object pointer whose strong count the caller already added.
    ///
    /// # Safety
    /// `ptr` is a live object of a `T` and the caller transfers one strong
    /// count to the new handle.
    #[inline]
    pub(crate) unsafe fn from_box(ptr: NonNull<GcBox<T>>) -> Self {
        Gc {
            ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// The value, or `None` if it has already been dropped (see
    /// [the type-level docs](Gc#dropped-values)).
    ///
    /// ```
    /// let g = rcycle::Gc::new("hi");
    /// assert_eq!(rcycle::Gc::try_deref(&g), Some(&"hi"));
    /// ```
    #[inline]
    pub fn try_deref(this: &Self) -> Option<&T> {
        if this.header().value_alive() {
            // SAFETY: the value is intact (flag clear) and stays so while this
            // handle is borrowed: values are dropped only once the strong count
            // is zero, or by the collector, which never frees a value reachable
            // from a borrowed handle (it is held from outside).
            Some(unsafe { &(*this.ptr.as_ptr()).value })
        } else {
            None
        }
    }

    /// Makes a [`WeakGc`] to the same object.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1);
    /// let w = rcycle::Gc::downgrade(&g);
    /// assert_eq!(*w.upgrade().unwrap(), 1);
    /// ```
    pub fn downgrade(this: &Self) -> WeakGc<T> {
        this.header().inc_weak();
        WeakGc::from_box(this.ptr)
    }

    /// The number of `Gc` handles to this object.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1);
    /// let h = g.clone();
    /// assert_eq!(rcycle::Gc::strong_count(&g), 2);
    /// # drop(h);
    /// ```
    #[inline]
    pub fn strong_count(this: &Self) -> usize {
        this.header().strong() as usize
    }

    /// The number of [`WeakGc`] handles to this object.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1);
    /// let w = rcycle::Gc::downgrade(&g);
    /// assert_eq!(rcycle::Gc::weak_count(&g), 1);
    /// # drop(w);
    /// ```
    #[inline]
    pub fn weak_count(this: &Self) -> usize {
        // Minus the implicit weak, held as long as any strong handle exists.
        this.header().weak() as usize - 1
    }

    /// Whether two handles point to the same object (like [`std::ptr::eq`]).
    ///
    /// ```
    /// let a = rcycle::Gc::new(1);
    /// let b = a.clone();
    /// let c = rcycle::Gc::new(1);
    /// assert!(rcycle::Gc::ptr_eq(&a, &b) && !rcycle::Gc::ptr_eq(&a, &c));
    /// ```
    #[inline]
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        ptr::addr_eq(this.ptr.as_ptr(), other.ptr.as_ptr())
    }

    /// A pointer to the value (valid while the value is alive).
    ///
    /// ```
    /// let g = rcycle::Gc::new(7);
    /// assert_eq!(unsafe { *rcycle::Gc::as_ptr(&g) }, 7);
    /// ```
    #[inline]
    pub fn as_ptr(this: &Self) -> *const T {
        // SAFETY: only computes the field address; nothing is read.
        unsafe { &raw const (*this.ptr.as_ptr()).value }
    }

    /// Exclusive access to the value if no other `Gc` or `WeakGc` handle to
    /// it exists, like [`Rc::get_mut`](std::rc::Rc::get_mut); `None`
    /// otherwise (and while the value is being dropped or collected, and for
    /// an object made by [`Gc::pin`], whose value must not move).
    ///
    /// The value is lent out through a [`GcMut`] guard, which dereferences to
    /// `&mut T`. While the guard lives, the heap keeps its hands off the
    /// value: the collector treats the object as held from outside and does
    /// not trace it, reports skip its value, and no handle to it can be made
    /// ([`WeakGc::upgrade`], [`objects`](crate::report::objects())). The strong and
    /// weak counts alone cannot promise that, because the heap itself can
    /// reach every object.
    ///
    /// ```
    /// let mut g = rcycle::Gc::new(vec![1]);
    /// rcycle::Gc::get_mut(&mut g).unwrap().push(2); // methods through the guard
    /// assert_eq!(*g, [1, 2]);
    /// *rcycle::Gc::get_mut(&mut g).unwrap() = vec![3, 4]; // assignment
    /// assert_eq!(*g, [3, 4]);
    /// let g2 = g.clone();
    /// assert!(rcycle::Gc::get_mut(&mut g).is_none());
    /// # drop(g2);
    /// ```
    ///
    /// Where a function wants a `&mut T`, reborrow through the guard:
    ///
    /// ```
    /// fn fill(v: &mut Vec<u8>) { v.extend([1, 2, 3]) }
    /// let mut g = rcycle::Gc::new(Vec::new());
    /// fill(&mut rcycle::Gc::get_mut(&mut g).unwrap());
    /// assert_eq!(g.len(), 3);
    /// ```
    pub fn get_mut(this: &mut Self) -> Option<GcMut<'_, T>> {
        let h = this.header();
        if h.strong() == 1 && h.weak() == 1 && h.value_alive() && !h.has(COLLECTING | PINNED) {
            // From here until the guard drops, the value is the guard's
            // alone (see `GcMut`).
            h.set(MUT_BORROWED);
            Some(GcMut { gc: this })
        } else {
            None
        }
    }

    /// Unsizes a `Gc`. Use [`coerce_gc!`](crate::coerce_gc) instead.
    ///
    /// # Safety
    /// `f` must return its argument, converted by an unsizing coercion.
    #[doc(hidden)]
    pub unsafe fn __unsize<U: ?Sized>(
        this: Self,
        f: impl FnOnce(*mut GcBox<T>) -> *mut GcBox<U>,
    ) -> Gc<U> {
        let this = ManuallyDrop::new(this);
        let raw = f(this.ptr.as_ptr());
        assert!(
            ptr::addr_eq(raw, this.ptr.as_ptr()),
            "coerce_gc: not a coercion"
        );
        // SAFETY: same (non-null) address as `this.ptr`, the same object;
        // the strong count of `this` (not dropped) moves to the new handle.
        unsafe { Gc::from_box(NonNull::new_unchecked(raw)) }
    }
}

/// Exclusive access to the value of a [`Gc`] that has no other handle: what
/// [`Gc::get_mut`] and [`Gc::make_mut`] return. Dereferences to `&mut T`.
///
/// # Invariants
///
/// While a `GcMut` lives, its object has `MUT_BORROWED` set, and the guard
/// holds the exclusive borrow of the object's only handle (strong count 1,
/// no `WeakGc`, not pinned: checked by `get_mut` and `make_mut`, or a new
/// object that `make_mut` lent out before any user code could reach it). No
/// other reference to the value can exist or be made meanwhile:
/// * user code has no other handle, and cannot make one: `clone` and
///   `downgrade` need the borrowed handle, `WeakGc::upgrade` and
///   [`objects`](crate::report::objects()) refuse a `MUT_BORROWED` object;
/// * the heap does not read the value: the collector does not trace it
///   (the object counts as held from outside, so it is never garbage, and
///   whatever it points to stays alive), and reports neither measure nor
///   trace it, nor pin it with a strong count;
/// * its value is dropped only when the strong count reaches zero (which
///   needs the borrowed handle) or by the collector (which never frees it).
///
/// Dropping the guard clears the flag. Leaking it (`mem::forget`) leaves the
/// flag set: the object is then never traced or measured again (a possible
/// leak of what it points to, never unsoundness).
///
/// ```
/// use rcycle::{Gc, GcMut};
/// let mut g = Gc::new(String::from("a"));
/// {
///     let mut s: GcMut<'_, String> = Gc::get_mut(&mut g).unwrap();
///     s.push('b');
///     assert!(rcycle::report::objects::<String>().is_empty()); // lent out
/// }
/// assert_eq!(*g, "ab");
/// assert_eq!(rcycle::report::objects::<String>().len(), 1);
/// ```
pub struct GcMut<'a, T: ?Sized> {
    gc: &'a mut Gc<T>,
}

impl<T: ?Sized> Deref for GcMut<'_, T> {
    type Target = T;

    /// The value.
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the value is intact and lent to this guard (type
        // invariants); a shared borrow of the guard gives a shared borrow.
        unsafe { &(*self.gc.ptr.as_ptr()).value }
    }
}

impl<T: ?Sized> DerefMut for GcMut<'_, T> {
    /// The value, mutably.
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the value is intact and no other reference to it exists
        // or can be made while the guard lives (type invariants); the
        // header is a separate field, so the heap's reads of it do not alias.
        unsafe { &mut (*self.gc.ptr.as_ptr()).value }
    }
}

impl<T: ?Sized> Drop for GcMut<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // The value may be read by the heap and new handles again.
        self.gc.header().clear(MUT_BORROWED);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for GcMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Converts a `Gc<T>` into a `Gc<U>` where `T` unsizes to `U`:
/// `Gc<dyn Trait>` from `Gc<Concrete>`, `Gc<[T]>` from `Gc<[T; N]>`. (Stable
/// Rust has no user `CoerceUnsized`; `Rc` gets this from the compiler.)
///
/// ```
/// use rcycle::{coerce_gc, Gc};
/// use std::fmt::Display;
///
/// let shown: Gc<dyn Display> = coerce_gc!(Gc::new(42) => dyn Display);
/// assert_eq!(shown.to_string(), "42");
/// let slice: Gc<[u8]> = coerce_gc!(Gc::new([1u8, 2, 3]) => [u8]);
/// assert_eq!(slice.len(), 3);
/// ```
///
/// Only coercions compile; casting to an unrelated type does not:
///
/// ```compile_fail
/// use rcycle::{coerce_gc, Gc};
/// let nope: Gc<String> = coerce_gc!(Gc::new(1u64) => String);
/// ```
///
/// Nor does a coercion that would shorten a lifetime on the way (`Gc` is
/// invariant, see [its docs](Gc#variance)):
///
/// ```compile_fail
/// use rcycle::{coerce_gc, Gc};
/// fn shorten<'a>(g: Gc<[&'static str; 1]>) -> Gc<[&'a str]> {
///     coerce_gc!(g => [&'a str])
/// }
/// ```
#[macro_export]
macro_rules! coerce_gc {
    ($gc:expr => $target:ty) => {{
        let gc = $gc;
        // SAFETY: the closure only coerces (no `as` cast), so it returns its
        // argument unsized; `*mut` pointers coerce without subtyping, so the
        // element or field types stay exactly what the object holds.
        unsafe { $crate::Gc::__unsize(gc, |p| -> *mut $crate::__private::GcBox<$target> { p }) }
    }};
}

impl<T: ?Sized> Clone for Gc<T> {
    /// Another handle to the same object.
    ///
    /// ```
    /// let a = rcycle::Gc::new(1);
    /// let b = a.clone();
    /// assert!(rcycle::Gc::ptr_eq(&a, &b));
    /// ```
    #[inline]
    fn clone(&self) -> Self {
        self.header().inc_strong();
        // SAFETY: the count just added moves to the new handle.
        unsafe { Gc::from_box(self.ptr) }
    }
}

impl<T: ?Sized> Drop for Gc<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this handle owns one strong count, given up here; a
        // `T` without drop glue runs no code when its value is dropped.
        unsafe { release_strong(self.header_ptr(), std::mem::needs_drop::<T>()) }
    }
}

/// Gives up one strong count: what dropping a `Gc` does, for any type.
///
/// `needs_drop` is false only where dropping the value runs no code at all
/// (`std::mem::needs_drop` of the value's type).
///
/// # Safety
/// The caller owns one strong count of the object and stops using it, and
/// `needs_drop` is what it says.
#[inline(always)]
unsafe fn release_strong(header: NonNull<Header>, needs_drop: bool) {
    // SAFETY: the count being released keeps the header readable.
    let h = unsafe { header.as_ref() };
    let strong = h.strong() - 1;
    h.set_strong(strong);
    if strong == 0 {
        if needs_drop {
            // SAFETY: the last strong count was just released.
            unsafe { drop_last(header) };
        } else {
            // SAFETY: as above, and dropping the value runs no code.
            unsafe { drop_last_plain(header) };
        }
    } else if !h.has(ACYCLIC | BUFFERED | VALUE_DROPPED | COLLECTING) {
        // Might now be the only thing outside a garbage cycle that kept it
        // alive: remember it for the next collection.
        buffer_candidate(header);
    }
}

/// Out of line, so that `Drop for Gc` stays small enough to inline: an object
/// is buffered once until the next collection, so in a loop that clones and
/// drops handles this runs once, and the decrement runs every time.
#[cold]
#[inline(never)]
fn buffer_candidate(header: NonNull<Header>) {
    // SAFETY: the thread's heap, and `header` a live object of it (the caller
    // holds a strong count); no `&Heap` is held here.
    unsafe { crate::heap::Heap::buffer_candidate(heap_ptr(), header) }
}

/// The last strong handle of an object is gone.
///
/// Most calls come from the drop of a value being dropped already (a tree's
/// children), which only queue the object: that path makes no call that is
/// not a tail call, so it needs no stack frame.
///
/// # Safety
/// The object's strong count has just reached zero.
#[cold]
#[inline(never)]
unsafe fn drop_last(header: NonNull<Header>) {
    // SAFETY: the implicit weak keeps the header readable.
    let h = unsafe { header.as_ref() };
    if h.has(COLLECTING | VALUE_DROPPED) {
        if h.has(COLLECTING) {
            // A member of the garbage set being freed (the collector is
            // dropping the values, and this was an edge between two of
            // them): the collector owns it. Tested here, not in
            // `drop_last_of_dead`, because every such edge comes here.
            return;
        }
        // SAFETY: forwarded.
        return unsafe { drop_last_of_dead(header) };
    }
    // SAFETY: the thread's heap, no `&Heap` held here; strong is zero, the
    // value intact, not collecting.
    unsafe { crate::heap::Heap::drop_unreferenced(heap_ptr(), header) }
}

/// [`drop_last`] for a value whose type has no drop glue (a `Gc<u64>`, a
/// `Gc<str>`): dropping it runs no code, so no `Drop` can let go of other
/// handles, and it needs no drop loop (whose setup was most of what freeing
/// such an object cost): it becomes a dead box at once, and its memory goes
/// with the implicit weak. If objects wait in the drop queue (left by a
/// panicking `Drop`), it takes the ordinary path, whose drop loop drops
/// them too.
///
/// # Safety
/// As for `drop_last`, and the value's type has no drop glue.
#[cold]
#[inline(never)]
unsafe fn drop_last_plain(header: NonNull<Header>) {
    // SAFETY: the implicit weak keeps the header readable.
    let h = unsafe { header.as_ref() };
    if h.has(COLLECTING | VALUE_DROPPED) {
        // SAFETY: forwarded (`drop_last` handles both, for any type).
        return unsafe { drop_last(header) };
    }
    let heap = heap_ptr();
    // SAFETY: the thread's live heap; a short borrow.
    if unsafe { (*heap).has_queued_drops() } {
        // SAFETY: forwarded.
        return unsafe { drop_last(header) };
    }
    // From now on no reference to the value can be made; there is nothing
    // to run to drop it.
    h.set(VALUE_DROPPED);
    // SAFETY: strong is zero and the value gone (it had nothing to drop);
    // not collecting; `heap` is the thread's.
    unsafe { free_dead_box(heap, header) }
}

/// [`drop_last`] for a dead box (an object whose value is gone).
///
/// # Safety
/// As for `drop_last`, and the object is `VALUE_DROPPED`, not `COLLECTING`.
#[cold]
#[inline(never)]
unsafe fn drop_last_of_dead(header: NonNull<Header>) {
    // SAFETY: the implicit weak keeps the header readable.
    let h = unsafe { header.as_ref() };
    debug_assert!(
        !h.has(COLLECTING),
        "the collector's own: `drop_last` returns"
    );
    // A dead box (its value went with a collected cycle): only the memory
    // is left, held by the implicit weak.
    // SAFETY: forwarded; the thread's heap.
    unsafe { free_dead_box(heap_ptr(), header) }
}

/// Releases the implicit weak of a dead box whose last strong handle just
/// went (freeing its memory if no `WeakGc` is left), then ends the
/// operation on an exited heap.
///
/// (A pointer, not a `&Heap`: ending the operation may free the heap.)
///
/// # Safety
/// Strong is zero, the value gone, the object not `COLLECTING`; `heap` is
/// the thread's live heap, and the caller holds no `&Heap` it will use
/// again.
#[inline(always)]
unsafe fn free_dead_box(heap: *const Heap, header: NonNull<Header>) {
    {
        // SAFETY: the thread's live heap (caller); not used after the call
        // below, which may free it.
        let heap = unsafe { &*heap };
        // SAFETY: forwarded.
        unsafe { heap.release_weak(header) };
        if !heap.is_exited() {
            return;
        }
    }
    // SAFETY: no `&Heap` is live here (caller, and the block above ended).
    unsafe { exited_op_end() }
}

/// A strong handle whose value type is not known. Reports hold one on an
/// object while they run user code on its value (a map key's `Debug`, a
/// `heap_size` impl: safe code, which may drop handles or collect): the value
/// cannot be dropped meanwhile, and `get_mut` refuses it.
///
/// A collection that runs while the pin is held (started by that user code)
/// finds the object held from outside, and with it whatever the object
/// reaches, and takes their candidates out of the buffer; releasing the pin
/// then buffers the object, so that a garbage cycle the pin kept alive is
/// found by the next collection.
pub(crate) struct ErasedGc {
    header: NonNull<Header>,
    /// The heap's collection count when the pin was taken.
    collections: u64,
}

impl ErasedGc {
    /// A handle to `header` if its value is alive and not lent out by a
    /// [`GcMut`], else `None`.
    ///
    /// # Safety
    /// `header` is readable (the caller holds a weak or strong count), and
    /// an object of `heap`, this thread's heap.
    #[inline]
    pub(crate) unsafe fn new(heap: &Heap, header: NonNull<Header>) -> Option<ErasedGc> {
        // SAFETY: readable (caller).
        let h = unsafe { header.as_ref() };
        if h.strong() == 0 || !h.value_readable() {
            return None;
        }
        // (A member of a garbage set being freed may be pinned too: only the
        // collector drops its value, and not while a report runs inside it.
        // A value lent out by a `GcMut` is not: no handle to it may be made.)
        h.inc_strong();
        Some(ErasedGc {
            header,
            collections: heap.collections(),
        })
    }
}

impl Drop for ErasedGc {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `new` took one strong count, readable until given up here.
        let h = unsafe { self.header.as_ref() };
        let strong = h.strong() - 1;
        h.set_strong(strong);
        if strong == 0 {
            // User code dropped every other handle meanwhile.
            // SAFETY: the last strong count was just released.
            unsafe { drop_last(self.header) };
        } else if !h.has(ACYCLIC | BUFFERED | VALUE_DROPPED | COLLECTING)
            && heap().collections() != self.collections
        {
            // A collection ran while the pin held the object (see the type's
            // docs): a candidate again, without starting a collection here.
            heap().rebuffer([self.header]);
        }
        // Otherwise the count is back where it was (or a drop by user code
        // already buffered the object): not buffering here keeps a report
        // from touching the candidate buffer or starting a collection.
    }
}

impl<T: ?Sized> Deref for Gc<T> {
    type Target = T;

    /// The value.
    ///
    /// # Panics
    /// If the value has already been dropped (see
    /// [the type-level docs](Gc#dropped-values)).
    #[inline]
    #[track_caller]
    fn deref(&self) -> &T {
        match Gc::try_deref(self) {
            Some(v) => v,
            None => dead_value(),
        }
    }
}

// SAFETY: a `Gc` owns exactly one edge: to its object.
unsafe impl<T: ?Sized> Trace for Gc<T> {
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.edge(self.header_ptr());
    }
    #[inline(always)]
    fn __gc_target(&self) -> Option<NonNull<u8>> {
        Some(self.header_ptr().cast())
    }
    #[inline(always)]
    fn __gc_headers(elements: &[Self]) -> Option<&[NonNull<u8>]> {
        if size_of::<Self>() != size_of::<NonNull<u8>>() {
            return None; // fat pointers (`T` unsized)
        }
        // SAFETY: `Gc` is `repr(transparent)` over `NonNull<GcBox<T>>`,
        // which, `T` being sized (the pointer is thin), has the layout of a
        // `NonNull<u8>`; its address is the object's, whose header is at
        // offset 0 of the `repr(C)` `GcBox` (what `header_ptr` returns).
        Some(unsafe { std::slice::from_raw_parts(elements.as_ptr().cast(), elements.len()) })
    }
    /// 0, as the default measures it through `trace`: a handle owns no
    /// heap memory (its object is measured on its own).
    #[inline(always)]
    fn __inert_heap_size(&self, _depth: u32) -> Option<usize> {
        Some(0)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Gc::try_deref(self) {
            Some(v) => fmt::Debug::fmt(v, f),
            None => f.write_str("Gc(<dropped>)"),
        }
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized> fmt::Pointer for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Gc::as_ptr(self), f)
    }
}

impl<T: ?Sized + PartialEq> PartialEq for Gc<T> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq> Eq for Gc<T> {}

impl<T: ?Sized + PartialOrd> PartialOrd for Gc<T> {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: ?Sized + Ord> Ord for Gc<T> {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: ?Sized + Hash> Hash for Gc<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl<T: Default + Trace + 'static> Default for Gc<T> {
    /// A new object holding `T::default()`.
    ///
    /// ```
    /// let g: rcycle::Gc<Vec<u8>> = Default::default();
    /// assert!(g.is_empty());
    /// ```
    #[track_caller]
    fn default() -> Self {
        Gc::new(T::default())
    }
}

impl<T: Trace + 'static> From<T> for Gc<T> {
    /// Same as [`Gc::new`].
    ///
    /// ```
    /// let g: rcycle::Gc<String> = String::from("x").into();
    /// assert_eq!(*g, "x");
    /// ```
    #[track_caller]
    fn from(value: T) -> Self {
        Gc::new(value)
    }
}

impl<T: ?Sized> AsRef<T> for Gc<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized> Borrow<T> for Gc<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: ?Sized> Unpin for Gc<T> {}
