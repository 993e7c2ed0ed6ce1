//! `WeakGc<T>`: the weak handle — the "weakref fix" for parent pointers and
//! caches.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use crate::gc::Gc;
use crate::header::{GcBox, Header, COLLECTING};
use crate::runtime::heap;
use crate::trace::{Trace, Tracer};

mod raw;

/// A handle that does not keep its object alive, like [`std::rc::Weak`].
///
/// [`upgrade`](WeakGc::upgrade) returns a [`Gc`] while the object's value is
/// alive, `None` once it is gone. Weak handles into a garbage cycle stop
/// upgrading *before* any finalizer or `Drop` of the cycle runs, so user code
/// can never resurrect a half-collected object through a `WeakGc`.
///
/// Use it for back-pointers (a child's `parent`) so that a tree is not a
/// cycle at all and frees without any collection:
///
/// ```
/// use rcycle::{Gc, Trace, WeakGc};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { parent: RefCell<WeakGc<Node>>, children: RefCell<Vec<Gc<Node>>> }
///
/// let root = Gc::new(Node { parent: RefCell::new(WeakGc::new()), children: RefCell::new(vec![]) });
/// let leaf = Gc::new(Node { parent: RefCell::new(Gc::downgrade(&root)), children: RefCell::new(vec![]) });
/// root.children.borrow_mut().push(leaf.clone());
/// assert!(Gc::ptr_eq(&leaf.parent.borrow().upgrade().unwrap(), &root));
/// drop(root); // no cycle: freed at once
/// assert!(leaf.parent.borrow().upgrade().is_none());
/// ```
pub struct WeakGc<T: ?Sized> {
    /// The object, or the address `usize::MAX` for [`WeakGc::new`].
    ptr: NonNull<GcBox<T>>,
    _marker: PhantomData<GcBox<T>>,
    /// Invariance in `T`, as for [`Gc`] (see [its docs](Gc#variance)).
    _invariant: PhantomData<*mut T>,
}

