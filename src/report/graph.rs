//! A read-only snapshot of the object graph: every object with its type,
//! size and counts, every edge with its label. It holds no handles, so taking
//! one keeps nothing alive, and it leaves every header as it found it (the
//! capture numbers nodes through a flag and the scratch word for a moment,
//! and clears them before it returns, on a panic too).
//!
//! The graph queries of the reporter (referrers, outside holders, the chain
//! that keeps an object alive, DOT pictures, dominators, DevTools export) all
//! work on a `HeapGraph`.
//!
//! One builder, three users. `nodes` lists the objects of a graph (the
//! whole heap in address order, or the members a dry run hands over, in
//! its order), numbers them (through the headers' scratch words while the
//! heap is quiesced, else through a hash map of addresses: a dry run's
//! headers carry the collector's flags), and holds their memory while user
//! code runs. `capture::build` turns them into a compressed-row graph
//! with a label per edge, templates for the `HeapGraph`, folded `[_]` for
//! the garbage analysis ([`collect_dry_run`](crate::collect_dry_run)),
//! which keeps only its edge kinds, cycles and suggestions; the pin and
//! `heap_size` discipline lives there once. `PlainGraph` (`why_alive`)
//! shares the nodes and their numbering but not the builder's passes: it
//! needs neither sizes nor labels, and its search is measured per edge.
//! So a change to how objects are listed, numbered, held or measured is
//! made once, and the three cannot drift apart.

use std::collections::VecDeque;
use std::fmt;
use std::sync::OnceLock;

use super::big_vec::BigVec;
use crate::runtime::query;

mod capture;
mod columns;
mod labels;
mod nodes;
mod plain;

use capture::find_in;
pub(crate) use capture::Built;
use columns::{Columns, DEAD, TYPE_MASK, UNTRACEABLE_NODE};
use labels::{EdgeLabels, Labels};
pub(crate) use plain::PlainGraph;

/// The identity of a live object: its address. It stays valid while the
/// object lives; once the object is freed the address may be reused.
///
/// ```
/// let g = rcycle::Gc::new(1u8);
/// assert_eq!(rcycle::report::ObjectId::of(&g), rcycle::report::ObjectId::of(&g.clone()));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ObjectId(pub(crate) usize);

impl ObjectId {
    /// The identity of the object `gc` points to.
    ///
    /// ```
    /// let (a, b) = (rcycle::Gc::new(1u8), rcycle::Gc::new(1u8));
    /// assert_ne!(rcycle::report::ObjectId::of(&a), rcycle::report::ObjectId::of(&b));
    /// ```
    pub fn of<T: ?Sized>(gc: &crate::Gc<T>) -> ObjectId {
        ObjectId(gc.header_ptr().as_ptr() as usize)
    }

    /// The address, as a number (for display).
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// assert_ne!(rcycle::report::ObjectId::of(&g).addr(), 0);
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
/// let graph = rcycle::report::HeapGraph::capture();
/// let info = graph.object(graph.find(rcycle::report::ObjectId::of(&g)).unwrap());
/// assert_eq!(info.type_name, "alloc::string::String");
/// assert_eq!(info.size, 16 + 24 + 100); // header + String + its buffer
/// assert_eq!(info.strong, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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

/// `index` of an edge whose label is a whole text (not a template).
const WHOLE: u32 = u32::MAX;

/// A snapshot of this thread's object graph.
///
/// Nodes are numbered `0..len()` in address order; [`object`](Self::object)
/// describes one, and [`id`](Self::id), [`type_name`](Self::type_name),
/// [`size`](Self::size) and the like read one field without building an
/// [`ObjectInfo`]. Edges carry the label path from the source value to the
/// `Gc` field, like `.children[3]` or `.expected[9394860]`.
///
/// ```
/// use rcycle::{Gc, Trace};
/// use rcycle::report::{HeapGraph, ObjectId};
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
    /// The objects, as columns indexed by node.
    nodes: Columns,
    /// Out-edges of node `i`: `out_target[out_start[i]..out_start[i + 1]]`.
    out_start: BigVec<u32>,
    out_target: BigVec<u32>,
    /// Each out-edge's label.
    out_label: EdgeLabels,
    /// In-edges (built on the first [`referrers`](Self::referrers) call).
    in_edges: OnceLock<InEdges>,
    /// Every [`ObjectInfo`] (built on the first [`objects`](Self::objects)
    /// call).
    objects: OnceLock<Vec<ObjectInfo>>,
    labels: Labels,
    /// The heap at the end of the capture (for the DevTools export's ids).
    pub(crate) stamp: crate::report::ids::HeapStamp,
}

