//! A read-only snapshot of the object graph: every object with its type,
//! size and counts, every edge with its label. It holds no handles, so taking
//! one keeps nothing alive, and it never writes to an object's header.
//!
//! The graph queries of the reporter (referrers, outside holders, the chain
//! that keeps an object alive, DOT pictures, dominators, DevTools export) all
//! work on a `HeapGraph`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ptr::NonNull;

use crate::collect::HoldMemory;
use crate::gc::ErasedGc;
use crate::header::{Header, ACYCLIC};
use crate::heap::{heap, Heap};
use crate::trace::{EdgeSink, LabelPath, Tracer};

/// The identity of a live object: its address. It stays valid while the
/// object lives; once the object is freed the address may be reused.
///
/// ```
/// let g = rcycle::Gc::new(1u8);
/// assert_eq!(rcycle::ObjectId::of(&g), rcycle::ObjectId::of(&g.clone()));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ObjectId(pub(crate) usize);

impl ObjectId {
    /// The identity of the object `gc` points to.
    ///
    /// ```
    /// let (a, b) = (rcycle::Gc::new(1u8), rcycle::Gc::new(1u8));
    /// assert_ne!(rcycle::ObjectId::of(&a), rcycle::ObjectId::of(&b));
    /// ```
    pub fn of<T: ?Sized>(gc: &crate::Gc<T>) -> ObjectId {
        ObjectId(gc.header_ptr().as_ptr() as usize)
    }

    /// The address, as a number (for display).
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// assert_ne!(rcycle::ObjectId::of(&g).addr(), 0);
    /// ```
    pub fn addr(self) -> usize {
        self.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// What a report knows about one object.
///
/// ```
/// let g = rcycle::Gc::new(String::with_capacity(100));
/// let graph = rcycle::HeapGraph::capture();
/// let info = &graph.objects()[graph.find(rcycle::ObjectId::of(&g)).unwrap()];
/// assert_eq!(info.type_name, "alloc::string::String");
/// assert_eq!(info.size, 16 + 24 + 100); // header + String + its buffer
/// assert_eq!(info.strong, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's identity.
    pub id: ObjectId,
    /// `std::any::type_name` of its value.
    pub type_name: &'static str,
    /// Bytes: the memory the object takes (its slot: 16-byte header and
    /// value, rounded up to a size class) plus the heap memory the value owns
    /// ([`Trace::heap_size`](crate::Trace::heap_size)).
    pub size: usize,
    /// `Gc` handles to it.
    pub strong: usize,
    /// `WeakGc` handles to it.
    pub weak: usize,
    /// Its value was dropped with a collected cycle while a handle to it
    /// remained (a *dead box*).
    pub dead: bool,
    /// Its value could not be traced (a `RefCell` mutably borrowed): its
    /// outgoing edges are unknown.
    pub untraceable: bool,
}

pub(crate) use crate::addr_map::AddrMap;

/// A snapshot of this thread's object graph.
///
/// Nodes are numbered `0..len()`; [`objects`](Self::objects) describes them.
/// Edges carry the label path from the source value to the `Gc` field, like
/// `.children[3]` or `.expected[9394860]`.
///
/// ```
/// use rcycle::{Gc, HeapGraph, ObjectId, Trace};
/// #[derive(Trace)]
/// struct Parent { kids: Vec<Gc<u32>> }
/// let kid = Gc::new(7u32);
/// let parent = Gc::new(Parent { kids: vec![kid.clone()] });
/// let g = HeapGraph::capture();
/// let (p, k) = (g.find(ObjectId::of(&parent)).unwrap(), g.find(ObjectId::of(&kid)).unwrap());
/// assert_eq!(g.referents(p).collect::<Vec<_>>(), vec![(k, ".kids[0]")]);
/// assert_eq!(g.referrers(k).collect::<Vec<_>>(), vec![(p, ".kids[0]")]);
/// assert_eq!(g.outside_count(k), 1); // `kid`, on this stack
/// ```
pub struct HeapGraph {
    objects: Vec<ObjectInfo>,
    index: AddrMap<u32>,
    /// Out-edges of node `i`: `out_target[out_start[i]..out_start[i + 1]]`.
    out_start: Vec<u32>,
    out_target: Vec<u32>,
    out_label: Vec<u32>,
    /// In-edges, as positions in the out-edge arrays.
    in_start: Vec<u32>,
    in_edge: Vec<u32>,
    labels: Vec<Box<str>>,
    /// The heap at the end of the capture (for the DevTools export's ids).
    pub(crate) stamp: crate::report::ids::HeapStamp,
}

/// Collects one object's edges during capture.
struct CaptureSink<'a> {
    index: &'a AddrMap<u32>,
    targets: &'a mut Vec<u32>,
    labels: &'a mut Vec<u32>,
    interned: &'a mut HashMap<Box<str>, u32>,
    label_list: &'a mut Vec<Box<str>>,
}

