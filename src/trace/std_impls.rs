//! `Trace` for the standard types people put in data models.
//!
//! Each impl also says whether the type can hold a `Gc` at all
//! (`may_contain_gc`) and, for types that own a heap buffer, how big it is
//! (`heap_size`, used only by reports).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::fmt::Debug;
use std::rc::Rc;

use crate::trace::{Trace, Tracer};

/// Types that can never own a `Gc`: nothing to trace, never a cycle member.
macro_rules! leaf {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: owns no `Gc`; reporting nothing is exact.
        unsafe impl Trace for $t {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer<'_>) {}
            #[inline(always)]
            fn may_contain_gc() -> bool { false }
            #[inline(always)]
            fn heap_size(&self) -> usize { 0 }
            #[inline(always)]
            fn __inert_heap_size(&self, _: u32) -> Option<usize> { Some(0) }
            #[inline(always)]
            fn __owns_no_gc(&self) -> bool { true }
        }
    )*};
}

leaf!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::num::NonZeroU8,
    std::num::NonZeroU16,
    std::num::NonZeroU32,
    std::num::NonZeroU64,
    std::num::NonZeroUsize,
    std::num::NonZeroI32,
    std::num::NonZeroI64,
    std::net::IpAddr,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    std::net::SocketAddr,
    std::any::TypeId,
);

/// Owned strings: no `Gc` inside, a heap buffer of `capacity` bytes.
macro_rules! string {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: owns no `Gc`; reporting nothing is exact.
        unsafe impl Trace for $t {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer<'_>) {}
            #[inline(always)]
            fn may_contain_gc() -> bool { false }
            fn heap_size(&self) -> usize { self.capacity() }
            #[inline(always)]
            fn __inert_heap_size(&self, _: u32) -> Option<usize> { Some(self.capacity()) }
            #[inline(always)]
            fn __owns_no_gc(&self) -> bool { true }
        }
    )*};
}

string!(String, std::path::PathBuf, std::ffi::OsString);

// SAFETY: owns no `Gc`; reporting nothing is exact.
unsafe impl Trace for std::ffi::CString {
    #[inline(always)]
    fn trace(&self, _: &mut Tracer<'_>) {}
    fn may_contain_gc() -> bool {
        false
    }
    fn heap_size(&self) -> usize {
        self.as_bytes_with_nul().len()
    }
    fn __inert_heap_size(&self, _: u32) -> Option<usize> {
        Some(self.heap_size())
    }
}

/// Unsized leaf types (no `may_contain_gc`: it needs `Sized`).
macro_rules! unsized_leaf {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: owns no `Gc`; reporting nothing is exact.
        unsafe impl Trace for $t {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer<'_>) {}
            fn heap_size(&self) -> usize { 0 }
            #[inline(always)]
            fn __owns_no_gc(&self) -> bool { true }
            #[inline(always)]
            fn __inert_heap_size(&self, _: u32) -> Option<usize> { Some(0) }
        }
    )*};
}

unsized_leaf!(str, std::path::Path, std::ffi::OsStr, std::ffi::CStr);

/// Types that own nothing.
macro_rules! owns_nothing {
    ($($t:ty),*) => {$(
        // SAFETY: owns nothing (a `'static` reference cannot own a `Gc`
        // object's handle: the handle lives, and is reported, elsewhere).
        unsafe impl<T: ?Sized> Trace for $t {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer<'_>) {}
            fn may_contain_gc() -> bool { false }
            fn heap_size(&self) -> usize { 0 }
            #[inline(always)]
            fn __owns_no_gc(&self) -> bool { true }
            #[inline(always)]
            fn __inert_heap_size(&self, _: u32) -> Option<usize> { Some(0) }
        }
    )*};
}

owns_nothing!(&'static T, std::marker::PhantomData<T>);

// SAFETY: a `Box` owns its content exactly once.
unsafe impl<T: Trace + ?Sized> Trace for Box<T> {
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        (**self).trace(tracer)
    }
    // In line, like `Option`'s: a `Box` list's sizes are added up through
    // one frame per level (the content's `heap_size`).
    #[inline]
    fn heap_size(&self) -> usize {
        std::mem::size_of_val(&**self) + (**self).heap_size()
    }
    #[inline]
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let inner = (**self).__inert_heap_size(depth.checked_sub(1)?)?;
        Some(std::mem::size_of_val(&**self) + inner)
    }
}

