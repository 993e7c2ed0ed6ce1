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

use crate::collect::{HoldMemory, Quiesced};
use crate::gc::ErasedGc;
use crate::header::{Header, ACYCLIC, VISITED};
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

use crate::addr_map::AddrMap;

/// `out_index` of an edge whose label is a whole text (not a template).
const WHOLE: u32 = u32::MAX;

/// A snapshot of this thread's object graph.
///
/// Nodes are numbered `0..len()` in address order; [`objects`](Self::objects)
/// describes them. Edges carry the label path from the source value to the
/// `Gc` field, like `.children[3]` or `.expected[9394860]`.
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
    /// Sorted by address (so [`find`](Self::find) is a binary search).
    objects: Vec<ObjectInfo>,
    /// Out-edges of node `i`: `out_target[out_start[i]..out_start[i + 1]]`.
    out_start: Vec<u32>,
    out_target: Vec<u32>,
    /// Each out-edge's label: a text of `labels`, and the index written
    /// into that text's `[#]` ([`WHOLE`]: the text is the label).
    out_label: Vec<u32>,
    out_index: Vec<u32>,
    /// In-edges, as positions in the out-edge arrays.
    in_start: Vec<u32>,
    in_edge: Vec<u32>,
    labels: Labels,
    /// The heap at the end of the capture (for the DevTools export's ids).
    pub(crate) stamp: crate::report::ids::HeapStamp,
}

/// The label texts of a graph: whole labels (`.parent`, `.by_id["k"]`) and
/// *templates* with one index left out (`.kids[#]`), few of them; a label
/// made of a template and an index is formatted only when it is asked for.
#[derive(Default)]
struct Labels {
    texts: Vec<Box<str>>,
    /// Where the `[#]` of each template starts; [`WHOLE`] for a whole label.
    holes: Vec<u32>,
    /// Labels made from a template and an index, by `(text, index)`. An
    /// entry is never removed or changed once made, and `String`'s buffer
    /// does not move when the map moves the `String`: the `&str`s
    /// [`get`](Self::get) hands out stay valid while the graph lives.
    made: std::sync::Mutex<HashMap<(u32, u32), String>>,
}

impl Labels {
    fn get(&self, text: u32, index: u32) -> &str {
        let t = &self.texts[text as usize];
        if index == WHOLE {
            return t;
        }
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let label = made.entry((text, index)).or_insert_with(|| {
            let hole = self.holes[text as usize] as usize;
            format!("{}[{index}]{}", &t[..hole], &t[hole + 3..])
        });
        let label: *const str = label.as_str();
        drop(made);
        // SAFETY: the string lives in `made` until the graph drops (entries
        // are never removed or replaced, and dropping the graph needs
        // `&mut self`, which this borrow of `self` excludes); its bytes sit
        // in its own allocation, which moving the `String` (the map growing)
        // does not move, and nothing writes to them.
        unsafe { &*label }
    }
}

/// Interns label texts while a graph is captured.
#[derive(Default)]
struct Interner {
    labels: Labels,
    whole: HashMap<Box<str>, u32>,
    templates: HashMap<Box<str>, u32>,
    /// The text interned last (most edges repeat it: `.kids[#]`).
    last: Option<u32>,
    /// Scratch for a label with several indices.
    filled: String,
}

impl Interner {
    /// The id of `text`, a whole label if `hole` is [`WHOLE`], else a
    /// template whose `[#]` starts at `hole`.
    fn intern(&mut self, text: &str, hole: u32) -> u32 {
        if let Some(l) = self.last {
            let i = l as usize;
            if self.labels.holes[i] == hole && *self.labels.texts[i] == *text {
                return l;
            }
        }
        let map = if hole == WHOLE {
            &mut self.whole
        } else {
            &mut self.templates
        };
        let id = match map.get(text) {
            Some(&l) if self.labels.holes[l as usize] == hole => l,
            Some(_) => {
                // A template with the same text and another hole (a field
                // named `[#]`): kept whole.
                let mut whole = String::from(&text[..hole as usize]);
                whole.push_str("[?]");
                whole.push_str(&text[hole as usize + 3..]);
                return self.intern(&whole, WHOLE);
            }
            None => {
                let l = self.labels.texts.len() as u32;
                self.labels.texts.push(text.into());
                self.labels.holes.push(hole);
                map.insert(text.into(), l);
                l
            }
        };
        self.last = Some(id);
        id
    }

