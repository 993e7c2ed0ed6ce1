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

use super::{ObjectId, ObjectInfo, Related};
use crate::collect::HoldMemory;
use crate::gc::{ErasedGc, Gc};
use crate::header::{Header, ACYCLIC, MUT_BORROWED, VALUE_DROPPED};
use crate::heap::{heap, Heap};
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
    let heap = heap();
    let target = obj.header_ptr();
    // Pass 1, no user code but `trace`: who has an edge to `target`.
    let mut sources = Vec::new();
    for header in heap.all_objects() {
        let mut count = Count { target, hits: 0 };
        plain_trace(heap, header, &mut count);
        if count.hits > 0 {
            sources.push(header);
        }
    }
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
    let heap = heap();
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
    let strong = h.strong.get() as usize;
    if strong == 0 {
        return None;
    }
    let info = heap.type_of(h).info;
    let mut size = info.alloc_size;
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
    let strong = h.strong.get() as usize;
    // Minus the caller's hold, and the implicit weak while the value is there.
    let weak = (h.weak.get() as usize).saturating_sub(1 + usize::from(strong > 0));
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

/// The chain of references that keeps `obj` alive, without a graph (see
/// [`why_alive`](super::why_alive)): a breadth-first search *backwards*
/// from `obj`, one pass over the heap per level (each pass traces every
/// object in plain mode and keeps the edges into the current level), until
/// a level holds an object held from outside. Then the chain is chosen
/// exactly as the graph's forward search from every outside holder would
/// choose it (holders in address order, edges in trace order), and only its
/// links are traced with labels and measured.
///
/// `None` from the outer `Option` when the search would take more than
/// [`MAX_LEVELS`] passes or its levels grow past [`MAX_LEVEL`] objects: the
/// caller then captures the graph instead (one pass of a different cost).
pub(super) fn why_alive_by_passes<T: ?Sized>(obj: &Gc<T>) -> Option<Option<super::Chain>> {
    let heap = heap();
    let target = obj.header_ptr();
    // levels[k]: the objects at distance k from `obj` (backwards), with, for
    // each, the edges found into it: (source, edge ordinal in the source's
    // trace), in heap order.
    let mut levels: Vec<Vec<NonNull<Header>>> = vec![vec![target]];
    let mut seen: std::collections::HashMap<usize, (usize, usize)> =
        [(target.as_ptr() as usize, (0, 0))].into();
    let mut into: Vec<LevelEdges> = Vec::new();
    let listed: Vec<_> = heap.all_objects();
    loop {
        if levels.len() > MAX_LEVELS {
            return None;
        }
        let level = levels.len() - 1;
        let frontier = &levels[level];
        let mut filter = 0u64;
        for h in frontier {
            filter |= bloom_bit(*h);
        }
        let mut sink = LevelSink {
            filter,
            seen: &seen,
            level,
            ordinal: 0,
            hits: Vec::new(),
        };
        let mut edges_into = vec![Vec::new(); frontier.len()];
        let mut indegree = vec![0usize; frontier.len()];
        let mut untraceable = vec![false; frontier.len()];
        let mut next = Vec::new();
        let mut in_next = std::collections::HashSet::new();
        for &source in &listed {
            sink.ordinal = 0;
            sink.hits.clear();
            let complete = plain_trace(heap, source, &mut sink);
            if let Some(&(l, i)) = seen.get(&(source.as_ptr() as usize)) {
                if l == level && !complete {
                    untraceable[i] = true;
                }
            }
            for &(i, ordinal) in &sink.hits {
                indegree[i] += 1;
                edges_into[i].push((source, ordinal));
                let key = source.as_ptr() as usize;
                if !seen.contains_key(&key) && in_next.insert(key) {
                    next.push(source);
                }
            }
        }
        // Held from outside: handles the heap does not explain (the caller's
        // own handle to `obj` not counted), or edges unknown.
        let holders: Vec<usize> = (0..frontier.len())
            .filter(|&i| {
                // SAFETY: listed objects, nothing freed since (no user code
                // but `trace` ran).
                let h = unsafe { frontier[i].as_ref() };
                let ignore = usize::from(level == 0);
                (h.strong.get() as usize).saturating_sub(indegree[i] + ignore) > 0 || untraceable[i]
            })
            .collect();
        into.push(edges_into);
        if !holders.is_empty() {
            return Some(Some(chain_from(heap, &levels, &into, level)));
        }
        if next.is_empty() {
            return Some(None);
        }
        if next.len() > MAX_LEVEL {
            return None;
        }
        // (`next` is in heap order: sources were met in listing order.)
        for (i, h) in next.iter().enumerate() {
            seen.insert(h.as_ptr() as usize, (level + 1, i));
        }
        levels.push(next);
    }
}

/// The edges into each object of one level of the backward search, as
/// (source, ordinal of the edge in the source's trace), in heap order.
type LevelEdges = Vec<Vec<(NonNull<Header>, u32)>>;