// SAFETY: the content is reported through the `Rc` only when this is the
// sole strong handle: then the `Rc` owns its content exactly once. A shared
// `Rc` reports nothing (under-reporting only leaks).
unsafe impl<T: Trace + ?Sized> Trace for Rc<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if Rc::strong_count(self) == 1 {
            (**self).trace(tracer)
        }
    }
    /// Counted for the sole owner only (like tracing), with the two counts.
    fn heap_size(&self) -> usize {
        if Rc::strong_count(self) == 1 {
            2 * size_of::<usize>() + std::mem::size_of_val(&**self) + (**self).heap_size()
        } else {
            0
        }
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        if Rc::strong_count(self) == 1 {
            let inner = (**self).__inert_heap_size(depth.checked_sub(1)?)?;
            Some(2 * size_of::<usize>() + std::mem::size_of_val(&**self) + inner)
        } else {
            Some(0)
        }
    }
}

/// [`elements_heap_size`] without user code, or `None`.
#[inline]
fn elements_inert_heap_size<'e, T: Trace + 'e>(
    elements: impl Iterator<Item = &'e T>,
    depth: u32,
) -> Option<usize> {
    let depth = depth.checked_sub(1)?;
    let mut total = 0usize;
    for e in elements {
        total += e.__inert_heap_size(depth)?;
    }
    Some(total)
}

/// Sum of the heap memory the elements own.
fn elements_heap_size<'e, T: Trace + 'e>(elements: impl Iterator<Item = &'e T>) -> usize {
    elements.map(|e| e.heap_size()).sum()
}

/// Sequences: each element labelled with its position.
macro_rules! sequence {
    ($($t:ident($elements:ident, $view:ident): |$s:ident| $buffer:expr),* $(,)?) => {$(
        // SAFETY: the collection owns each element once; each is traced once.
        unsafe impl<T: Trace> Trace for $t<T> {
            #[inline]
            fn trace(&self, tracer: &mut Tracer<'_>) {
                if T::may_contain_gc() {
                    tracer.$elements(self.$view());
                }
            }
            fn may_contain_gc() -> bool { T::may_contain_gc() }
            fn heap_size(&self) -> usize {
                let $s = self;
                $buffer + elements_heap_size(self.iter())
            }
            #[inline]
            fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
                let $s = self;
                Some($buffer + elements_inert_heap_size(self.iter(), depth)?)
            }
        }
    )*};
}

sequence!(
    // (A `Vec`'s elements as a slice: see `Tracer::slice_elements`.)
    Vec(slice_elements, as_slice): |v| v.capacity() * size_of::<T>(),
    VecDeque(elements, iter): |v| v.capacity() * size_of::<T>(),
    // One node per element: the element and two links.
    LinkedList(elements, iter): |l| l.len() * (size_of::<T>() + 2 * size_of::<usize>()),
    BinaryHeap(elements, iter): |h| h.capacity() * size_of::<T>(),
);

// SAFETY: a slice owns each element once; each is traced once.
unsafe impl<T: Trace> Trace for [T] {
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if T::may_contain_gc() {
            tracer.slice_elements(self);
        }
    }
    fn heap_size(&self) -> usize {
        elements_heap_size(self.iter())
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        elements_inert_heap_size(self.iter(), depth)
    }
}

// SAFETY: an array owns each element once; each is traced once.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self[..].trace(tracer)
    }
    fn may_contain_gc() -> bool {
        T::may_contain_gc()
    }
    fn heap_size(&self) -> usize {
        elements_heap_size(self.iter())
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        elements_inert_heap_size(self.iter(), depth)
    }
}

// SAFETY: a set owns each element once; each is traced once, labelled by
// itself.
unsafe impl<T: Trace + Debug, S> Trace for HashSet<T, S> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if T::may_contain_gc() {
            for e in self {
                tracer.key(e, e);
            }
        }
    }
    fn may_contain_gc() -> bool {
        T::may_contain_gc()
    }
    /// The table (a slot and a control byte per bucket) and the elements.
    fn heap_size(&self) -> usize {
        self.capacity() * (size_of::<T>() + 1) + elements_heap_size(self.iter())
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let elements = elements_inert_heap_size(self.iter(), depth)?;
        Some(self.capacity() * (size_of::<T>() + 1) + elements)
    }
}

