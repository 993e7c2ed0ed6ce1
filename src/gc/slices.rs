//! `Gc<[T]>` and `Gc<str>` whose length is known only at run time: made
//! from a `Vec`, a slice, an array, a `Box<[T]>`, a string or an iterator,
//! like `Rc<[T]>` and `Rc<str>`.
//!
//! Such an object keeps its length itself (see the type table,
//! `crate::types::Slice`), so every type-erased path (tracing, dropping,
//! freeing, reports) knows how many elements it has. It is always allocated
//! on the large-object path (an allocation of its own, as `Rc<[T]>`'s is):
//! a `Gc<[T; N]>` coerced with [`coerce_gc!`](crate::coerce_gc) stays the
//! compact form where `N` is a constant.
//!
//! Elements are moved in by a plain copy with no user code between
//! allocating the object and finishing it; conversions that need user code
//! (`Clone`, an iterator) run it first, into a `Vec`.

use std::borrow::Cow;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};

use super::Gc;
use crate::header::GcBox;
use crate::runtime::heap;
use crate::trace::Trace;
use crate::types::{Slice, Stored};

/// Makes a slice object of type `S` with `len` elements written by `fill`,
/// and returns its first strong handle's box.
///
/// # Safety
/// `fill` receives room for `len` elements of `E` and initializes all of
/// them, without running user code (no allocation of `Gc` objects, no
/// collection, no report: the object is allocated and not yet finished).
#[inline]
#[track_caller]
unsafe fn new_slice_box<S: Stored<Traced = [E]>, E>(
    len: usize,
    fill: impl FnOnce(*mut E),
) -> NonNull<GcBox<[E]>> {
    let heap = heap();
    let header = heap.alloc_slice::<S>(len);
    #[cfg(feature = "sites")]
    heap.record_site(header, std::panic::Location::caller());
    let boxed = ptr::slice_from_raw_parts_mut(header.as_ptr().cast::<E>(), len) as *mut GcBox<[E]>;
    // SAFETY: `alloc_slice` returned room for a `GcBox<[E]>` of `len`
    // elements with its header written; the elements are ours to initialize
    // and `fill` initializes them all (caller).
    fill(unsafe { (&raw mut (*boxed).value).cast::<E>() });
    // SAFETY: header written.
    unsafe { header.as_ref() }.value_written();
    heap.after_alloc();
    // SAFETY: derived from the non-null header.
    unsafe { NonNull::new_unchecked(boxed) }
}

impl<T: Trace + 'static> Gc<[T]> {
    /// Moves `len` elements from `src` into a new object.
    ///
    /// # Safety
    /// `src` points to `len` initialized elements that the caller gives up
    /// (it must not drop them).
    #[track_caller]
    unsafe fn move_from(src: *const T, len: usize) -> Gc<[T]> {
        // SAFETY: the copy runs no user code; the caller gives up the
        // elements, which the new object now owns.
        unsafe {
            let boxed = new_slice_box::<Slice<T, [T]>, T>(len, |dst| {
                ptr::copy_nonoverlapping(src, dst, len)
            });
            Gc::from_box(boxed)
        }
    }
}

impl<T: Trace + 'static> From<Vec<T>> for Gc<[T]> {
    /// Moves the elements of the vector into a new object (the vector's
    /// buffer is freed), like `From<Vec<T>> for Rc<[T]>`.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let g: Gc<[u32]> = vec![1, 2, 3].into();
    /// assert_eq!(&g[..], [1, 2, 3]);
    /// ```
    #[track_caller]
    fn from(v: Vec<T>) -> Self {
        let mut v = ManuallyDrop::new(v);
        // SAFETY: the vector's elements are given up (its length is set to
        // 0 before it is dropped, so only its buffer is freed).
        let gc = unsafe { Gc::move_from(v.as_ptr(), v.len()) };
        // SAFETY: 0 elements are initialized, trivially.
        unsafe { v.set_len(0) };
        ManuallyDrop::into_inner(v);
        gc
    }
}

impl<T: Trace + 'static> From<Box<[T]>> for Gc<[T]> {
    /// Moves the elements out of the box into a new object.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let b: Box<[u8]> = Box::new([7, 8]);
    /// let g: Gc<[u8]> = b.into();
    /// assert_eq!(&g[..], [7, 8]);
    /// ```
    #[track_caller]
    fn from(b: Box<[T]>) -> Self {
        b.into_vec().into()
    }
}

impl<T: Trace + 'static, const N: usize> From<[T; N]> for Gc<[T]> {
    /// Moves the array's elements into a new slice object, like
    /// `From<[T; N]> for Rc<[T]>`. (For an object whose type keeps the
    /// array's length, `Gc::new([..])` and [`coerce_gc!`](crate::coerce_gc)
    /// make a `Gc<[T; N]>` and coerce it.)
    ///
    /// ```
    /// use rcycle::Gc;
    /// let g: Gc<[&str]> = Gc::from(["a", "b"]);
    /// assert_eq!(g.len(), 2);
    /// ```
    #[track_caller]
    fn from(array: [T; N]) -> Self {
        let array = ManuallyDrop::new(array);
        // SAFETY: the array's elements are given up (it is never dropped).
        unsafe { Gc::move_from(array.as_ptr(), N) }
    }
}