impl EdgeSink for CaptureSink<'_> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        let Some(&t) = self.index.get(&(target.as_ptr() as usize)) else {
            return; // an object being dropped right now: not in the snapshot
        };
        let label = match self.interned.get(path) {
            Some(&l) => l,
            None => {
                let l = self.label_list.len() as u32;
                self.label_list.push(path.into());
                self.interned.insert(path.into(), l);
                l
            }
        };
        self.targets.push(t);
        self.labels.push(label);
    }
}

impl HeapGraph {
    /// Takes a snapshot of this thread's objects and edges.
    ///
    /// Objects whose last handle is gone but whose value is still being
    /// dropped are not included. Runs the `Trace` impls of every object (and
    /// nothing else): it does not collect, and it keeps nothing alive.
    ///
    /// ```
    /// let before = rcycle::HeapGraph::capture().len();
    /// let g = rcycle::Gc::new(1u8);
    /// assert_eq!(rcycle::HeapGraph::capture().len(), before + 1);
    /// # drop(g);
    /// ```
    pub fn capture() -> HeapGraph {
        Self::capture_from(heap())
    }

    pub(crate) fn capture_from(heap: &Heap) -> HeapGraph {
        let headers: Vec<NonNull<Header>> = heap
            .all_objects()
            .into_iter()
            // SAFETY: enumerated objects are allocated.
            .filter(|h| unsafe { h.as_ref() }.strong.get() > 0)
            .collect();
        let mut index = AddrMap::default();
        index.reserve(headers.len());
        for (i, h) in headers.iter().enumerate() {
            index.insert(h.as_ptr() as usize, i as u32);
        }
        let mut objects = Vec::with_capacity(headers.len());
        let mut out_start = Vec::with_capacity(headers.len() + 1);
        let (mut out_target, mut out_label) = (Vec::new(), Vec::new());
        let mut interned = HashMap::new();
        let mut labels = Vec::new();
        let mut path = LabelPath::new(false);
        // Tracing with labels formats map keys with their `Debug` impl: safe
        // user code, which may drop handles. A weak count on every object
        // keeps each header readable to the end, and a strong one on the
        // object being traced keeps its value from being dropped under us.
        let _hold = HoldMemory::new(heap, &headers);
        for &header in &headers {
            out_start.push(out_target.len() as u32);
            // SAFETY: `_hold` keeps the header readable.
            let h = unsafe { header.as_ref() };
            let entry = heap.type_of(h);
            let strong = h.strong.get() as usize;
            // Minus our hold, and the implicit weak while the value is there.
            let weak = (h.weak.get() as usize).saturating_sub(1 + usize::from(strong > 0));
            let mut size = entry.info.alloc_size;
            // SAFETY: readable (see above).
            let pin = unsafe { ErasedGc::new(heap, header) };
            let dead = !h.value_alive();
            // A value lent out by a `GcMut` may not be read: its edges are
            // unknown, like those of a mutably borrowed `RefCell`.
            let mut untraceable = !dead && pin.is_none();
            if pin.is_some() {
                // SAFETY: the value is intact and pinned.
                size += unsafe { (entry.info.heap_size)(header) };
                if !h.has(ACYCLIC) {
                    let mut sink = CaptureSink {
                        index: &index,
                        targets: &mut out_target,
                        labels: &mut out_label,
                        interned: &mut interned,
                        label_list: &mut labels,
                    };
                    path.clear();
                    let mut tracer = Tracer::new(&mut sink, Some(&mut path));
                    // SAFETY: as above.
                    unsafe { (entry.info.trace)(header, &mut tracer) };
                    untraceable = !tracer.is_complete();
                }
            }
            drop(pin);
            objects.push(ObjectInfo {
                id: ObjectId(header.as_ptr() as usize),
                type_name: (entry.info.type_name)(),
                size,
                strong,
                weak,
                dead,
                untraceable,
            });
        }
        out_start.push(out_target.len() as u32);
        drop(_hold);
        let stamp = crate::report::ids::HeapStamp::of(heap);
        let (in_start, in_edge) = reverse_edges(objects.len(), &out_target);
        HeapGraph {
            objects,
            index,
            out_start,
            out_target,
            out_label,
            in_start,
            in_edge,
            labels,
            stamp,
        }
    }