/// At most this many passes over the heap (levels) before `why_alive`
/// captures the graph instead: a long chain (a list of a million objects)
/// would otherwise cost a pass per link.
const MAX_LEVELS: usize = 24;
/// At most this many objects in one level: each edge into a level is looked
/// up in a hash map, which a capture does once for every edge anyway.
const MAX_LEVEL: usize = 1 << 16;

/// A bit of a 64-bit filter for an object: most edges are told apart from
/// a level's objects without a hash lookup.
#[inline]
fn bloom_bit(h: NonNull<Header>) -> u64 {
    1u64 << ((h.as_ptr() as usize >> 4) % 64)
}

/// Records the edges into one level of the backward search.
struct LevelSink<'a> {
    filter: u64,
    seen: &'a std::collections::HashMap<usize, (usize, usize)>,
    level: usize,
    /// The ordinal of the next edge in the source's trace.
    ordinal: u32,
    /// (index in the level, edge ordinal) of the edges into the level.
    hits: Vec<(usize, u32)>,
}

impl EdgeSink for LevelSink<'_> {
    #[inline]
    fn edge(&mut self, target: NonNull<Header>, _path: &str) {
        let ordinal = self.ordinal;
        self.ordinal += 1;
        if self.filter & bloom_bit(target) == 0 {
            return;
        }
        if let Some(&(l, i)) = self.seen.get(&(target.as_ptr() as usize)) {
            if l == self.level {
                self.hits.push((i, ordinal));
            }
        }
    }
}

/// Traces `header`'s value in the collector's plain mode (no labels, no
/// user code but `trace`), if it has one that may hold handles and that may
/// be read; returns whether it was traced whole (`false` for a value lent
/// out, or a `RefCell` mutably borrowed).
fn plain_trace(heap: &Heap, header: NonNull<Header>, sink: &mut dyn EdgeSink) -> bool {
    // SAFETY: the caller holds the object, or listed it with nothing freed
    // since: only `Trace::trace` runs in these passes, which drops no
    // handle (its contract).
    let h = unsafe { header.as_ref() };
    if h.strong.get() == 0 || h.state.get() & (VALUE_DROPPED | ACYCLIC) != 0 {
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

/// The chain the graph's forward search would find: from the holders of
/// level `top` (in address order, as the graph numbers its nodes), edges in
/// trace order, first parent wins.
fn chain_from(
    heap: &Heap,
    levels: &[Vec<NonNull<Header>>],
    into: &[LevelEdges],
    top: usize,
) -> super::Chain {
    // Forward, level by level: `order[k]` lists the level-k objects in the
    // order the forward search meets them, with the (parent, ordinal) that
    // reached each.
    let holder_level = &levels[top];
    let mut parent: std::collections::HashMap<usize, (NonNull<Header>, u32)> = Default::default();
    let mut order: Vec<NonNull<Header>> = holder_level
        .iter()
        .enumerate()
        .filter(|&(i, h)| {
            // SAFETY: listed, nothing freed since.
            let s = unsafe { h.as_ref() }.strong.get() as usize;
            let ignore = usize::from(top == 0);
            // The same test as in the search (indegree = edges recorded).
            s.saturating_sub(into[top][i].len() + ignore) > 0 || is_untraceable(heap, *h)
        })
        .map(|(_, &h)| h)
        .collect();
    // The graph numbers its nodes in address order, and its search starts
    // from the holders in that order.
    order.sort_unstable();
    for k in (0..top).rev() {
        // Out-edges of the level above into level k, per source, in trace
        // order: gather them from the in-edge lists.
        let mut out: std::collections::HashMap<usize, Vec<(u32, usize)>> = Default::default();
        for (i, edges) in into[k].iter().enumerate() {
            for &(source, ordinal) in edges {
                out.entry(source.as_ptr() as usize)
                    .or_default()
                    .push((ordinal, i));
            }
        }
        let mut next = Vec::new();
        for &u in &order {
            let Some(edges) = out.get_mut(&(u.as_ptr() as usize)) else {
                continue;
            };
            edges.sort_unstable();
            for &(ordinal, i) in edges.iter() {
                let t = levels[k][i];
                if let std::collections::hash_map::Entry::Vacant(e) =
                    parent.entry(t.as_ptr() as usize)
                {
                    e.insert((u, ordinal));
                    next.push(t);
                }
            }
        }
        order = next;
    }
    // Walk back up from `obj`.
    let mut path = vec![(levels[0][0], None)];
    let mut n = levels[0][0];
    while let Some(&(p, ordinal)) = parent.get(&(n.as_ptr() as usize)) {
        path.push((p, Some(ordinal)));
        n = p;
    }
    path.reverse();
    // `path[j]` = (object, ordinal of the edge from it to path[j + 1]).
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

/// Whether an object's value cannot be traced whole right now.
fn is_untraceable(heap: &Heap, header: NonNull<Header>) -> bool {
    struct Nothing;
    impl EdgeSink for Nothing {
        fn edge(&mut self, _: NonNull<Header>, _: &str) {}
    }
    !plain_trace(heap, header, &mut Nothing)
}
