//! Queries about single objects and types: objgraph's `count`, `by_type`
//! and `find_backref_chain`, and the objects held from outside the heap.

use std::fmt;

use super::graph::{HeapGraph, ObjectId, ObjectInfo};
use super::related;
use crate::gc::Gc;
use crate::header::GcBox;
use crate::runtime::query;
use crate::trace::Trace;
use crate::weak::WeakGc;

/// The number of live `T` objects on this thread's heap (objgraph's `count`).
///
/// ```
/// let a = rcycle::Gc::new(1i16);
/// let b = rcycle::Gc::new(2i16);
/// assert_eq!(rcycle::report::count::<i16>(), 2);
/// ```
pub fn count<T: Trace + 'static>() -> usize {
    let rt = query();
    let heap = &rt.heap;
    let Some(index) = heap.type_index_of::<T>() else {
        return 0;
    };
    let mut n = 0;
    let each = |header: std::ptr::NonNull<crate::header::Header>| {
        // SAFETY: enumerated objects are allocated and readable.
        let h = unsafe { header.as_ref() };
        n += usize::from(h.type_index() == index && h.strong() > 0 && h.value_alive());
    };
    // SAFETY: `each` runs no user code (so no list is needed).
    unsafe { heap.for_each_object(each) };
    n
}

/// Weak handles to every live `T` object (objgraph's `by_type`): a query never
/// keeps its results alive.
///
/// An object whose value is lent out by a [`GcMut`](crate::GcMut) right now
/// is left out (it still counts in [`count`]): no second handle to it may
/// exist while the guard lives.
///
/// ```
/// let a = rcycle::Gc::new(7i8);
/// let found = rcycle::report::objects::<i8>();
/// assert_eq!(found.len(), 1);
/// assert_eq!(*found[0].upgrade().unwrap(), 7);
/// drop(a);
/// assert!(found[0].upgrade().is_none());
/// ```
pub fn objects<T: Trace + 'static>() -> Vec<WeakGc<T>> {
    objects_of::<T>()
        .into_iter()
        // SAFETY: listed objects are live (no user code ran since).
        .filter(|header| unsafe { header.as_ref() }.value_readable())
        .map(|header| {
            // SAFETY: a live object of type `T` (same type index): a weak
            // count is added for the handle being made.
            unsafe { header.as_ref() }.inc_weak();
            WeakGc::from_box(header.cast::<GcBox<T>>())
        })
        .collect()
}

/// The live objects whose type is `T`.
fn objects_of<T: Trace + 'static>() -> Vec<std::ptr::NonNull<crate::header::Header>> {
    let rt = query();
    let heap = &rt.heap;
    let Some(index) = heap.type_index_of::<T>() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let each = |header: std::ptr::NonNull<crate::header::Header>| {
        // SAFETY: enumerated objects are allocated and readable.
        let h = unsafe { header.as_ref() };
        if h.type_index() == index && h.strong() > 0 && h.value_alive() {
            found.push(header);
        }
    };
    // SAFETY: `each` runs no user code (so no list of every object is
    // needed).
    unsafe { heap.for_each_object(each) };
    found
}

/// An object found by a graph query, with the label of the edge involved.
///
/// ```
/// let inner = rcycle::Gc::new(1u8);
/// let outer = rcycle::Gc::new(vec![inner.clone()]);
/// let found = rcycle::report::referrers(&inner);
/// assert_eq!((found[0].label.as_str(), found[0].object.id), ("[0]", rcycle::report::ObjectId::of(&outer)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Related {
    /// The other object.
    pub object: ObjectInfo,
    /// The label path of the edge, like `.children[2]`.
    pub label: String,
}

/// An object held from outside the heap, and by how many handles.
///
/// ```
/// let held = rcycle::Gc::new(vec![rcycle::Gc::new(1u8)]);
/// let holders = rcycle::report::outside_holders();
/// assert_eq!(holders[0].object.id, rcycle::report::ObjectId::of(&held));
/// assert_eq!(holders[0].handles, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct OutsideHolder {
    /// The object.
    pub object: ObjectInfo,
    /// Handles the heap does not explain (on the stack, in a static, in a
    /// container that is not traced).
    pub handles: usize,
}

/// The objects whose strong count is higher than the references the heap
/// itself explains: held from the stack, a static, or a non-traced container.
/// They are the roots of everything else that is alive — and so the roots of
/// every reachable leak. Largest outside count first.
///
/// ```
/// use rcycle::Gc;
/// let root = Gc::new(vec![Gc::new(1u8), Gc::new(2u8)]);
/// let holders = rcycle::report::outside_holders();
/// assert_eq!(holders.len(), 1);
/// assert_eq!(holders[0].handles, 1);
/// ```
pub fn outside_holders() -> Vec<OutsideHolder> {
    let graph = HeapGraph::capture();
    let mut holders: Vec<_> = graph
        .outside_holders()
        .into_iter()
        .map(|n| OutsideHolder {
            object: graph.object(n),
            handles: graph.outside_count(n),
        })
        .collect();
    holders.sort_by(|a, b| {
        b.handles
            .cmp(&a.handles)
            .then(a.object.id.cmp(&b.object.id))
    });
    holders
}

/// The chain of references that keeps an object alive, from something held
/// outside the heap. `Display` prints it like objgraph's `show_chain`:
/// `<held outside> app::Dispatcher .expected[9394860] -> app::Iq`.
///
/// ```
/// let iq = rcycle::Gc::new(7u64);
/// let holder = rcycle::Gc::new(vec![iq.clone()]);
/// let chain = rcycle::why_alive(&iq).unwrap();
/// assert_eq!(chain.links.len(), 2);
/// assert_eq!(chain.links[1].label, "[0]");
/// assert!(chain.to_string().ends_with(" [0] -> u64"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Chain {
    /// The objects from the outside holder to the object asked about, each
    /// with the label of the edge that reaches it (empty for the first).
    pub links: Vec<Related>,
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<held outside>")?;
        for (i, link) in self.links.iter().enumerate() {
            if i == 0 {
                write!(f, " {}", link.object.type_name)?;
            } else {
                write!(f, " {} -> {}", link.label, link.object.type_name)?;
            }
        }
        Ok(())
    }
}

/// The shortest chain of references from an object held outside the heap to
/// `obj` (objgraph's `find_backref_chain` + `show_chain`, heapy's `shpaths`).
/// The handle passed in does not count as an outside holder. `None` if only
/// garbage refers to `obj` (a [`collect`](crate::collect()) would free it) —
/// or if `obj` is held by nothing else than that handle.
///
/// ```
/// use rcycle::{Gc, Trace};
/// use std::collections::HashMap;
///
/// #[derive(Trace)]
/// struct Dispatcher { expected: HashMap<u64, Gc<String>> }
/// let iq = Gc::new(String::from("<iq id='42'/>"));
/// let d = Gc::new(Dispatcher { expected: HashMap::from([(42, iq.clone())]) });
/// let chain = rcycle::why_alive(&iq).unwrap();
/// assert!(chain.to_string().ends_with("Dispatcher .expected[42] -> alloc::string::String"));
/// ```
pub fn why_alive<T: ?Sized>(obj: &Gc<T>) -> Option<Chain> {
    if let Some(chain) = related::why_alive_by_passes(obj) {
        return chain;
    }
    let graph = HeapGraph::capture();
    let node = graph.find(ObjectId::of(obj))?;
    let chain = graph.shortest_chain(node, 1)?;
    Some(Chain {
        links: chain
            .into_iter()
            .map(|(n, label)| Related {
                object: graph.object(n),
                label: label.to_string(),
            })
            .collect(),
    })
}
