//! The rest of `Rc`'s API on [`Gc`]: [`into_inner`](Gc::into_inner),
//! [`unwrap_or_clone`](Gc::unwrap_or_clone), [`make_mut`](Gc::make_mut),
//! [`into_raw`](Gc::into_raw) / [`from_raw`](Gc::from_raw),
//! [`pin`](Gc::pin), and `From<Box<T>>`.
//!
//! A child module of `gc`, so that it builds on the handle's private parts
//! (the box pointer, `alloc_box`, `init_value`, the `GcMut` guard) instead of
//! widening them. Where these differ from `std::rc::Rc`, each function's
//! docs say how and why; the reasons come down to three facts:
//!
//! * a value can be owned by the collector (`COLLECTING`: a member of a
//!   garbage cycle being freed, reached by the `Drop` of another member) or
//!   already dropped (a dead box), which an `Rc` value never is;
//! * the heap can reach every object (`report::objects`), so a handle to a
//!   pinned object can be had without its `Pin`: pinning is a mark on the
//!   object (`PINNED`), not a property of one handle;
//! * exclusive access is lent through a [`GcMut`] guard, never a bare
//!   `&mut T` (see [`Gc::get_mut`]).

use std::mem::{self, ManuallyDrop};
use std::pin::Pin;
use std::ptr::{self, NonNull};

use super::{dead_value, Gc, GcMut};
use crate::header::{GcBox, Header, COLLECTING, MUT_BORROWED, PINNED, VALUE_DROPPED};
use crate::runtime::{exited_op_end, heap};
use crate::trace::Trace;
use crate::weak::WeakGc;

impl<T> Gc<T> {
    /// Returns the value if `this` is the last strong handle, like
    /// [`Rc::into_inner`](std::rc::Rc::into_inner); otherwise drops `this`
    /// and returns `None`. Weak handles stop upgrading once the value is
    /// taken.
    ///
    /// Of several handles to one object all given to `into_inner`, exactly
    /// one returns the value, as with `Rc`:
    ///
    /// ```
    /// use rcycle::Gc;
    /// let x = Gc::new(3);
    /// let y = x.clone();
    /// let w = Gc::downgrade(&x);
    /// assert_eq!(Gc::into_inner(x), None); // `y` still holds it
    /// assert_eq!(Gc::into_inner(y), Some(3));
    /// assert!(w.upgrade().is_none());
    /// ```
    ///
    /// # Differences from `Rc::into_inner`
    ///
    /// It also returns `None` (and drops `this`) where
    /// [`try_unwrap`](Gc::try_unwrap) refuses a last handle:
    /// * the value is being collected: `this` was reached from the `Drop` or
    ///   finalizer of a garbage cycle's member, and the collector drops that
    ///   value itself (it must not be moved out from under it);
    /// * the value is already gone (a dead box: see
    ///   [dropped values](Gc#dropped-values));
    /// * the object was made by [`Gc::pin`]: its value must not move.
    ///
    /// In the last case the value is dropped in place, as `drop(this)` does.
    pub fn into_inner(this: Self) -> Option<T> {
        Gc::try_unwrap(this).ok()
    }

