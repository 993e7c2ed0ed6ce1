//! `referrers` and `referents` without a graph: the questions about one
//! object answered by one pass over the heap (Python's `gc.get_referrers`
//! does the same), or by tracing the object alone.
//!
//! [`referrers`] first traces every object in the collector's plain mode,
//! which runs no user code but `Trace::trace` (whose `unsafe` contract
//! forbids it to mutate anything or drop a handle) and formats no label, and
//! keeps the objects with an edge to the one asked about. Only those few
//! are traced again with labels (map keys' `Debug`, user code) and measured
//! (`heap_size`, user code), held as every report holds what it reads.

use std::ptr::NonNull;

use super::graph::PlainGraph;
use super::{ObjectId, ObjectInfo, Related};
use crate::collect::HoldMemory;
use crate::gc::{ErasedGc, Gc};
use crate::header::{Header, ACYCLIC, MUT_BORROWED, VALUE_DROPPED};
use crate::heap::Heap;
use crate::runtime::query;
use crate::trace::{EdgeSink, LabelPath, Tracer};

/// The objects that refer to `obj`, with the field that does
/// (`gc.get_referrers`). One entry per edge, in the order the heap lists the
/// objects and each value reports its edges.
///
/// ```
/// use rcycle::{Gc, Trace};
/// #[derive(Trace)]
/// struct Holder { held: Gc<u8> }
/// let x = Gc::new(1u8);
/// let h = Gc::new(Holder { held: x.clone() });
/// let r = rcycle::report::referrers(&x);
/// assert_eq!(r.len(), 1);
/// assert_eq!(r[0].label, ".held");
/// assert!(r[0].object.type_name.ends_with("Holder"));
/// ```
pub fn referrers<T: ?Sized>(obj: &Gc<T>) -> Vec<Related> {
    let rt = query();
    let heap = &rt.heap;
    let target = obj.header_ptr();
    // Pass 1, no user code but `trace`: who has an edge to `target`.
    let mut sources = Vec::new();
    let each = |header| {
        let mut count = Count { target, hits: 0 };
        plain_trace(heap, header, &mut count);
        if count.hits > 0 {
            sources.push(header);
        }
    };
    // SAFETY: `each` runs no user code but `Trace::trace`, which neither
    // allocates nor frees an object (its contract): the slots are read in
    // place, with no list of every object.
    unsafe { heap.for_each_object(each) };
    // Pass 2 over those few, with user code: labels and sizes.
    let _hold = HoldMemory::new(heap, &sources);
    let mut related = Vec::new();
    for &source in &sources {
        labelled_edges(heap, source, |t, label| {
            if t == target {
                related.push((source, label.to_string()));
            }
        });
    }
    related
        .into_iter()
        .filter_map(|(source, label)| {
            Some(Related {
                object: object_info(heap, source)?,
                label,
            })
        })
        .collect()
}

/// The objects `obj` refers to, with the field that does
/// (`gc.get_referents`), in the order the value reports its edges.
///
/// ```
/// use rcycle::{Gc, Trace};
/// #[derive(Trace)]
/// struct Holder { held: Gc<u8> }
/// let h = Gc::new(Holder { held: Gc::new(1u8) });
/// let r = rcycle::report::referents(&h);
/// assert_eq!((r.len(), r[0].label.as_str(), r[0].object.type_name), (1, ".held", "u8"));
/// ```
pub fn referents<T: ?Sized>(obj: &Gc<T>) -> Vec<Related> {
    let rt = query();
    let heap = &rt.heap;
    let mut edges = Vec::new();
    labelled_edges(heap, obj.header_ptr(), |t, label| {
        edges.push((t, label.to_string()))
    });
    let mut targets: Vec<_> = edges.iter().map(|&(t, _)| t).collect();
    targets.sort_unstable();
    targets.dedup();
    // Each target was held by an edge when it was found; the weak counts
    // keep every header readable whatever user code drops meanwhile.
    let _hold = HoldMemory::new(heap, &targets);
    edges
        .into_iter()
        .filter_map(|(target, label)| {
            Some(Related {
                object: object_info(heap, target)?,
                label,
            })
        })
        .collect()
}

/// Counts the edges to one object.
struct Count {
    target: NonNull<Header>,
    hits: usize,
}

impl EdgeSink for Count {
    #[inline]
    fn edge(&mut self, target: NonNull<Header>, _path: &str) {
        self.hits += usize::from(target == self.target);
    }
}

/// Calls `each(target, label)` for every edge of `header`'s value, traced
/// with labels (map keys' `Debug`: user code), with the value pinned.
/// Nothing if the value is gone, lent out, or cannot own a handle.
fn labelled_edges(heap: &Heap, header: NonNull<Header>, each: impl FnMut(NonNull<Header>, &str)) {
    struct Each<F>(F);
    impl<F: FnMut(NonNull<Header>, &str)> EdgeSink for Each<F> {
        fn edge(&mut self, target: NonNull<Header>, path: &str) {
            (self.0)(target, path)
        }
    }
    // SAFETY: the caller holds the object (a handle, or a weak count).
    let h = unsafe { header.as_ref() };
    if h.has(ACYCLIC) {
        return;
    }
    // SAFETY: readable (caller).
    let Some(_pin) = (unsafe { ErasedGc::new(heap, header) }) else {
        return;
    };
    let trace = heap.type_of(h).info.trace;
    let mut path = LabelPath::new(false);
    let mut sink = Each(each);
    let mut tracer = Tracer::new(&mut sink, Some(&mut path));
    // SAFETY: the value is intact and pinned.
    unsafe { trace(header, &mut tracer) };
}

