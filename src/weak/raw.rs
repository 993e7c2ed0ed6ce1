//! [`WeakGc::into_raw`] and [`WeakGc::from_raw`], like `std::rc::Weak`'s. A
//! child module of `weak`, so that it reads the handle's pointer without
//! widening it.

use std::mem::{self, ManuallyDrop};
use std::ptr::{self, NonNull};

use super::WeakGc;
use crate::header::GcBox;

/// The address of a [`WeakGc::new`] handle's pointer (see `WeakGc::ptr`),
/// which `into_raw` returns as it is: no object's value can sit there.
const DANGLING: usize = usize::MAX;

impl<T> WeakGc<T> {
    /// Gives up the weak handle without releasing its weak count, and returns
    /// a pointer to the value, like [`Weak::into_raw`](std::rc::Weak::into_raw).
    ///
    /// The pointer may be read only while the value is alive (a strong
    /// handle exists); it stays pointing into the object's memory, which the
    /// weak count keeps allocated, until [`WeakGc::from_raw`] takes the handle
    /// back. A [`WeakGc::new`] handle gives a dangling pointer (never null),
    /// which `from_raw` accepts too.
    ///
    /// ```
    /// use rcycle::{Gc, WeakGc};
    /// let g = Gc::new(9u8);
    /// let raw = WeakGc::into_raw(Gc::downgrade(&g));
    /// assert!(std::ptr::eq(raw, Gc::as_ptr(&g)));
    /// assert_eq!((unsafe { *raw }, Gc::weak_count(&g)), (9, 1));
    /// // SAFETY: from `into_raw`, taken back once.
    /// let w = unsafe { WeakGc::from_raw(raw) };
    /// assert_eq!(w.upgrade().as_deref(), Some(&9));
    /// ```
    pub fn into_raw(self) -> *const T {
        let this = ManuallyDrop::new(self);
        let boxed = this.ptr.as_ptr();
        if boxed.addr() == DANGLING {
            // Not an object: the sentinel itself (not null, and no value of
            // a real object is at the last address).
            boxed.cast::<T>()
        } else {
            // SAFETY: the weak count kept keeps the object allocated, so the
            // projection stays inside it; nothing is read (the value may be
            // dropped already), and no reference is made, so the pointer
            // keeps the object's provenance for `from_raw`.
            unsafe { &raw const (*boxed).value }
        }
    }

    /// Turns a pointer from [`WeakGc::into_raw`] back into the weak handle it
    /// was, like [`Weak::from_raw`](std::rc::Weak::from_raw). The weak count
    /// is not changed: the handle given up by `into_raw` is taken back.
    ///
    /// ```
    /// use rcycle::{Gc, WeakGc};
    /// let raw = WeakGc::into_raw(WeakGc::<u8>::new());
    /// // SAFETY: from `into_raw`, taken back once.
    /// assert!(unsafe { WeakGc::from_raw(raw) }.upgrade().is_none());
    ///
    /// let g = Gc::new(1u8);
    /// let raw = WeakGc::into_raw(Gc::downgrade(&g));
    /// drop(g); // the value goes; the weak count keeps the memory
    /// // SAFETY: as above.
    /// let w = unsafe { WeakGc::from_raw(raw) };
    /// assert!(w.upgrade().is_none());
    /// ```
    ///
    /// # Safety
    ///
    /// `ptr` must have been returned by [`WeakGc::into_raw`] on this thread,
    /// from a `WeakGc<T>` to an object made as a `T` (this exact type; see
    /// [`Gc::from_raw`](crate::Gc::from_raw) for why not another type of the
    /// same size and alignment, as `std` allows), and be taken back once
    /// only: it owns one weak count. Like `into_raw`, this is for sized `T`
    /// only (see `Gc::from_raw`).
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        let boxed = if ptr.addr() == DANGLING {
            // A `WeakGc::new` handle: the sentinel, as `new` makes it.
            ptr::without_provenance_mut(DANGLING)
        } else {
            let offset = mem::offset_of!(GcBox<T>, value);
            // SAFETY: `ptr` points to the `value` field of a `GcBox<T>`
            // (caller), with the object's provenance (see `into_raw`); the
            // field is `offset` bytes into the box.
            unsafe { ptr.byte_sub(offset) }
                .cast::<GcBox<T>>()
                .cast_mut()
        };
        // SAFETY: the sentinel, or an object's address: not null.
        WeakGc::from_box(unsafe { NonNull::new_unchecked(boxed) })
    }
}