    /// The label of an edge whose template path is `path`: `(text, index)`.
    fn label_of(&mut self, path: &LabelPath) -> (u32, u32) {
        let text = path.as_str();
        match path.indices() {
            [] => (self.intern(text, WHOLE), WHOLE),
            &[(hole, index)] if index < WHOLE as usize && !path.has_key() => {
                (self.intern(text, hole as u32), index as u32)
            }
            indices => {
                // Several indices (or one too big to store): written out now
                // (no user code: keys stay `[_]` until the labelled pass).
                let mut filled = std::mem::take(&mut self.filled);
                filled.clear();
                let mut from = 0;
                for &(hole, index) in indices {
                    filled.push_str(&text[from..hole]);
                    let _ = fmt::Write::write_fmt(&mut filled, format_args!("[{index}]"));
                    from = hole + 3;
                }
                filled.push_str(&text[from..]);
                let id = self.intern(&filled, WHOLE);
                self.filled = filled;
                (id, WHOLE)
            }
        }
    }
}

/// The first pass's edges and labels.
struct Edges {
    start: Vec<u32>,
    target: Vec<u32>,
    label: Vec<u32>,
    index: Vec<u32>,
    interner: Interner,
    /// Nodes with an edge through a map key, in order (their labels are
    /// made by a second, labelled trace).
    keyed: Vec<u32>,
}

/// Collects one object's edges in the first pass; `resolve` gives the node
/// of an edge's target (`None`: an object being dropped right now, not in
/// the snapshot).
struct CaptureSink<'a, R> {
    resolve: R,
    edges: &'a mut Edges,
    keyed: bool,
}

impl<R: FnMut(NonNull<Header>) -> Option<u32>> EdgeSink for CaptureSink<'_, R> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        // (Only a tracer without a path calls this; the capture's has one.)
        if let Some(t) = (self.resolve)(target) {
            let l = self.edges.interner.intern(path, WHOLE);
            self.edges.target.push(t);
            self.edges.label.push(l);
            self.edges.index.push(WHOLE);
        }
    }

    fn edge_path(&mut self, target: NonNull<Header>, path: &LabelPath) {
        let Some(t) = (self.resolve)(target) else {
            return;
        };
        self.keyed |= path.has_key();
        let (l, i) = self.edges.interner.label_of(path);
        self.edges.target.push(t);
        self.edges.label.push(l);
        self.edges.index.push(i);
    }
}

/// Relabels one node's edges in the second, labelled pass (keys formatted
/// with their `Debug`): the `k`-th edge to a node must be the first pass's
/// `k`-th, else (user code changed the value meanwhile) the rest keep their
/// first-pass labels.
struct KeySink<'a> {
    objects: &'a [ObjectInfo],
    targets: &'a [u32],
    label: &'a mut [u32],
    index: &'a mut [u32],
    interner: &'a mut Interner,
    k: usize,
}

impl EdgeSink for KeySink<'_> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        let Some(t) = find_in(self.objects, target.as_ptr() as usize) else {
            return;
        };
        if self.targets.get(self.k) != Some(&(t as u32)) {
            self.k = usize::MAX - 1; // out of step: stop here
            return;
        }
        self.label[self.k] = self.interner.intern(path, WHOLE);
        self.index[self.k] = WHOLE;
        self.k += 1;
    }
}

/// The node at address `addr` in `objects` (sorted by address).
fn find_in(objects: &[ObjectInfo], addr: usize) -> Option<usize> {
    objects.binary_search_by_key(&addr, |o| o.id.0).ok()
}

/// Clears `VISITED` on every node at the end of the first pass, on every
/// path (a panic in user `Trace` code included).
struct Numbered<'a>(&'a [NonNull<Header>]);