    /// Turns a pointer from [`Gc::into_raw`] back into the handle it was,
    /// like [`Rc::from_raw`](std::rc::Rc::from_raw). The strong count is not
    /// changed: the handle given up by `into_raw` is taken back.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let raw = Gc::into_raw(Gc::new(String::from("kept")));
    /// // SAFETY: from `into_raw`, taken back once.
    /// let g = unsafe { Gc::from_raw(raw) };
    /// assert_eq!((g.as_str(), Gc::strong_count(&g)), ("kept", 1));
    /// ```
    ///
    /// A `Gc<dyn Trait>` (or `Gc<[T]>`) made with [`coerce_gc!`](crate::coerce_gc)
    /// comes back as the type it was made with:
    ///
    /// ```
    /// use rcycle::{coerce_gc, Gc};
    /// use std::fmt::Debug;
    /// let shown: Gc<dyn Debug> = coerce_gc!(Gc::new(7u16) => dyn Debug);
    /// let raw = Gc::into_raw(shown).cast::<u16>();
    /// // SAFETY: the object was made as a `Gc<u16>`; taken back once.
    /// let g: Gc<u16> = unsafe { Gc::from_raw(raw) };
    /// assert_eq!(*g, 7);
    /// ```
    ///
    /// # Safety
    ///
    /// `ptr` must have been returned by [`Gc::into_raw`] on this thread,
    /// from a `Gc<T>`, or from a `Gc<U>` that [`coerce_gc!`](crate::coerce_gc)
    /// made from a `Gc<T>` (then cast back to `*const T`): the object's
    /// value was made as a `T`, this exact type. Each pointer from
    /// `into_raw` may be taken back once only (it owns one strong count).
    ///
    /// This is `Rc::from_raw`'s contract without its latitude for a `U` of
    /// the same size and alignment: the heap keeps each object's type
    /// ([`objects`](crate::report::objects()) hands out handles by it), so a
    /// handle under another type is a transmute that safe code could exploit.
    ///
    /// # Only for sized `T`
    ///
    /// The value sits `offset_of!(GcBox<T>, value)` bytes after the
    /// object's start: 16 for every type aligned to at most 16. For an
    /// unsized `T` that offset depends on the value's alignment, which stable
    /// Rust gives only through `align_of_val(&*ptr)`, a reference to a value
    /// that may already be dropped (a dead box's handle can be turned into a
    /// pointer too). So unsized values come back through their concrete type,
    /// as shown above.
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        let offset = mem::offset_of!(GcBox<T>, value);
        // SAFETY: `ptr` points to the `value` field of a `GcBox<T>` (caller),
        // computed by `as_ptr` from the object pointer without a reference
        // in between, so it carries the whole object's provenance; the field
        // is `offset` bytes into the box.
        let boxed = unsafe { ptr.byte_sub(offset) }
            .cast::<GcBox<T>>()
            .cast_mut();
        // SAFETY: non-null (an object's address); the strong count that
        // `into_raw` kept is transferred to the new handle (caller).
        unsafe { Gc::from_box(NonNull::new_unchecked(boxed)) }
    }
}

impl<T: ?Sized> Gc<T> {
    /// Gives up the handle without releasing its strong count, and returns a
    /// pointer to the value, like [`Rc::into_raw`](std::rc::Rc::into_raw).
    /// The object stays allocated (and its value alive, unless the collector
    /// frees it as part of a garbage cycle) until [`Gc::from_raw`] takes the
    /// handle back and drops it.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let g = Gc::new(5u32);
    /// let keep = g.clone();
    /// let raw = Gc::into_raw(g);
    /// assert_eq!((unsafe { *raw }, Gc::strong_count(&keep)), (5, 2));
    /// assert!(std::ptr::eq(raw, Gc::as_ptr(&keep)));
    /// // SAFETY: from `into_raw`, taken back once.
    /// drop(unsafe { Gc::from_raw(raw) });
    /// assert_eq!(Gc::strong_count(&keep), 1);
    /// ```
    ///
    /// The pointer owns a strong count the collector cannot see from any
    /// traced value: the object counts as held from outside, like one held
    /// by a local `Gc`, and a cycle through it is never freed while the
    /// pointer is not taken back.
    pub fn into_raw(this: Self) -> *const T {
        let this = ManuallyDrop::new(this);
        Gc::as_ptr(&this)
    }
}