// SAFETY: as for `HashSet`.
unsafe impl<T: Trace + Debug> Trace for BTreeSet<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if T::may_contain_gc() {
            for e in self {
                tracer.key(e, e);
            }
        }
    }
    fn may_contain_gc() -> bool {
        T::may_contain_gc()
    }
    /// An estimate: the elements in nodes about two-thirds full.
    fn heap_size(&self) -> usize {
        self.len() * size_of::<T>() * 3 / 2 + elements_heap_size(self.iter())
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let elements = elements_inert_heap_size(self.iter(), depth)?;
        Some(self.len() * size_of::<T>() * 3 / 2 + elements)
    }
}

/// Traces a map's entries: keys (rarely `Gc`s) under their own label, values
/// under their key's label.
fn trace_map<'m, K: Trace + Debug + 'm, V: Trace + 'm>(
    entries: impl Iterator<Item = (&'m K, &'m V)>,
    tracer: &mut Tracer<'_>,
) {
    let (keys, values) = (K::may_contain_gc(), V::may_contain_gc());
    if !keys && !values {
        return;
    }
    for (k, v) in entries {
        if keys {
            tracer.key(k, k);
        }
        if values {
            tracer.key(k, v);
        }
    }
}

/// Sum of the heap memory a map's keys and values own.
fn entries_heap_size<'m, K: Trace + 'm, V: Trace + 'm>(
    entries: impl Iterator<Item = (&'m K, &'m V)>,
) -> usize {
    entries.map(|(k, v)| k.heap_size() + v.heap_size()).sum()
}

/// [`entries_heap_size`] without user code, or `None`.
fn entries_inert_heap_size<'m, K: Trace + 'm, V: Trace + 'm>(
    entries: impl Iterator<Item = (&'m K, &'m V)>,
    depth: u32,
) -> Option<usize> {
    let depth = depth.checked_sub(1)?;
    let mut total = 0usize;
    for (k, v) in entries {
        total += k.__inert_heap_size(depth)? + v.__inert_heap_size(depth)?;
    }
    Some(total)
}

// SAFETY: a map owns each key and value once; each is traced once.
unsafe impl<K: Trace + Debug, V: Trace, S> Trace for HashMap<K, V, S> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        trace_map(self.iter(), tracer)
    }
    fn may_contain_gc() -> bool {
        K::may_contain_gc() || V::may_contain_gc()
    }
    /// The table (a slot and a control byte per bucket) and the entries.
    fn heap_size(&self) -> usize {
        self.capacity() * (size_of::<(K, V)>() + 1) + entries_heap_size(self.iter())
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let entries = entries_inert_heap_size(self.iter(), depth)?;
        Some(self.capacity() * (size_of::<(K, V)>() + 1) + entries)
    }
}

// SAFETY: as for `HashMap`.
unsafe impl<K: Trace + Debug, V: Trace> Trace for BTreeMap<K, V> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        trace_map(self.iter(), tracer)
    }
    fn may_contain_gc() -> bool {
        K::may_contain_gc() || V::may_contain_gc()
    }
    /// An estimate: the entries in nodes about two-thirds full.
    fn heap_size(&self) -> usize {
        self.len() * size_of::<(K, V)>() * 3 / 2 + entries_heap_size(self.iter())
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let entries = entries_inert_heap_size(self.iter(), depth)?;
        Some(self.len() * size_of::<(K, V)>() * 3 / 2 + entries)
    }
}

// SAFETY: an `Option` owns its content, if any, once.
unsafe impl<T: Trace> Trace for Option<T> {
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Some(v) = self {
            v.trace(tracer)
        }
    }
    #[inline]
    fn may_contain_gc() -> bool {
        T::may_contain_gc()
    }
    #[inline]
    fn heap_size(&self) -> usize {
        self.as_ref().map_or(0, |v| v.heap_size())
    }
    #[inline]
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        match self {
            Some(v) => v.__inert_heap_size(depth.checked_sub(1)?),
            None => Some(0),
        }
    }
}

// SAFETY: a `Result` owns one of its two contents, once.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        match self {
            Ok(v) => tracer.field("Ok", v),
            Err(e) => tracer.field("Err", e),
        }
    }
    fn may_contain_gc() -> bool {
        T::may_contain_gc() || E::may_contain_gc()
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let depth = depth.checked_sub(1)?;
        match self {
            Ok(v) => v.__inert_heap_size(depth),
            Err(e) => e.__inert_heap_size(depth),
        }
    }
}

// SAFETY: a `Cell<T: Copy>` owns its content once; tracing a copy is exact
// because a `Copy` type cannot own a `Gc` (a `Gc` is not `Copy`; a
// `&'static Gc` reports nothing).
unsafe impl<T: Trace + Copy> Trace for Cell<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.get().trace(tracer)
    }
    fn may_contain_gc() -> bool {
        T::may_contain_gc()
    }
    fn heap_size(&self) -> usize {
        self.get().heap_size()
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        self.get().__inert_heap_size(depth.checked_sub(1)?)
    }
}