impl<T> WeakGc<T> {
    /// A weak handle to nothing: `upgrade` always returns `None`. Allocates
    /// nothing.
    ///
    /// ```
    /// let w: rcycle::WeakGc<u8> = rcycle::WeakGc::new();
    /// assert!(w.upgrade().is_none());
    /// ```
    pub const fn new() -> Self {
        WeakGc {
            // SAFETY: `usize::MAX` is not null.
            ptr: unsafe { NonNull::new_unchecked(ptr::without_provenance_mut(usize::MAX)) },
            _marker: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T> Default for WeakGc<T> {
    /// Same as [`WeakGc::new`].
    ///
    /// ```
    /// let w: rcycle::WeakGc<u8> = Default::default();
    /// assert_eq!(w.strong_count(), 0);
    /// ```
    fn default() -> Self {
        WeakGc::new()
    }
}

impl<T: ?Sized> WeakGc<T> {
    /// A weak handle to `ptr`, whose weak count the caller already added.
    pub(crate) fn from_box(ptr: NonNull<GcBox<T>>) -> Self {
        WeakGc {
            ptr,
            _marker: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// The object's header, or `None` for a [`WeakGc::new`] handle.
    #[inline]
    fn header(&self) -> Option<&Header> {
        if self.ptr.as_ptr().cast::<u8>().addr() == usize::MAX {
            None
        } else {
            // SAFETY: a `WeakGc` holds a weak count, which keeps the header
            // readable (see `Header`'s invariants).
            Some(unsafe { &*self.ptr.as_ptr().cast::<Header>() })
        }
    }

    /// Whether the value can still be reached: alive, not being collected,
    /// and not lent out by a [`GcMut`](crate::GcMut) (no handle may be made
    /// then).
    fn live_header(&self) -> Option<&Header> {
        self.header()
            .filter(|h| h.strong() > 0 && h.value_readable() && !h.has(COLLECTING))
    }

    /// A strong handle, if the value is still alive.
    ///
    /// ```
    /// let g = rcycle::Gc::new(5);
    /// let w = rcycle::Gc::downgrade(&g);
    /// assert_eq!(w.upgrade().as_deref(), Some(&5));
    /// drop(g);
    /// assert!(w.upgrade().is_none());
    /// ```
    #[inline]
    pub fn upgrade(&self) -> Option<Gc<T>> {
        let h = self.live_header()?;
        h.inc_strong();
        // SAFETY: the object is live and we just added a strong count.
        Some(unsafe { Gc::from_box(self.ptr) })
    }

    /// The number of `Gc` handles to the object (0 once its value is gone).
    ///
    /// ```
    /// let g = rcycle::Gc::new(5);
    /// let w = rcycle::Gc::downgrade(&g);
    /// assert_eq!(w.strong_count(), 1);
    /// ```
    pub fn strong_count(&self) -> usize {
        self.live_header().map_or(0, |h| h.strong() as usize)
    }

    /// The number of `WeakGc` handles to the object (0 once its value is
    /// gone, like `std::rc::Weak::weak_count`).
    ///
    /// ```
    /// let g = rcycle::Gc::new(5);
    /// let w = rcycle::Gc::downgrade(&g);
    /// let w2 = w.clone();
    /// assert_eq!(w.weak_count(), 2);
    /// ```
    pub fn weak_count(&self) -> usize {
        // Minus the implicit weak, which every live object holds.
        self.live_header().map_or(0, |h| h.weak() as usize - 1)
    }

    /// Whether two weak handles point to the same object (or both are
    /// [`WeakGc::new`]).
    ///
    /// ```
    /// let g = rcycle::Gc::new(5);
    /// let (a, b) = (rcycle::Gc::downgrade(&g), rcycle::Gc::downgrade(&g));
    /// assert!(a.ptr_eq(&b));
    /// ```
    #[inline]
    pub fn ptr_eq(&self, other: &Self) -> bool {
        ptr::addr_eq(self.ptr.as_ptr(), other.ptr.as_ptr())
    }
}

impl<T: ?Sized> Clone for WeakGc<T> {
    /// Another weak handle to the same object.
    ///
    /// ```
    /// let w: rcycle::WeakGc<u8> = rcycle::WeakGc::new();
    /// assert!(w.clone().ptr_eq(&w));
    /// ```
    fn clone(&self) -> Self {
        if let Some(h) = self.header() {
            h.inc_weak();
        }
        WeakGc::from_box(self.ptr)
    }
}

impl<T: ?Sized> Drop for WeakGc<T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(h) = self.header() {
            // The decrement inline, the heap (a thread-local) only if this
            // was the last weak count.
            let weak = h.weak() - 1;
            h.set_weak(weak);
            if weak == 0 {
                // SAFETY: this handle owned that last weak count of a
                // readable object.
                unsafe { free_last_weak(self.ptr.cast()) }
            }
        }
    }
}

/// The last weak count of an object is gone: free it.
///
/// # Safety
/// The object's weak count has just reached zero.
#[cold]
#[inline(never)]
unsafe fn free_last_weak(header: NonNull<Header>) {
    // SAFETY: the object is allocated (not freed yet), so the thread has a
    // heap.
    let heap = unsafe { crate::runtime::heap_of_live_object() };
    if heap.is_exited() {
        // SAFETY: forwarded.
        return unsafe { free_last_weak_exited(header) };
    }
    // SAFETY: not freed yet; the header names its type.
    let info = heap.type_of(unsafe { header.as_ref() }).info;
    // SAFETY: forwarded from the caller; `info` is the object's type.
    unsafe { heap.free_unreferenced(header, info) }
}

/// [`free_last_weak`] on an exited heap, which may go with this object.
///
/// # Safety
/// As for `free_last_weak`.
#[cold]
#[inline(never)]
unsafe fn free_last_weak_exited(header: NonNull<Header>) {
    {
        let heap = heap();
        // SAFETY: not freed yet; the header names its type.
        let info = heap.type_of(unsafe { header.as_ref() }).info;
        // SAFETY: forwarded from the caller; `info` is the object's type.
        unsafe { heap.free_unreferenced(header, info) };
    }
    // SAFETY: no `&Heap` argument here, and `heap` is not used again.
    unsafe { crate::runtime::exited_op_end() }
}

// SAFETY: a weak handle owns no strong edge; reporting none is exact.
unsafe impl<T: ?Sized> Trace for WeakGc<T> {
    #[inline]
    fn trace(&self, _tracer: &mut Tracer<'_>) {}

    fn may_contain_gc() -> bool {
        false
    }

    #[inline(always)]
    fn __owns_no_gc(&self) -> bool {
        true
    }
    #[inline(always)]
    fn __inert_heap_size(&self, _depth: u32) -> Option<usize> {
        Some(0)
    }
}

impl<T: ?Sized> fmt::Debug for WeakGc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(WeakGc)")
    }
}