impl Drop for Numbered<'_> {
    fn drop(&mut self) {
        for h in self.0 {
            // SAFETY: nodes are live (strong > 0 when enumerated, and only
            // `Trace` code, which drops no handle, ran since).
            unsafe { h.as_ref() }.clear(VISITED);
        }
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

    /// The capture, in two passes.
    ///
    /// 1. Every object, in address order, with its counts and its edges,
    ///    traced with a *template* path ([`LabelPath::template`]): no key is
    ///    formatted, so no user code runs but `Trace::trace`, which by its
    ///    unsafe contract mutates nothing and drops no handle. Each edge's
    ///    target becomes a node number through the target's own header:
    ///    while the heap is [`Quiesced`] (no collection runs, the candidate
    ///    buffer is set aside, so no object is `BUFFERED`), each node gets
    ///    `VISITED` and its number in its `scratch` word; an edge to an
    ///    object without `VISITED` (one being dropped) is left out. No hash
    ///    lookup per edge. `VISITED` is cleared on every node and the buffer
    ///    restored before the pass returns (on a panic too). Inside a
    ///    collection or a dry run (user code there asking for a report),
    ///    whose objects may carry `VISITED`, the pass looks targets up in a
    ///    hash map of addresses instead, touching no header.
    /// 2. With every node's memory held ([`HoldMemory`]) and each object
    ///    pinned in turn: `heap_size` (user code), and, for the objects with
    ///    an edge through a map key, a labelled trace that formats the keys
    ///    (user code, which may drop handles).
    pub(crate) fn capture_from(heap: &Heap) -> HeapGraph {
        let mut headers: Vec<NonNull<Header>> = heap
            .all_objects()
            .into_iter()
            // SAFETY: enumerated objects are allocated.
            .filter(|h| unsafe { h.as_ref() }.strong.get() > 0)
            .collect();
        // Chunks are sorted runs: merging them is cheap.
        headers.sort();
        let mut objects = Vec::with_capacity(headers.len());
        let mut edges = Edges {
            start: Vec::with_capacity(headers.len() + 1),
            target: Vec::new(),
            label: Vec::new(),
            index: Vec::new(),
            interner: Interner::default(),
            keyed: Vec::new(),
        };
        match Quiesced::start(heap) {
            Some(quiesced) => {
                // Header invariants this relies on (see `Header`): with the
                // heap quiesced no object is `BUFFERED` and none carries
                // `VISITED` (only a collection sets it, and none runs), so
                // every scratch word is free; only nodes get `VISITED` here,
                // and `Numbered` (declared after `quiesced`, so dropped
                // first) clears it before the buffer is restored.
                let numbered = Numbered(&headers);
                for (i, h) in headers.iter().enumerate() {
                    // SAFETY: live (enumerated with strong > 0, nothing freed
                    // since).
                    let h = unsafe { h.as_ref() };
                    h.scratch.set(i as u32);
                    h.set(VISITED);
                }
                let resolve = |target: NonNull<Header>| {
                    // SAFETY: the target of an edge is an object a traced,
                    // intact value holds a `Gc` to: its header is readable.
                    let t = unsafe { target.as_ref() };
                    t.has(VISITED).then(|| t.scratch.get())
                };
                first_pass(heap, &headers, &mut objects, &mut edges, resolve);
                drop(numbered);
                drop(quiesced);
            }
            None => {
                let mut index = AddrMap::default();
                index.reserve(headers.len());
                for (i, h) in headers.iter().enumerate() {
                    index.insert(h.as_ptr() as usize, i as u32);
                }
                let resolve = |t: NonNull<Header>| index.get(&(t.as_ptr() as usize)).copied();
                first_pass(heap, &headers, &mut objects, &mut edges, resolve);
            }
        }
        edges.start.push(edges.target.len() as u32);
        second_pass(heap, &headers, &mut objects, &mut edges);
        drop(headers);
        let stamp = crate::report::ids::HeapStamp::of(heap);
        let (in_start, in_edge) = reverse_edges(objects.len(), &edges.target);
        HeapGraph {
            objects,
            out_start: edges.start,
            out_target: edges.target,
            out_label: edges.label,
            out_index: edges.index,
            in_start,
            in_edge,
            labels: edges.interner.labels,
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
        find_in(&self.objects, id.0)
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
        self.labels.get(self.out_label[edge], self.out_index[edge])
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

/// The first pass of [`HeapGraph::capture_from`]: counts, flags and edges of
/// every node (runs no user code but `Trace::trace`).
fn first_pass(
    heap: &Heap,
    headers: &[NonNull<Header>],
    objects: &mut Vec<ObjectInfo>,
    edges: &mut Edges,
    resolve: impl FnMut(NonNull<Header>) -> Option<u32>,
) {
    let mut path = LabelPath::template();
    let mut sink = CaptureSink {
        resolve,
        edges,
        keyed: false,
    };
    for (n, &header) in headers.iter().enumerate() {
        sink.edges.start.push(sink.edges.target.len() as u32);
        // SAFETY: live (enumerated with strong > 0; only `Trace` code, which
        // drops no handle, ran since).
        let h = unsafe { header.as_ref() };
        let entry = heap.type_of(h);
        let strong = h.strong.get() as usize;
        // Minus the implicit weak while the value is there.
        let weak = (h.weak.get() as usize).saturating_sub(usize::from(strong > 0));
        let dead = !h.value_alive();
        // A value lent out by a `GcMut` may not be read: its edges are
        // unknown, like those of a mutably borrowed `RefCell`.
        let mut untraceable = !dead && !h.value_readable();
        if h.value_readable() && !h.has(ACYCLIC) {
            path.clear();
            sink.keyed = false;
            let mut tracer = Tracer::new(&mut sink, Some(&mut path));
            // SAFETY: the value is intact and not lent out, and stays so:
            // no user code runs during this pass but `Trace::trace`, which
            // mutates nothing and drops no handle.
            unsafe { (entry.info.trace)(header, &mut tracer) };
            untraceable = !tracer.is_complete();
            if sink.keyed {
                sink.edges.keyed.push(n as u32);
            }
        }
        objects.push(ObjectInfo {
            id: ObjectId(header.as_ptr() as usize),
            type_name: (entry.info.type_name)(),
            size: entry.info.alloc_size,
            strong,
            weak,
            dead,
            untraceable,
        });
    }
}

/// The second pass of [`HeapGraph::capture_from`]: `heap_size`, and the
/// labels of edges through map keys (user code, which may drop handles).
fn second_pass(
    heap: &Heap,
    headers: &[NonNull<Header>],
    objects: &mut [ObjectInfo],
    edges: &mut Edges,
) {
    // A weak count on every object keeps each header readable to the end,
    // and a strong one on the object being measured or traced keeps its
    // value from being dropped under us.
    let _hold = HoldMemory::new(heap, headers);
    let mut keyed = edges.keyed.iter().copied().peekable();
    let mut path = LabelPath::new(false);
    // Nodes whose value went (user code dropped their last handle) before
    // their turn: their first-pass edges are gone with it.
    let mut died = false;
    for (n, &header) in headers.iter().enumerate() {
        // SAFETY: `_hold` keeps the header readable.
        let h = unsafe { header.as_ref() };
        let entry = heap.type_of(h);
        let is_keyed = keyed.next_if_eq(&(n as u32)).is_some();
        // The counts as at the node's turn (as the first pass read them,
        // unless user code changed them since).
        let info = &mut objects[n];
        info.strong = h.strong.get() as usize;
        // Minus our hold, and the implicit weak while the value is there.
        info.weak = (h.weak.get() as usize).saturating_sub(1 + usize::from(info.strong > 0));
        // SAFETY: readable (see above).
        let Some(pin) = (unsafe { ErasedGc::new(heap, header) }) else {
            if !h.value_alive() && !info.dead {
                info.dead = true;
                info.untraceable = false;
                died |= edges.start[n] != edges.start[n + 1];
            } else if !info.dead {
                // Lent out by a `GcMut` since the first pass.
                info.untraceable = true;
            }
            continue;
        };
        // SAFETY: the value is intact and pinned.
        objects[n].size += unsafe { (entry.info.heap_size)(header) };
        if is_keyed && !h.has(ACYCLIC) {
            let range = edges.start[n] as usize..edges.start[n + 1] as usize;
            let mut sink = KeySink {
                objects,
                targets: &edges.target[range.clone()],
                label: &mut edges.label[range.clone()],
                index: &mut edges.index[range],
                interner: &mut edges.interner,
                k: 0,
            };
            path.clear();
            let mut tracer = Tracer::new(&mut sink, Some(&mut path));
            // SAFETY: as above.
            unsafe { (entry.info.trace)(header, &mut tracer) };
        }
        drop(pin);
    }
    if died {
        drop_edges_of_dead(objects, edges);
    }
}

/// Takes the edges of dead nodes out of `edges` (rare: user code in the
/// second pass dropped a value).
fn drop_edges_of_dead(objects: &[ObjectInfo], edges: &mut Edges) {
    let mut w = 0;
    let mut from = edges.start[0] as usize;
    for (n, o) in objects.iter().enumerate() {
        let end = edges.start[n + 1] as usize;
        edges.start[n] = w as u32;
        if !o.dead {
            for e in from..end {
                edges.target[w] = edges.target[e];
                edges.label[w] = edges.label[e];
                edges.index[w] = edges.index[e];
                w += 1;
            }
        }
        from = end;
    }
    edges.start[objects.len()] = w as u32;
    edges.target.truncate(w);
    edges.label.truncate(w);
    edges.index.truncate(w);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Finalize, Gc, Trace};
    use std::cell::RefCell;

    #[derive(Trace)]
    struct Shapes {
        one: Gc<u8>,
        list: Vec<Gc<u8>>,
        nested: Vec<Vec<Gc<u8>>>,
        by_key: std::collections::BTreeMap<&'static str, Gc<u8>>,
    }

    fn labels_of(g: &HeapGraph, node: usize) -> Vec<String> {
        g.referents(node).map(|(_, l)| l.to_string()).collect()
    }

    fn shapes() -> Gc<Shapes> {
        Gc::new(Shapes {
            one: Gc::new(0),
            list: vec![Gc::new(1), Gc::new(2), Gc::new(3)],
            nested: vec![vec![], vec![Gc::new(4)]],
            by_key: [("a", Gc::new(5))].into(),
        })
    }

    const EXPECTED: [&str; 6] = [
        ".one",
        ".list[0]",
        ".list[1]",
        ".list[2]",
        ".nested[1][0]",
        ".by_key[\"a\"]",
    ];

    #[test]
    fn labels_from_templates_indices_and_keys() {
        let s = shapes();
        let g = HeapGraph::capture();
        let n = g.find(ObjectId::of(&s)).unwrap();
        assert_eq!(labels_of(&g, n), EXPECTED);
        // Asked twice: the same (cached) text.
        let first: Vec<*const u8> = g.referents(n).map(|(_, l)| l.as_ptr()).collect();
        let again: Vec<*const u8> = g.referents(n).map(|(_, l)| l.as_ptr()).collect();
        assert_eq!(first, again);
        let k = g.find(ObjectId::of(&s.list[2])).unwrap();
        assert_eq!(g.referrers(k).collect::<Vec<_>>(), [(n, ".list[2]")]);
        assert_eq!(g.outside_count(k), 0);
        // No flag is left on any object, and the candidate buffer is back.
        let heap = heap();
        for h in heap.all_objects() {
            // SAFETY: enumerated objects are allocated.
            assert!(!unsafe { h.as_ref() }.has(VISITED));
        }
    }

    /// A cycle whose finalizer captures the graph from inside the
    /// collection: the capture falls back to its address map.
    #[derive(Trace)]
    #[trace(finalize)]
    struct Spy {
        me: RefCell<Option<Gc<Spy>>>,
    }

    thread_local! {
        static SEEN: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    impl Finalize for Spy {
        fn finalize(&self) {
            let g = HeapGraph::capture();
            let kept = KEPT.with(|k| ObjectId::of(k.borrow().as_ref().unwrap()));
            let n = g.find(kept).unwrap();
            SEEN.with(|s| *s.borrow_mut() = Some(labels_of(&g, n)));
        }
    }

    thread_local! {
        static KEPT: RefCell<Option<Gc<Shapes>>> = const { RefCell::new(None) };
    }

    #[test]
    fn a_capture_inside_a_collection_uses_the_address_map() {
        KEPT.with(|k| *k.borrow_mut() = Some(shapes()));
        let spy = Gc::new(Spy {
            me: RefCell::new(None),
        });
        *spy.me.borrow_mut() = Some(spy.clone());
        drop(spy);
        assert_eq!(crate::collect(), 1);
        assert_eq!(SEEN.with(|s| s.borrow_mut().take()).unwrap(), EXPECTED);
        KEPT.with(|k| k.borrow_mut().take());
    }
}