    /// The number of objects.
    ///
    /// ```
    /// assert!(rcycle::HeapGraph::capture().len() < usize::MAX);
    /// ```
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the heap had no objects.
    ///
    /// ```
    /// let g = rcycle::HeapGraph::capture();
    /// assert_eq!(g.is_empty(), g.len() == 0);
    /// ```
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every object, indexed by node number.
    ///
    /// ```
    /// let g = rcycle::Gc::new(5u64);
    /// let graph = rcycle::HeapGraph::capture();
    /// assert!(graph.objects().iter().any(|o| o.type_name == "u64" && o.size == 24));
    /// # drop(g);
    /// ```
    pub fn objects(&self) -> &[ObjectInfo] {
        &self.objects
    }

    /// The node number of an object, if it was in the snapshot.
    ///
    /// ```
    /// let g = rcycle::Gc::new(5u64);
    /// assert!(rcycle::HeapGraph::capture().find(rcycle::ObjectId::of(&g)).is_some());
    /// ```
    pub fn find(&self, id: ObjectId) -> Option<usize> {
        self.index.get(&id.0).map(|&i| i as usize)
    }

    /// The objects `node` refers to, with the label of each edge.
    ///
    /// ```
    /// # use rcycle::{Gc, HeapGraph, ObjectId};
    /// let inner = Gc::new(1u8);
    /// let outer = Gc::new(Some(inner.clone()));
    /// let g = HeapGraph::capture();
    /// let o = g.find(ObjectId::of(&outer)).unwrap();
    /// assert_eq!(g.referents(o).count(), 1);
    /// ```
    pub fn referents(&self, node: usize) -> impl Iterator<Item = (usize, &str)> + '_ {
        let range = self.out_start[node] as usize..self.out_start[node + 1] as usize;
        range.map(move |e| (self.out_target[e] as usize, self.edge_label(e)))
    }

    /// The objects that refer to `node`, with the label of each edge.
    ///
    /// ```
    /// # use rcycle::{Gc, HeapGraph, ObjectId};
    /// let inner = Gc::new(1u8);
    /// let outer = Gc::new(vec![inner.clone()]);
    /// let g = HeapGraph::capture();
    /// let i = g.find(ObjectId::of(&inner)).unwrap();
    /// assert_eq!(g.referrers(i).map(|(_, l)| l).collect::<Vec<_>>(), ["[0]"]);
    /// ```
    pub fn referrers(&self, node: usize) -> impl Iterator<Item = (usize, &str)> + '_ {
        let range = self.in_start[node] as usize..self.in_start[node + 1] as usize;
        range.map(move |i| {
            let e = self.in_edge[i] as usize;
            (self.source_of(e), self.edge_label(e))
        })
    }

    /// Handles to `node` that the heap does not explain: its strong count
    /// minus the edges from other objects. Those handles live on the stack,
    /// in a static, or in something that is not traced.
    ///
    /// ```
    /// # use rcycle::{Gc, HeapGraph, ObjectId};
    /// let inner = Gc::new(1u8);
    /// let outer = Gc::new(vec![inner.clone()]);
    /// let g = HeapGraph::capture();
    /// assert_eq!(g.outside_count(g.find(ObjectId::of(&inner)).unwrap()), 1);
    /// ```
    pub fn outside_count(&self, node: usize) -> usize {
        let internal = (self.in_start[node + 1] - self.in_start[node]) as usize;
        self.objects[node].strong.saturating_sub(internal)
    }

    /// The objects held from outside the heap ([`outside_count`] above 0), or
    /// whose edges are unknown: the roots of everything else that is alive.
    ///
    /// [`outside_count`]: Self::outside_count
    ///
    /// ```
    /// # use rcycle::{Gc, HeapGraph, ObjectId};
    /// let inner = Gc::new(1u8);
    /// let outer = Gc::new(vec![inner.clone()]);
    /// drop(inner);
    /// let g = HeapGraph::capture();
    /// let holders = g.outside_holders();
    /// assert!(holders.contains(&g.find(ObjectId::of(&outer)).unwrap()));
    /// assert_eq!(holders.len(), 1);
    /// ```
    pub fn outside_holders(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&n| self.outside_count(n) > 0 || self.objects[n].untraceable)
            .collect()
    }

    /// The shortest chain of edges from an outside holder to `target`, as
    /// node numbers with the label of the edge that reaches each (the first
    /// has no label). `ignore_handles` outside handles of `target` itself are
    /// not counted (the handle the caller used to ask). `None` if nothing
    /// holds it (it is only reachable from garbage).
    ///
    /// ```
    /// # use rcycle::{Gc, HeapGraph, ObjectId};
    /// let inner = Gc::new(1u8);
    /// let outer = Gc::new(vec![inner.clone()]);
    /// let g = HeapGraph::capture();
    /// let i = g.find(ObjectId::of(&inner)).unwrap();
    /// let chain = g.shortest_chain(i, 1).unwrap();
    /// assert_eq!(chain.len(), 2);
    /// assert_eq!(chain[1].1, "[0]");
    /// ```
    pub fn shortest_chain(
        &self,
        target: usize,
        ignore_handles: usize,
    ) -> Option<Vec<(usize, &str)>> {
        // Multi-source breadth-first search from every outside holder.
        const NONE: u32 = u32::MAX;
        let mut parent_edge = vec![NONE; self.len()];
        let mut seen = vec![false; self.len()];
        let mut queue = VecDeque::new();
        for (n, seen) in seen.iter_mut().enumerate() {
            let mut outside = self.outside_count(n);
            if n == target {
                outside = outside.saturating_sub(ignore_handles);
            }
            if outside > 0 || self.objects[n].untraceable {
                *seen = true;
                queue.push_back(n);
            }
        }
        while let Some(n) = queue.pop_front() {
            if n == target {
                break;
            }
            for e in self.out_start[n] as usize..self.out_start[n + 1] as usize {
                let t = self.out_target[e] as usize;
                if !seen[t] {
                    seen[t] = true;
                    parent_edge[t] = e as u32;
                    queue.push_back(t);
                }
            }
        }
        if !seen[target] {
            return None;
        }
        let mut chain = Vec::new();
        let mut n = target;
        while parent_edge[n] != NONE {
            let e = parent_edge[n] as usize;
            chain.push((n, self.edge_label(e)));
            n = self.source_of(e);
        }
        chain.push((n, ""));
        chain.reverse();
        Some(chain)
    }

    fn edge_label(&self, edge: usize) -> &str {
        &self.labels[self.out_label[edge] as usize]
    }

    /// The source node of out-edge `edge` (binary search over `out_start`).
    fn source_of(&self, edge: usize) -> usize {
        self.out_start.partition_point(|&s| s as usize <= edge) - 1
    }

    /// All edges as `(source, target, label)`.
    ///
    /// ```
    /// # use rcycle::{Gc, HeapGraph};
    /// let a = Gc::new(vec![Gc::new(1u8)]);
    /// assert!(HeapGraph::capture().edges().any(|(_, _, l)| l == "[0]"));
    /// ```
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize, &str)> + '_ {
        (0..self.len()).flat_map(move |n| self.referents(n).map(move |(t, l)| (n, t, l)))
    }
}

/// In-edge lists (positions in the out-edge arrays), by counting sort.
fn reverse_edges(nodes: usize, out_target: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut in_start = vec![0u32; nodes + 1];
    for &t in out_target {
        in_start[t as usize + 1] += 1;
    }
    for i in 0..nodes {
        in_start[i + 1] += in_start[i];
    }
    let mut fill = in_start.clone();
    let mut in_edge = vec![0u32; out_target.len()];
    for (e, &t) in out_target.iter().enumerate() {
        in_edge[fill[t as usize] as usize] = e as u32;
        fill[t as usize] += 1;
    }
    (in_start, in_edge)
}