impl<T: Clone> Gc<T> {
    /// Returns the value if `this` is the last strong handle, else a clone
    /// of it (dropping `this`), like
    /// [`Rc::unwrap_or_clone`](std::rc::Rc::unwrap_or_clone).
    ///
    /// ```
    /// use rcycle::Gc;
    /// let a = Gc::new(vec![1, 2]);
    /// let b = a.clone();
    /// let mut v = Gc::unwrap_or_clone(a); // `b` still holds it: a clone
    /// v.push(3);
    /// assert_eq!((v, &*b), (vec![1, 2, 3], &vec![1, 2]));
    /// assert_eq!(Gc::unwrap_or_clone(b), [1, 2]); // the last one: moved out
    /// ```
    ///
    /// # Differences from `Rc::unwrap_or_clone`
    ///
    /// It clones where [`try_unwrap`](Gc::try_unwrap) refuses a last handle
    /// (a value being collected, or pinned by [`Gc::pin`]; see
    /// [`into_inner`](Gc::into_inner)).
    ///
    /// # Panics
    ///
    /// If the value has already been dropped (see
    /// [dropped values](Gc#dropped-values)): there is nothing to clone.
    #[track_caller]
    pub fn unwrap_or_clone(this: Self) -> T {
        match Gc::try_unwrap(this) {
            Ok(value) => value,
            Err(gc) => T::clone(&gc),
        }
    }
}

impl<T: Clone + Trace + 'static> Gc<T> {
    /// Exclusive access to the value, cloning it into a new object first if
    /// other handles share it, like [`Rc::make_mut`](std::rc::Rc::make_mut):
    ///
    /// * if `this` is the only handle (no other `Gc`, no [`WeakGc`]), the
    ///   value is lent out in place, as [`Gc::get_mut`] does;
    /// * if other `Gc` handles exist, the value is cloned into a new object
    ///   and `this` is repointed to it; the others keep the old value;
    /// * if only `WeakGc` handles remain, the value is *moved* to a new
    ///   object and `this` repointed to it: the weak handles no longer
    ///   upgrade (they are disassociated, as with `Rc`), and the old
    ///   object's memory goes with the last of them.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let mut a = Gc::new(5);
    /// *Gc::make_mut(&mut a) += 1; // only handle: changed in place
    /// let b = a.clone();
    /// *Gc::make_mut(&mut a) *= 10; // shared: `a` now has its own copy
    /// assert_eq!((*a, *b), (60, 6));
    /// assert!(!Gc::ptr_eq(&a, &b));
    ///
    /// let w = Gc::downgrade(&a);
    /// *Gc::make_mut(&mut a) += 1; // only a weak handle: moved, disassociated
    /// assert_eq!(*a, 61);
    /// assert!(w.upgrade().is_none());
    /// ```
    ///
    /// # Differences from `Rc::make_mut`
    ///
    /// * It returns a [`GcMut`] guard (which dereferences to `&mut T`), not
    ///   `&mut T`, for the reason given at [`Gc::get_mut`]: while the guard
    ///   lives, the collector and the reports must keep off the value, and
    ///   no new handle to it may be made.
    /// * A value being collected (`this` was reached from the `Drop` of a
    ///   garbage cycle's member) and a pinned value ([`Gc::pin`]) are always
    ///   cloned, even when `this` is their only handle: the collector will
    ///   drop the first in place, and the second must not move.
    /// * It panics if the value has already been dropped (a dead box, see
    ///   [dropped values](Gc#dropped-values)), as dereferencing does.
    /// * `T` must be [`Trace`] (and `'static`), since a new object may be
    ///   made; it is recorded as allocated where `make_mut` was called
    ///   (feature `sites`).
    #[track_caller]
    pub fn make_mut(this: &mut Self) -> GcMut<'_, T> {
        let h = this.header();
        if !h.value_alive() {
            dead_value();
        }
        if h.strong() == 1 && h.weak() == 1 && !h.has(COLLECTING | PINNED) {
            // The only handle: lend the value out as `get_mut` does (same
            // test; the value is alive, checked above).
            h.set(MUT_BORROWED);
            return GcMut { gc: this };
        }

        // The new object is allocated before deciding how to fill it:
        // allocating may run user code (registering `T` asks its `Trace`
        // impl for its flags), which may change the counts. From the
        // decision to the guard, only the clone below runs user code.
        let fresh_box = Self::alloc_box(heap());
        /// Frees the new box if the clone panics (as `Uninit` does in
        /// `new_cyclic`): it has no value and only its implicit weak.
        struct Unfilled(NonNull<Header>);
        impl Drop for Unfilled {
            fn drop(&mut self) {
                let heap = heap();
                // SAFETY: we own the implicit weak of an object with no
                // value and no handle.
                unsafe { heap.release_weak(self.0) };
                if heap.is_exited() {
                    // SAFETY: no `&Heap` argument here, and `heap` is not
                    // used again.
                    unsafe { exited_op_end() }
                }
            }
        }
        let unfilled = Unfilled(fresh_box.cast());

        let h = this.header();
        let moved = h.strong() == 1 && h.value_alive() && !h.has(COLLECTING | PINNED);
        let value = if moved {
            // Only weak handles are left (or none any more): take the value
            // as `try_unwrap` does. The old object keeps its strong count of
            // zero from here on (its weak handles stop upgrading); the
            // handle in `this` is replaced below without being dropped.
            h.set(VALUE_DROPPED);
            h.set_strong(0);
            // SAFETY: the value is intact, `this` was its only strong
            // handle, and the flag just set stops every other access; it is
            // moved out once.
            unsafe { ptr::read(&(*this.ptr.as_ptr()).value) }
        } else {
            // Shared, being collected or pinned: copy it. (The deref panics
            // if user code run by the allocation dropped the value: then
            // `unfilled` frees the new box.)
            T::clone(this)
        };
        mem::forget(unfilled);
        // SAFETY: `fresh_box` came from `alloc_box`, has no value and no
        // strong handle.
        let fresh = unsafe { Self::init_value(fresh_box, value) };
        // Lent out before any more user code runs (dropping the old handle,
        // a collection the allocation triggers): no handle to the new object
        // can be made meanwhile (see `GcMut`), so the guard below is the
        // only access, as `get_mut` promises.
        fresh.header().set(MUT_BORROWED);
        let old = mem::replace(this, fresh);
        // The new object: strong 1 (`this`), no weak handle, lent out.
        let guard = GcMut { gc: this };
        if moved {
            // Its strong count was given up above; the implicit weak it held
            // is released as a weak handle's would be (freeing the old
            // object if no weak handle is left).
            let old = ManuallyDrop::new(old);
            drop(WeakGc::from_box(old.ptr));
        } else {
            drop(old);
        }
        heap().after_alloc();
        guard
    }
}