impl<T: Trace + Clone + 'static> From<&[T]> for Gc<[T]> {
    /// Clones the elements into a new object, like `From<&[T]> for Rc<[T]>`.
    /// The clones are made first (into a `Vec`, then moved in), so a
    /// `Clone` impl that panics or touches the heap never sees the object
    /// half made.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let names = [String::from("a"), String::from("b")];
    /// let g: Gc<[String]> = Gc::from(&names[..]);
    /// assert_eq!(g[1], "b");
    /// ```
    #[track_caller]
    fn from(slice: &[T]) -> Self {
        slice.to_vec().into()
    }
}

impl<T: Trace + Clone + 'static> From<&mut [T]> for Gc<[T]> {
    /// Clones the elements into a new object, as `From<&[T]>` does.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let mut v = vec![1, 2];
    /// let g: Gc<[i32]> = Gc::from(&mut v[..]);
    /// assert_eq!(&g[..], [1, 2]);
    /// ```
    #[track_caller]
    fn from(slice: &mut [T]) -> Self {
        Gc::from(&*slice)
    }
}

impl<T: Trace + Clone + 'static> From<Cow<'_, [T]>> for Gc<[T]> {
    /// Moves an owned vector in, or clones a borrowed slice.
    ///
    /// ```
    /// use rcycle::Gc;
    /// use std::borrow::Cow;
    /// let g: Gc<[u8]> = Gc::from(Cow::Borrowed(&[1u8, 2][..]));
    /// assert_eq!(&g[..], [1, 2]);
    /// ```
    #[track_caller]
    fn from(cow: Cow<'_, [T]>) -> Self {
        match cow {
            Cow::Borrowed(slice) => slice.into(),
            Cow::Owned(v) => v.into(),
        }
    }
}

impl<T: Trace + 'static> FromIterator<T> for Gc<[T]> {
    /// Collects the items into a new object, like `Rc<[T]>`'s
    /// `FromIterator`. The iterator runs to the end first (into a `Vec`), so
    /// it may itself make `Gc`s, collect or panic.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let squares: Gc<[u64]> = (1..=4).map(|i| i * i).collect();
    /// assert_eq!(&squares[..], [1, 4, 9, 16]);
    /// ```
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<T>>().into()
    }
}

impl<T: Trace + 'static> Default for Gc<[T]> {
    /// An empty slice object.
    ///
    /// ```
    /// let g: rcycle::Gc<[u8]> = Default::default();
    /// assert!(g.is_empty());
    /// ```
    #[track_caller]
    fn default() -> Self {
        Vec::new().into()
    }
}

impl From<&str> for Gc<str> {
    /// Copies the string into a new object, like `From<&str> for Rc<str>`.
    ///
    /// ```
    /// use rcycle::Gc;
    /// let g: Gc<str> = Gc::from("hello");
    /// assert_eq!(&*g, "hello");
    /// ```
    #[track_caller]
    fn from(s: &str) -> Self {
        let len = s.len();
        // SAFETY: the copy runs no user code and fills all `len` bytes.
        let bytes = unsafe {
            new_slice_box::<Slice<u8, str>, u8>(len, |dst| {
                ptr::copy_nonoverlapping(s.as_ptr(), dst, len)
            })
        };
        // SAFETY: the bytes are a copy of a `str`, so valid UTF-8, and
        // `GcBox<[u8]>` and `GcBox<str>` have the same layout and metadata;
        // the object has one strong count, ours.
        unsafe { Gc::from_box(NonNull::new_unchecked(bytes.as_ptr() as *mut GcBox<str>)) }
    }
}

impl From<&mut str> for Gc<str> {
    /// Copies the string into a new object.
    ///
    /// ```
    /// let mut s = String::from("abc");
    /// let g = rcycle::Gc::<str>::from(s.as_mut_str());
    /// assert_eq!(&*g, "abc");
    /// ```
    #[track_caller]
    fn from(s: &mut str) -> Self {
        Gc::from(&*s)
    }
}

impl From<String> for Gc<str> {
    /// Copies the string into a new object (the `String`'s buffer is freed).
    ///
    /// ```
    /// use rcycle::Gc;
    /// let g: Gc<str> = String::from("owned").into();
    /// assert_eq!(g.len(), 5);
    /// ```
    #[track_caller]
    fn from(s: String) -> Self {
        Gc::from(s.as_str())
    }
}

impl From<Box<str>> for Gc<str> {
    /// Copies the string into a new object (the box is freed).
    ///
    /// ```
    /// let b: Box<str> = "boxed".into();
    /// assert_eq!(&*rcycle::Gc::<str>::from(b), "boxed");
    /// ```
    #[track_caller]
    fn from(s: Box<str>) -> Self {
        Gc::from(&*s)
    }
}

impl From<Cow<'_, str>> for Gc<str> {
    /// Copies the string into a new object.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// let g = rcycle::Gc::<str>::from(Cow::Borrowed("cow"));
    /// assert_eq!(&*g, "cow");
    /// ```
    #[track_caller]
    fn from(s: Cow<'_, str>) -> Self {
        Gc::from(&*s)
    }
}

impl Default for Gc<str> {
    /// An empty string object.
    ///
    /// ```
    /// let g: rcycle::Gc<str> = Default::default();
    /// assert_eq!(&*g, "");
    /// ```
    #[track_caller]
    fn default() -> Self {
        Gc::from("")
    }
}