// SAFETY: a `RefCell` owns its content once. When it is mutably borrowed the
// content cannot be read: nothing is reported and the object is marked
// untraceable, so the collector treats it as held from outside.
unsafe impl<T: Trace + ?Sized> Trace for RefCell<T> {
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if tracer.plain {
            // The collector's path reads the content without a borrow guard:
            // two stores to the object per cell (taking and releasing the
            // guard) were a tenth of the work of marking a node with two
            // `RefCell` fields.
            // SAFETY: no mutable borrow of this cell can start while `v`
            // lives: a plain tracer runs only `Trace::trace` impls (no label
            // is formatted, no size measured) and the collector's edge
            // sinks, which read headers only; and `Trace::trace` must not
            // mutate anything (the trait's contract).
            return match unsafe { self.try_borrow_unguarded() } {
                Ok(v) => v.trace(tracer),
                Err(_) => tracer.untraceable(),
            };
        }
        match self.try_borrow() {
            Ok(v) => v.trace(tracer),
            Err(_) => tracer.untraceable(),
        }
    }
    /// 0 while mutably borrowed (the content cannot be read).
    fn heap_size(&self) -> usize {
        self.try_borrow().map_or(0, |v| v.heap_size())
    }
    #[inline]
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let depth = depth.checked_sub(1)?;
        match self.try_borrow() {
            Ok(v) => v.__inert_heap_size(depth),
            Err(_) => Some(0),
        }
    }
}

// SAFETY: a `OnceCell` owns its content, if any, once.
unsafe impl<T: Trace> Trace for OnceCell<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Some(v) = self.get() {
            v.trace(tracer)
        }
    }
    fn may_contain_gc() -> bool {
        T::may_contain_gc()
    }
    fn heap_size(&self) -> usize {
        self.get().map_or(0, |v| v.heap_size())
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        match self.get() {
            Some(v) => v.__inert_heap_size(depth.checked_sub(1)?),
            None => Some(0),
        }
    }
}

// SAFETY: a `SmallVec` owns each element once; each is traced once.
unsafe impl<A: smallvec::Array> Trace for smallvec::SmallVec<A>
where
    A::Item: Trace,
{
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if <A::Item as Trace>::may_contain_gc() {
            tracer.elements(self.iter());
        }
    }
    fn may_contain_gc() -> bool {
        <A::Item as Trace>::may_contain_gc()
    }
    /// The spilled buffer, if any (the inline one is part of the value).
    fn heap_size(&self) -> usize {
        let buffer = if self.spilled() {
            self.capacity() * size_of::<A::Item>()
        } else {
            0
        };
        buffer + elements_heap_size(self.iter())
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let buffer = if self.spilled() {
            self.capacity() * size_of::<A::Item>()
        } else {
            0
        };
        Some(buffer + elements_inert_heap_size(self.iter(), depth)?)
    }
}

/// Tuples: each element labelled with its position, like tuple fields.
macro_rules! tuple {
    ($(($($name:ident $idx:tt),+))*) => {$(
        // SAFETY: a tuple owns each element once; each is traced once.
        unsafe impl<$($name: Trace),+> Trace for ($($name,)+) {
            fn trace(&self, tracer: &mut Tracer<'_>) {
                $(tracer.field(stringify!($idx), &self.$idx);)+
            }
            fn may_contain_gc() -> bool {
                false $(|| $name::may_contain_gc())+
            }
            fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
                let depth = depth.checked_sub(1)?;
                Some(0 $(+ self.$idx.__inert_heap_size(depth)?)+)
            }
        }
    )*};
}