impl<T: Trace + 'static> Gc<T> {
    /// Moves `value` into a new object and pins it there, like
    /// [`Rc::pin`](std::rc::Rc::pin). `Pin<Gc<T>>` dereferences to `&T`,
    /// and so does every handle to the object: nothing will move the value
    /// again, and its memory is not reused before the value is dropped in
    /// place.
    ///
    /// ```
    /// use rcycle::Gc;
    /// use std::marker::PhantomPinned;
    ///
    /// #[derive(rcycle::Trace)]
    /// struct Pinned { n: u32, #[trace(skip)] _pin: PhantomPinned }
    ///
    /// let p = Gc::pin(Pinned { n: 1, _pin: PhantomPinned });
    /// let q = p.clone(); // another pinned handle to the same object
    /// assert_eq!((p.n, std::ptr::eq(&*p, &*q)), (1, true));
    /// ```
    ///
    /// # Differences from `Rc::pin`
    ///
    /// The object itself is marked pinned, for good, not just the handle
    /// in the `Pin`: other handles to it exist or can be made without the
    /// `Pin` ([`report::objects`](crate::report::objects()) lists every
    /// object of a type, and its weak handles upgrade to plain `Gc`s). So
    /// on every handle to a pinned object, [`try_unwrap`](Gc::try_unwrap)
    /// and [`get_mut`](Gc::get_mut) refuse, [`into_inner`](Gc::into_inner)
    /// returns `None`, and [`make_mut`](Gc::make_mut) clones. This holds
    /// for an `Unpin` `T` too (taken out of its `Pin` with
    /// [`Pin::into_inner`]), where `Rc` would allow them.
    ///
    /// # Why pinning a `Gc` is sound
    ///
    /// `Pin<Gc<T>>` promises that the value stays at its address until it is
    /// dropped in place. That holds on every path:
    ///
    /// * **No safe call moves it or lends it out mutably.** The value is
    ///   reached through `&T` only ([`Deref`](std::ops::Deref); `Gc` has no
    ///   `DerefMut`), except by [`try_unwrap`](Gc::try_unwrap) /
    ///   [`into_inner`](Gc::into_inner) / [`unwrap_or_clone`](Gc::unwrap_or_clone)
    ///   (move out), [`get_mut`](Gc::get_mut) (`&mut T`, through which
    ///   `mem::swap` moves) and [`make_mut`](Gc::make_mut) (both). Each
    ///   tests the object's `PINNED` flag, set here before the `Pin` exists
    ///   and never cleared, and refuses (or clones), whichever handle it is
    ///   called on. The flag is on the object, not the handle, because a
    ///   plain `Gc<T>` to a pinned object can be had (see above).
    /// * **Dropped by its last handle:** the value is dropped in place
    ///   (`drop_in_place` through the object's type), and the memory is
    ///   returned only after that, when the last weak count goes.
    /// * **Collected as garbage:** the collector drops each member's value
    ///   in place, then frees the member or keeps it as a dead box; a
    ///   finalizer or `Drop` that resurrects a member reaches it through
    ///   `&T` only. A `Drop` that panics counts as having run, as with
    ///   `std`'s `drop_in_place`.
    /// * **Dead boxes** hold memory whose value was dropped in place
    ///   already; the memory is reused only after their last handle goes.
    /// * **Thread exit:** an object the final collections leave is dropped
    ///   and freed as above if its last handle goes later (from another
    ///   thread-local's destructor), or never (a leak, which `Pin` allows);
    ///   the heap returns its chunks only once no object is left.
    ///
    /// Leaking a pinned object (`mem::forget`, a cycle left uncollected) is
    /// allowed by `Pin`, as for `Rc`.
    ///
    /// A `Pin<Gc<T>>` lends no `&mut T` (`Gc` has no `DerefMut`):
    ///
    /// ```compile_fail
    /// let mut p = rcycle::Gc::pin(5u8);
    /// let m = p.as_mut(); // error: `Gc<u8>` is not `DerefMut`
    /// ```
    ///
    /// and gives its `Gc` back only for an `Unpin` value:
    ///
    /// ```compile_fail
    /// use std::{marker::PhantomPinned, pin::Pin};
    /// #[derive(rcycle::Trace)]
    /// struct P(#[trace(skip)] PhantomPinned);
    /// let p = rcycle::Gc::pin(P(PhantomPinned));
    /// let g = Pin::into_inner(p); // error: `P` is not `Unpin`
    /// ```
    #[track_caller]
    pub fn pin(value: T) -> Pin<Gc<T>> {
        let heap = heap();
        let boxed = Self::alloc_box(heap);
        // SAFETY: a fresh box with no value and no strong handle.
        let gc = unsafe { Self::init_value(boxed, value) };
        // Marked before any user code can run (the collection `after_alloc`
        // may start): from here on no handle moves the value.
        gc.header().set(PINNED);
        heap.after_alloc();
        // SAFETY: the value never moves again and is dropped in place before
        // its memory is reused, through any handle (see the docs above).
        unsafe { Pin::new_unchecked(gc) }
    }
}

impl<T: Trace + 'static> From<Box<T>> for Gc<T> {
    /// Moves the value out of the box into a new object (the box's memory is
    /// freed: a `Gc` object lives on this thread's heap, not in the box's
    /// allocation). Like `From<Box<T>> for Rc<T>`, for sized `T` only.
    ///
    /// ```
    /// let g: rcycle::Gc<String> = Box::new(String::from("boxed")).into();
    /// assert_eq!((g.as_str(), rcycle::Gc::strong_count(&g)), ("boxed", 1));
    /// ```
    #[track_caller]
    fn from(boxed: Box<T>) -> Self {
        Gc::new(*boxed)
    }
}