/// In-edge lists: the in-edges of node `i` are the out-edges
/// `edge[start[i]..start[i + 1]]`.
struct InEdges {
    start: BigVec<u32>,
    edge: BigVec<u32>,
}

impl HeapGraph {
    /// Takes a snapshot of this thread's objects and edges.
    ///
    /// Objects whose last handle is gone but whose value is still being
    /// dropped are not included. Runs the `Trace` impls of every object (and
    /// nothing else): it does not collect, and it keeps nothing alive.
    ///
    /// ```
    /// let before = rcycle::report::HeapGraph::capture().len();
    /// let g = rcycle::Gc::new(1u8);
    /// assert_eq!(rcycle::report::HeapGraph::capture().len(), before + 1);
    /// # drop(g);
    /// ```
    pub fn capture() -> HeapGraph {
        Self::capture_from(&query().heap)
    }

    /// The number of objects.
    ///
    /// ```
    /// assert!(rcycle::report::HeapGraph::capture().len() < usize::MAX);
    /// ```
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the heap had no objects.
    ///
    /// ```
    /// let g = rcycle::report::HeapGraph::capture();
    /// assert_eq!(g.is_empty(), g.len() == 0);
    /// ```
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 0
    }

    /// Every object, indexed by node number.
    ///
    /// The graph keeps its objects in compact columns; the first call builds
    /// this list (56 bytes an object on 64-bit targets) and keeps it with
    /// the graph. To read a few fields, [`object`](Self::object) or the
    /// accessors ([`type_name`](Self::type_name), [`size`](Self::size)...)
    /// cost nothing.
    ///
    /// ```
    /// let g = rcycle::Gc::new(5u64);
    /// let graph = rcycle::report::HeapGraph::capture();
    /// assert!(graph.objects().iter().any(|o| o.type_name == "u64" && o.size == 24));
    /// # drop(g);
    /// ```
    pub fn objects(&self) -> &[ObjectInfo] {
        self.objects
            .get_or_init(|| (0..self.len()).map(|n| self.object(n)).collect())
    }

    /// What the graph knows about `node`.
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let g = Gc::new(5u64);
    /// let graph = HeapGraph::capture();
    /// let info = graph.object(graph.find(ObjectId::of(&g)).unwrap());
    /// assert_eq!((info.type_name, info.size, info.strong, info.weak), ("u64", 24, 1, 0));
    /// ```
    pub fn object(&self, node: usize) -> ObjectInfo {
        let (strong, weak) = self.nodes.counts(node);
        ObjectInfo {
            id: self.id(node),
            type_name: self.type_name(node),
            size: self.size(node),
            strong: strong as usize,
            weak: weak as usize,
            dead: self.is_dead(node),
            untraceable: self.is_untraceable(node),
        }
    }

    /// The identity of `node` ([`ObjectInfo::id`]).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let g = Gc::new(5u64);
    /// let graph = HeapGraph::capture();
    /// let node = graph.find(ObjectId::of(&g)).unwrap();
    /// assert_eq!(graph.id(node), ObjectId::of(&g));
    /// ```
    pub fn id(&self, node: usize) -> ObjectId {
        ObjectId(self.nodes.addr[node])
    }

    /// The type name of `node`'s value ([`ObjectInfo::type_name`]).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let g = Gc::new(5u64);
    /// let graph = HeapGraph::capture();
    /// assert_eq!(graph.type_name(graph.find(ObjectId::of(&g)).unwrap()), "u64");
    /// ```
    pub fn type_name(&self, node: usize) -> &'static str {
        self.nodes.type_name(node)
    }

    /// The bytes `node` takes ([`ObjectInfo::size`]).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let g = Gc::new(String::with_capacity(100));
    /// let graph = HeapGraph::capture();
    /// assert_eq!(graph.size(graph.find(ObjectId::of(&g)).unwrap()), 16 + 24 + 100);
    /// ```
    pub fn size(&self, node: usize) -> usize {
        self.nodes.size(node)
    }

    /// `Gc` handles to `node` ([`ObjectInfo::strong`]).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let g = Gc::new(5u64);
    /// let also = g.clone();
    /// let graph = HeapGraph::capture();
    /// assert_eq!(graph.strong(graph.find(ObjectId::of(&g)).unwrap()), 2);
    /// # drop(also);
    /// ```
    pub fn strong(&self, node: usize) -> usize {
        self.nodes.counts(node).0 as usize
    }

    /// `WeakGc` handles to `node` ([`ObjectInfo::weak`]).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let g = Gc::new(5u64);
    /// let w = Gc::downgrade(&g);
    /// let graph = HeapGraph::capture();
    /// assert_eq!(graph.weak(graph.find(ObjectId::of(&g)).unwrap()), 1);
    /// # drop(w);
    /// ```
    pub fn weak(&self, node: usize) -> usize {
        self.nodes.counts(node).1 as usize
    }

    /// Whether `node` is a dead box ([`ObjectInfo::dead`]).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let g = Gc::new(5u64);
    /// let graph = HeapGraph::capture();
    /// assert!(!graph.is_dead(graph.find(ObjectId::of(&g)).unwrap()));
    /// ```
    pub fn is_dead(&self, node: usize) -> bool {
        self.nodes.has(node, DEAD)
    }

    /// Whether `node`'s edges are unknown ([`ObjectInfo::untraceable`]).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// use std::cell::RefCell;
    /// let g = Gc::new(RefCell::new(Vec::<Gc<u8>>::new()));
    /// let borrowed = g.borrow_mut();
    /// let graph = HeapGraph::capture();
    /// assert!(graph.is_untraceable(graph.find(ObjectId::of(&g)).unwrap()));
    /// # drop(borrowed);
    /// ```
    pub fn is_untraceable(&self, node: usize) -> bool {
        self.nodes.has(node, UNTRACEABLE_NODE)
    }

    /// A number for `node`'s type name and deadness, below
    /// [`kind_keys`](Self::kind_keys): equal for nodes of one type that are
    /// both dead or both not (for grouping without hashing names).
    pub(crate) fn kind_key(&self, node: usize) -> usize {
        let kind = self.nodes.kind[node];
        ((kind & TYPE_MASK) as usize) << 1 | usize::from(kind & DEAD != 0)
    }

    /// The bound on [`kind_key`](Self::kind_key).
    pub(crate) fn kind_keys(&self) -> usize {
        self.nodes.type_names.len() << 1
    }

    /// The node number of an object, if it was in the snapshot.
    ///
    /// ```
    /// let g = rcycle::Gc::new(5u64);
    /// assert!(rcycle::report::HeapGraph::capture().find(rcycle::report::ObjectId::of(&g)).is_some());
    /// ```
    pub fn find(&self, id: ObjectId) -> Option<usize> {
        find_in(&self.nodes.addr, id.0)
    }

    /// The objects `node` refers to, with the label of each edge.
    ///
    /// ```
    /// # use rcycle::Gc;
    /// # use rcycle::report::{HeapGraph, ObjectId};
    /// let inner = Gc::new(1u8);
    /// let outer = Gc::new(Some(inner.clone()));
    /// let g = HeapGraph::capture();
    /// let o = g.find(ObjectId::of(&outer)).unwrap();
    /// assert_eq!(g.referents(o).count(), 1);
    /// ```
    pub fn referents(&self, node: usize) -> impl Iterator<Item = (usize, &str)> + '_ {
        let first = self.out_start[node] as usize;
        let range = first..self.out_start[node + 1] as usize;
        range.map(move |e| (self.out_target[e] as usize, self.edge_label(first, e)))
    }

    /// The objects that refer to `node`, with the label of each edge.
    ///
    /// The first call builds the graph's in-edge lists (4 bytes an object
    /// and 4 an edge), kept with the graph.
    ///
    /// ```
    /// # use rcycle::Gc;
    /// # use rcycle::report::{HeapGraph, ObjectId};
    /// let inner = Gc::new(1u8);
    /// let outer = Gc::new(vec![inner.clone()]);
    /// let g = HeapGraph::capture();
    /// let i = g.find(ObjectId::of(&inner)).unwrap();
    /// assert_eq!(g.referrers(i).map(|(_, l)| l).collect::<Vec<_>>(), ["[0]"]);
    /// ```
    pub fn referrers(&self, node: usize) -> impl Iterator<Item = (usize, &str)> + '_ {
        let in_edges = self.in_edges();
        let range = in_edges.start[node] as usize..in_edges.start[node + 1] as usize;
        in_edges.edge[range].iter().map(move |&e| {
            let e = e as usize;
            let source = self.source_of(e);
            (source, self.edge_label(self.out_start[source] as usize, e))
        })
    }

    /// Handles to `node` that the heap does not explain: its strong count
    /// minus the edges from other objects. Those handles live on the stack,
    /// in a static, or in something that is not traced.
    ///
    /// ```
    /// # use rcycle::Gc;
    /// # use rcycle::report::{HeapGraph, ObjectId};
    /// let inner = Gc::new(1u8);
    /// let outer = Gc::new(vec![inner.clone()]);
    /// let g = HeapGraph::capture();
    /// assert_eq!(g.outside_count(g.find(ObjectId::of(&inner)).unwrap()), 1);
    /// ```
    pub fn outside_count(&self, node: usize) -> usize {
        self.nodes.outside[node] as usize
    }

    /// The objects held from outside the heap ([`outside_count`] above 0), or
    /// whose edges are unknown: the roots of everything else that is alive.
    ///
    /// [`outside_count`]: Self::outside_count
    ///
    /// ```
    /// # use rcycle::Gc;
    /// # use rcycle::report::{HeapGraph, ObjectId};
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
            .filter(|&n| self.outside_count(n) > 0 || self.is_untraceable(n))
            .collect()
    }

    /// The shortest chain of edges from an outside holder to `target`, as
    /// node numbers with the label of the edge that reaches each (the first
    /// has no label). `ignore_handles` outside handles of `target` itself are
    /// not counted (the handle the caller used to ask). `None` if nothing
    /// holds it (it is only reachable from garbage).
    ///
    /// ```
    /// # use rcycle::Gc;
    /// # use rcycle::report::{HeapGraph, ObjectId};
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
            if outside > 0 || self.is_untraceable(n) {
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
            let source = self.source_of(e);
            chain.push((n, self.edge_label(self.out_start[source] as usize, e)));
            n = source;
        }
        chain.push((n, ""));
        chain.reverse();
        Some(chain)
    }

    /// The breadth-first tree of chains from the outside holders: for each
    /// node, the out-edge that first reached it, or
    /// [`HolderTree::HOLDER`](super::suspects::HolderTree::HOLDER) for an
    /// outside holder, or [`HolderTree::UNREACHED`](super::suspects::HolderTree::UNREACHED).
    /// The search is [`shortest_chain`](Self::shortest_chain)'s (holders in
    /// node order, edges in trace order, first parent wins), run to the end:
    /// every node's chain is the one `shortest_chain` finds.
    pub(crate) fn holder_tree(&self) -> Vec<u32> {
        use super::suspects::HolderTree;
        let mut parent = vec![HolderTree::UNREACHED; self.len()];
        let mut queue = VecDeque::new();
        for (n, p) in parent.iter_mut().enumerate() {
            if self.outside_count(n) > 0 || self.is_untraceable(n) {
                *p = HolderTree::HOLDER;
                queue.push_back(n);
            }
        }
        assert!(
            self.out_target.len() < HolderTree::HOLDER as usize,
            "too many edges for a holder tree"
        );
        while let Some(n) = queue.pop_front() {
            for e in self.out_start[n] as usize..self.out_start[n + 1] as usize {
                let t = self.out_target[e] as usize;
                if parent[t] == HolderTree::UNREACHED {
                    parent[t] = e as u32;
                    queue.push_back(t);
                }
            }
        }
        parent
    }

    /// The label of out-edge `edge` (a number of the out-edge arrays).
    pub(crate) fn edge_text(&self, edge: usize) -> &str {
        self.edge_label(self.out_start[self.source_of(edge)] as usize, edge)
    }

    /// The node out-edge `edge` starts from.
    pub(crate) fn edge_source(&self, edge: usize) -> usize {
        self.source_of(edge)
    }

    /// The out-edges of `node` as `(target, text, index)`: the label's
    /// text number and index, unformatted (see
    /// [`write_label`](Self::write_label)). For exports that write every
    /// edge: [`referents`](Self::referents) keeps each label it formats.
    pub(crate) fn referent_codes(
        &self,
        node: usize,
    ) -> impl Iterator<Item = (usize, u32, u32)> + '_ {
        let first = self.out_start[node] as usize;
        let range = first..self.out_start[node + 1] as usize;
        range.map(move |e| {
            let (text, index) = self.out_label.get(e, e - first);
            (self.out_target[e] as usize, text, index)
        })
    }

    /// The out-edges unlabelled, as `(start, target)`: node `i`'s targets
    /// are `target[start[i]..start[i + 1]]` (`start` has `len() + 1`
    /// entries).
    pub(crate) fn out_edges(&self) -> (&[u32], &[u32]) {
        (&self.out_start, &self.out_target)
    }

    /// The number of out-edges of `node`.
    pub(crate) fn out_degree(&self, node: usize) -> usize {
        (self.out_start[node + 1] - self.out_start[node]) as usize
    }

    /// Whether label `(text, index)` of [`referent_codes`](Self::referent_codes)
    /// is the same for every index (a whole label).
    pub(crate) fn label_is_whole(index: u32) -> bool {
        index == WHOLE
    }

    /// Writes label `(text, index)` of [`referent_codes`](Self::referent_codes)
    /// into `out` (cleared first), as [`referents`](Self::referents) gives it.
    pub(crate) fn write_label(&self, text: u32, index: u32, out: &mut String) {
        out.clear();
        let t = &self.labels.texts[text as usize];
        if index == WHOLE {
            out.push_str(t);
        } else {
            let hole = self.labels.holes[text as usize] as usize;
            out.push_str(&t[..hole]);
            let _ = fmt::Write::write_fmt(out, format_args!("[{index}]"));
            out.push_str(&t[hole + 3..]);
        }
    }

    /// The label of out-edge `edge`, whose source's first edge is `first`.
    fn edge_label(&self, first: usize, edge: usize) -> &str {
        let (text, index) = self.out_label.get(edge, edge - first);
        self.labels.get(text, index)
    }

    /// The in-edge lists, built on first use.
    fn in_edges(&self) -> &InEdges {
        self.in_edges
            .get_or_init(|| reverse_edges(self.len(), &self.out_target))
    }

    /// The source node of out-edge `edge` (binary search over `out_start`).
    fn source_of(&self, edge: usize) -> usize {
        self.out_start.partition_point(|&s| s as usize <= edge) - 1
    }

    /// All edges as `(source, target, label)`.
    ///
    /// ```
    /// # use rcycle::Gc;
    /// # use rcycle::report::HeapGraph;
    /// let a = Gc::new(vec![Gc::new(1u8)]);
    /// assert!(HeapGraph::capture().edges().any(|(_, _, l)| l == "[0]"));
    /// ```
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize, &str)> + '_ {
        (0..self.len()).flat_map(move |n| self.referents(n).map(move |(t, l)| (n, t, l)))
    }
}

/// In-edge lists (positions in the out-edge arrays), by counting sort.
fn reverse_edges(nodes: usize, out_target: &[u32]) -> InEdges {
    let mut start = BigVec::filled(0u32, nodes + 1);
    for &t in out_target {
        start[t as usize + 1] += 1;
    }
    for i in 0..nodes {
        start[i + 1] += start[i];
    }
    let mut fill = BigVec::from_slice(&start[..nodes]);
    let mut edge = BigVec::filled(0u32, out_target.len());
    for (e, &t) in out_target.iter().enumerate() {
        edge[fill[t as usize] as usize] = e as u32;
        fill[t as usize] += 1;
    }
    InEdges { start, edge }
}

#[cfg(test)]
mod tests;