tuple! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
    use std::ptr::NonNull;

    use super::*;
    use crate::header::Header;
    use crate::trace::EdgeSink;
    use crate::{Gc, WeakGc};

    /// Records every edge with its label path.
    #[derive(Default)]
    struct Recorder(Vec<(NonNull<Header>, String)>);

    impl EdgeSink for Recorder {
        fn edge(&mut self, target: NonNull<Header>, path: &str) {
            self.0.push((target, path.to_string()));
        }
    }

    fn labels<T: Trace + ?Sized>(value: &T) -> Vec<String> {
        let mut rec = Recorder::default();
        let mut path = crate::trace::LabelPath::new(false);
        value.trace(&mut Tracer::new(&mut rec, Some(&mut path)));
        assert!(path.as_str().is_empty(), "labels are popped again");
        rec.0.into_iter().map(|(_, label)| label).collect()
    }

    #[test]
    fn every_container_labels_its_edges() {
        let g = Gc::new(1u8);
        let v = vec![g.clone(), g.clone()];
        assert_eq!(labels(&v), ["[0]", "[1]"]);
        let d: VecDeque<_> = v.iter().cloned().collect();
        assert_eq!(labels(&d), ["[0]", "[1]"]);
        let m: BTreeMap<&str, Gc<u8>> = [("a", g.clone()), ("b", g.clone())].into();
        assert_eq!(labels(&m), ["[\"a\"]", "[\"b\"]"]);
        let h: HashMap<u32, Gc<u8>> = [(7, g.clone())].into();
        assert_eq!(labels(&h), ["[7]"]);
        let s: BTreeSet<Gc<u8>> = [g.clone()].into();
        assert_eq!(labels(&s), ["[1]"], "a set element is labelled by itself");
        let t = (5u32, g.clone(), Some(g.clone()));
        assert_eq!(labels(&t), [".1", ".2"]);
        let r: Result<Gc<u8>, String> = Ok(g.clone());
        assert_eq!(labels(&r), [".Ok"]);
        let nested = RefCell::new(vec![Box::new([g.clone()])]);
        assert_eq!(labels(&nested), ["[0][0]"]);
        let sv: smallvec::SmallVec<[Gc<u8>; 2]> = smallvec::smallvec![g.clone()];
        assert_eq!(labels(&sv), ["[0]"]);
        let w = Gc::downgrade(&g);
        assert!(labels(&w).is_empty(), "a weak handle is no edge");
        assert!(labels(&Cell::new(3u8)).is_empty());
        let slice: &[Gc<u8>] = &v;
        assert_eq!(labels(slice), ["[0]", "[1]"]);
        let weak_vec: Vec<WeakGc<u8>> = vec![w.clone()];
        assert!(labels(&weak_vec).is_empty());
    }

    #[test]
    fn collector_mode_records_no_labels() {
        let g = Gc::new(1u8);
        let m: HashMap<String, Gc<u8>> = [("k".to_string(), g.clone())].into();
        let mut rec = Recorder::default();
        m.trace(&mut Tracer::new(&mut rec, None));
        assert_eq!(rec.0.len(), 1);
        assert_eq!(rec.0[0].1, "");
    }

    #[test]
    fn borrowed_refcell_is_untraceable() {
        let cell = RefCell::new(Some(Gc::new(1u8)));
        let guard = cell.borrow_mut();
        let mut rec = Recorder::default();
        let mut tracer = Tracer::new(&mut rec, None);
        cell.trace(&mut tracer);
        assert!(!tracer.is_complete());
        drop(guard);
        let mut tracer = Tracer::new(&mut rec, None);
        cell.trace(&mut tracer);
        assert!(tracer.is_complete());
        assert_eq!(rec.0.len(), 1);
    }

    #[test]
    fn leaf_types_cannot_hold_a_gc() {
        assert!(!<u64 as Trace>::may_contain_gc());
        assert!(!<String as Trace>::may_contain_gc());
        assert!(!<Vec<(u8, String)> as Trace>::may_contain_gc());
        assert!(!<HashMap<String, Vec<u8>> as Trace>::may_contain_gc());
        assert!(<Vec<Gc<u8>> as Trace>::may_contain_gc());
        assert!(<Result<u8, Gc<u8>> as Trace>::may_contain_gc());
        assert!(!<WeakGc<u8> as Trace>::may_contain_gc());
    }

    #[test]
    fn heap_sizes_count_buffers_not_other_objects() {
        let s = String::with_capacity(100);
        assert_eq!(s.heap_size(), 100);
        let v: Vec<String> = vec![String::with_capacity(10), String::with_capacity(20)];
        assert_eq!(v.heap_size(), v.capacity() * size_of::<String>() + 30);
        let o = Some(String::with_capacity(7));
        assert_eq!(o.heap_size(), 7);
        let cell = RefCell::new(vec![0u64; 4]);
        assert_eq!(cell.heap_size(), 32);
        let guard = cell.borrow_mut();
        assert_eq!(cell.heap_size(), 0, "unreadable while borrowed");
        drop(guard);
        let b: Box<[u8; 64]> = Box::new([0; 64]);
        assert_eq!(b.heap_size(), 64);
        let g = Gc::new(vec![0u8; 1000]);
        assert_eq!(g.heap_size(), 0, "another object is not owned memory");
        let t = (
            String::with_capacity(3),
            5u8,
            Some(String::with_capacity(4)),
        );
        assert_eq!(t.heap_size(), 7);
    }

    /// `value.__inert_heap_size(INERT_DEPTH)`, checked against `heap_size`
    /// where it answers.
    fn inert<T: Trace>(value: &T) -> Option<usize> {
        let answer = value.__inert_heap_size(crate::trace::INERT_DEPTH);
        if let Some(n) = answer {
            assert_eq!(n, value.heap_size(), "{}", std::any::type_name::<T>());
        }
        answer
    }

    #[test]
    fn inert_heap_sizes_equal_heap_size_without_user_code() {
        let g = Gc::new(5u8);
        assert_eq!(inert(&String::with_capacity(100)), Some(100));
        assert_eq!(
            inert(&vec![String::with_capacity(10), String::new()]),
            Some(58)
        );
        assert_eq!(inert(&Some(String::with_capacity(7))), Some(7));
        assert_eq!(inert(&None::<String>), Some(0));
        assert_eq!(inert(&Ok::<_, u8>(String::with_capacity(2))), Some(2));
        let cell = RefCell::new(vec![g.clone(); 4]);
        assert_eq!(inert(&cell), Some(32));
        let guard = cell.borrow_mut();
        assert_eq!(inert(&cell), Some(0), "unreadable while borrowed");
        drop(guard);
        assert_eq!(inert(&Box::new([0u8; 64])), Some(64));
        assert_eq!(inert(&Rc::new(3u32)), Some(20));
        assert_eq!(inert(&(String::with_capacity(3), 5u8, g.clone())), Some(3));
        let mut map = HashMap::new();
        map.insert(1u32, String::with_capacity(9));
        assert_eq!(
            inert(&map),
            Some(map.capacity() * (size_of::<(u32, String)>() + 1) + 9)
        );
        let set: BTreeSet<u16> = (0..10).collect();
        assert_eq!(inert(&set), Some(30));
        assert!(inert(&VecDeque::from(vec![g.clone()])).is_some());
        assert_eq!(inert(&Cell::new(7u64)), Some(0));
        assert_eq!(inert(&[WeakGc::new(), Gc::downgrade(&g)]), Some(0));
    }

    #[test]
    fn inert_heap_size_is_none_for_user_code_and_deep_nesting() {
        /// `heap_size` written by hand: user code.
        struct Mine;
        // SAFETY: owns no `Gc`.
        unsafe impl Trace for Mine {
            fn trace(&self, _: &mut Tracer<'_>) {}
            fn heap_size(&self) -> usize {
                1
            }
        }
        assert_eq!(inert(&Mine), None);
        assert_eq!(inert(&vec![Mine]), None);
        assert_eq!(inert(&Vec::<Mine>::new()), Some(0), "no element measured");
        assert_eq!(inert(&(1u8, Some(Mine))), None);
        // A `Box` list: measured without user code down to the depth, not
        // past it (no unbounded recursion).
        #[derive(crate::Trace)]
        struct List {
            next: Option<Box<List>>,
            name: String,
        }
        let list = |n: usize| {
            let mut l = None;
            for _ in 0..n {
                l = Some(Box::new(List {
                    next: l,
                    name: String::with_capacity(1),
                }));
            }
            List {
                next: l,
                name: String::new(),
            }
        };
        let short = list(5);
        assert_eq!(inert(&short), Some(5 * (size_of::<List>() + 1)));
        let long = list(100);
        assert_eq!(inert(&long), None);
        assert_eq!(long.heap_size(), 100 * (size_of::<List>() + 1));
        // Derived enums, and a type with no traced field.
        #[derive(crate::Trace)]
        enum Shape {
            Named(String),
            Pair(u8, #[trace(skip)] Mine),
            Empty,
        }
        assert_eq!(inert(&Shape::Named(String::with_capacity(4))), Some(4));
        assert_eq!(
            inert(&Shape::Pair(1, Mine)),
            Some(0),
            "a skipped field is not measured"
        );
        assert_eq!(inert(&Shape::Empty), Some(0));
        #[derive(crate::Trace)]
        struct Quiet(#[trace(skip)] Mine);
        assert_eq!(inert(&Quiet(Mine)), Some(0));
        assert!(Quiet(Mine).__owns_no_gc());
        assert!(!short.__owns_no_gc());
    }
}