/// What a report shows of one object, as [`HeapGraph`](super::HeapGraph)
/// records it; `None` if no handle to it is left. The caller holds one
/// weak count of it (subtracted here).
fn object_info(heap: &Heap, header: NonNull<Header>) -> Option<ObjectInfo> {
    // SAFETY: the caller's weak count keeps the header readable.
    let h = unsafe { header.as_ref() };
    let strong = h.strong() as usize;
    if strong == 0 {
        return None;
    }
    let info = heap.type_of(h).info;
    // SAFETY: readable, of this type (the caller's weak count).
    let mut size = unsafe { info.alloc_size_of(header) };
    let dead = !h.value_alive();
    // SAFETY: readable (see above).
    let pin = unsafe { ErasedGc::new(heap, header) };
    if pin.is_some() {
        // SAFETY: the value is intact and pinned.
        size += unsafe { (info.heap_size)(header) };
    }
    // Whether the value can be traced whole (a `RefCell` mutably borrowed
    // cannot; a value lent out is not read), as the capture records it.
    let untraceable = !dead && (pin.is_none() || is_untraceable(heap, header));
    drop(pin);
    // Read after `heap_size` (user code) ran, as the capture does.
    let strong = h.strong() as usize;
    // Minus the caller's hold, and the implicit weak while the value is there.
    let weak = (h.weak() as usize).saturating_sub(1 + usize::from(strong > 0));
    Some(ObjectInfo {
        id: ObjectId(header.as_ptr() as usize),
        type_name: (info.type_name)(),
        size,
        strong,
        weak,
        dead,
        untraceable,
    })
}

/// The chain of references that keeps `obj` alive, without a labelled
/// graph (see [`why_alive`](super::why_alive)): one plain pass over the
/// heap records every edge, unlabelled ([`PlainGraph`]), and the chain is
/// the one the graph's forward search from every outside holder finds
/// (holders in address order, edges in trace order); only its links are
/// traced with labels and measured.
///
/// The outer `Option` is always `Some` (the caller captures a graph on
/// `None`). Before, this searched backwards one plain pass per level of the
/// chain; one pass that keeps every edge costs less than two of those.
pub(super) fn why_alive_by_passes<T: ?Sized>(obj: &Gc<T>) -> Option<Option<super::Chain>> {
    let rt = query();
    let heap = &rt.heap;
    let graph = PlainGraph::capture(heap);
    let Some(target) = graph.find(obj.header_ptr()) else {
        return Some(None);
    };
    let Some(path) = graph.shortest_chain(target, 1) else {
        return Some(None);
    };
    Some(Some(chain_links(heap, &path)))
}

/// The chain's links: `path[j]` is an object of the chain (a node of a
/// graph captured with no user code run since: live) and the ordinal of
/// the edge from it to `path[j + 1]` in its trace. Each link is traced
/// with labels for that edge's label, then measured, with every link held.
fn chain_links(heap: &Heap, path: &[(NonNull<Header>, Option<u32>)]) -> super::Chain {
    let objects: Vec<_> = path.iter().map(|&(h, _)| h).collect();
    let _hold = HoldMemory::new(heap, &objects);
    // Labels first (the edge from each link to the next), then what each
    // link is: both run user code, and a link whose last handle went
    // meanwhile is left out with its label.
    let mut labels = vec![String::new(); path.len()];
    for (j, &(h, ordinal)) in path.iter().enumerate() {
        if let (Some(ordinal), true) = (ordinal, j + 1 < path.len()) {
            let mut k = 0;
            labelled_edges(heap, h, |_, l| {
                if k == ordinal {
                    labels[j + 1] = l.to_string();
                }
                k += 1;
            });
        }
    }
    let links = path
        .iter()
        .zip(labels)
        .filter_map(|(&(h, _), label)| {
            Some(Related {
                object: object_info(heap, h)?,
                label,
            })
        })
        .collect();
    super::Chain { links }
}

/// Traces `header`'s value in the collector's plain mode (no labels, no
/// user code but `trace`), if it has one that may hold handles and that may
/// be read; returns whether it was traced whole (`false` for a value lent
/// out, or a `RefCell` mutably borrowed).
fn plain_trace(heap: &Heap, header: NonNull<Header>, sink: &mut dyn EdgeSink) -> bool {
    // SAFETY: the caller holds the object, or found it in the heap's
    // slots (listed, or enumerated in place) with nothing freed since: only
    // `Trace::trace` runs in these passes, which drops no handle (its
    // contract).
    let h = unsafe { header.as_ref() };
    if h.strong() == 0 || h.has(VALUE_DROPPED | ACYCLIC) {
        return true;
    }
    if h.has(MUT_BORROWED) {
        return false;
    }
    let trace = heap.type_of(h).info.trace;
    let mut tracer = Tracer::new(sink, None);
    // SAFETY: the value is intact (`VALUE_DROPPED` clear), not lent out
    // (`MUT_BORROWED` clear), and nothing can drop it while `trace` runs.
    unsafe { trace(header, &mut tracer) };
    tracer.is_complete()
}

/// Whether an object's value cannot be traced whole right now.
fn is_untraceable(heap: &Heap, header: NonNull<Header>) -> bool {
    struct Nothing;
    impl EdgeSink for Nothing {
        fn edge(&mut self, _: NonNull<Header>, _: &str) {}
    }
    !plain_trace(heap, header, &mut Nothing)
}
