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
use std::sync::OnceLock;

use crate::collect::{HoldMemory, Quiesced};
use crate::gc::ErasedGc;
use crate::header::{Header, TypeEntry, ACYCLIC, MAX_TYPE_INDEX, VISITED};
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
/// let info = graph.object(graph.find(rcycle::ObjectId::of(&g)).unwrap());
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
    /// The objects, as columns indexed by node.
    nodes: Columns,
    /// Out-edges of node `i`: `out_target[out_start[i]..out_start[i + 1]]`.
    out_start: Vec<u32>,
    out_target: Vec<u32>,
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
    start: Vec<u32>,
    edge: Vec<u32>,
}

/// `kind` bit: the object is a dead box.
const DEAD: u32 = 1 << 31;
/// `kind` bit: the object's edges are unknown.
const UNTRACEABLE_NODE: u32 = 1 << 30;
/// `kind` bits of the type index (the heap's, [`MAX_TYPE_INDEX`] at most).
const TYPE_MASK: u32 = UNTRACEABLE_NODE - 1;
const _: () = assert!(MAX_TYPE_INDEX <= TYPE_MASK);
/// `size`: the size is in `big_size`.
const BIG_SIZE: u32 = u32::MAX;
/// `counts`: strong in the low [`STRONG_BITS`], weak in the bits above,
/// or [`BIG_COUNTS`] and both in `big_counts`.
const STRONG_BITS: u32 = 20;
const STRONG_MASK: u32 = (1 << STRONG_BITS) - 1;
const WEAK_MAX: u32 = (1 << (31 - STRONG_BITS)) - 1;
const BIG_COUNTS: u32 = 1 << 31;

/// The objects of a graph, one column per field (about 24 bytes an object
/// where `ObjectInfo` takes 56), sorted by address.
#[derive(Default)]
struct Columns {
    /// Addresses (ids), ascending.
    addr: Vec<usize>,
    /// The heap's type index, with [`DEAD`] and [`UNTRACEABLE_NODE`].
    kind: Vec<u32>,
    /// Sizes; [`BIG_SIZE`] for the rare one that needs more bits.
    size: Vec<u32>,
    big_size: HashMap<u32, usize>,
    /// Strong and weak counts, packed; [`BIG_COUNTS`]: in `big_counts`.
    counts: Vec<u32>,
    big_counts: HashMap<u32, (u32, u32)>,
    /// Strong count minus the edges from other objects.
    outside: Vec<u32>,
    /// Type names by type index (`""`: no object of that type).
    type_names: Vec<&'static str>,
}

impl Columns {
    fn with_capacity(n: usize) -> Columns {
        Columns {
            addr: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            size: Vec::with_capacity(n),
            counts: Vec::with_capacity(n),
            ..Columns::default()
        }
    }

    fn len(&self) -> usize {
        self.addr.len()
    }

    /// Adds the next node (in address order).
    fn push(&mut self, addr: usize, entry: &TypeEntry, type_index: u32, size: usize) {
        let n = self.len();
        self.addr.push(addr);
        let t = type_index as usize;
        if t >= self.type_names.len() {
            self.type_names.resize(t + 1, "");
        }
        if self.type_names[t].is_empty() {
            self.type_names[t] = (entry.info.type_name)();
        }
        self.kind.push(type_index);
        self.size.push(0);
        self.counts.push(0);
        self.set_size(n, size);
    }

    fn node(n: usize) -> u32 {
        // (Node numbers fit: `HeapGraph::capture_from` checks.)
        n as u32
    }

    fn size(&self, n: usize) -> usize {
        match self.size[n] {
            BIG_SIZE => self.big_size[&Self::node(n)],
            s => s as usize,
        }
    }

    fn set_size(&mut self, n: usize, size: usize) {
        if self.size[n] == BIG_SIZE {
            self.big_size.remove(&Self::node(n));
        }
        self.size[n] = match u32::try_from(size) {
            Ok(s) if s != BIG_SIZE => s,
            _ => {
                self.big_size.insert(Self::node(n), size);
                BIG_SIZE
            }
        };
    }

    /// `(strong, weak)`.
    fn counts(&self, n: usize) -> (u32, u32) {
        match self.counts[n] {
            c if c & BIG_COUNTS != 0 => self.big_counts[&Self::node(n)],
            c => (c & STRONG_MASK, c >> STRONG_BITS),
        }
    }

    fn set_counts(&mut self, n: usize, strong: u32, weak: u32) {
        if self.counts[n] & BIG_COUNTS != 0 {
            self.big_counts.remove(&Self::node(n));
        }
        self.counts[n] = if strong <= STRONG_MASK && weak <= WEAK_MAX {
            strong | weak << STRONG_BITS
        } else {
            self.big_counts.insert(Self::node(n), (strong, weak));
            BIG_COUNTS
        };
    }

    fn has(&self, n: usize, flag: u32) -> bool {
        self.kind[n] & flag != 0
    }

    fn set_flag(&mut self, n: usize, flag: u32, on: bool) {
        if on {
            self.kind[n] |= flag;
        } else {
            self.kind[n] &= !flag;
        }
    }

    fn type_name(&self, n: usize) -> &'static str {
        self.type_names[(self.kind[n] & TYPE_MASK) as usize]
    }

    /// Fills `outside` from the strong counts and the edge targets.
    fn count_outside(&mut self, out_target: &[u32]) {
        let mut outside = vec![0u32; self.len()];
        for &t in out_target {
            outside[t as usize] += 1;
        }
        for (n, o) in outside.iter_mut().enumerate() {
            *o = self.counts(n).0.saturating_sub(*o);
        }
        self.outside = outside;
    }
}

/// `EdgeLabels` code tags (the top two bits): a template label, whose
/// `[#]` index is stored as its distance from the edge's position among
/// its source's edges (a `Vec`'s elements are usually its edges in order:
/// `.kids[0]`, `.kids[1]`...).
const TEMPLATE_TEXT_SHIFT: u32 = 20;
const TEMPLATE_TEXTS: u32 = 1 << (31 - TEMPLATE_TEXT_SHIFT);
const DELTA_MASK: u32 = (1 << TEMPLATE_TEXT_SHIFT) - 1;
const DELTA_BIAS: i64 = 1 << (TEMPLATE_TEXT_SHIFT - 1);
/// Tag: a whole label, the text in the low 30 bits.
const WHOLE_TAG: u32 = 0b10 << 30;
/// Tag: the `(text, index)` pair at the low 30 bits' position in `wide`.
const WIDE_TAG: u32 = 0b11 << 30;
const LOW_30: u32 = (1 << 30) - 1;

/// The labels of a graph's edges, 4 bytes an edge: a text of [`Labels`]
/// and the index written into its `[#]` ([`WHOLE`]: none), packed into
/// one code, or kept whole in `wide` when they do not fit.
#[derive(Default)]
struct EdgeLabels {
    code: Vec<u32>,
    wide: Vec<(u32, u32)>,
}

impl EdgeLabels {
    /// The code of label `(text, index)` for the edge at position `pos`
    /// among its source's edges.
    fn encode(&mut self, text: u32, index: u32, pos: usize) -> u32 {
        if index == WHOLE {
            if text <= LOW_30 {
                return WHOLE_TAG | text;
            }
        } else if text < TEMPLATE_TEXTS {
            let delta = i64::from(index) - pos as i64 + DELTA_BIAS;
            if (0..=i64::from(DELTA_MASK)).contains(&delta) {
                return text << TEMPLATE_TEXT_SHIFT | delta as u32;
            }
        }
        let w = u32::try_from(self.wide.len())
            .ok()
            .filter(|&w| w <= LOW_30)
            .expect("too many edge labels for a HeapGraph");
        self.wide.push((text, index));
        WIDE_TAG | w
    }

    fn push(&mut self, text: u32, index: u32, pos: usize) {
        let code = self.encode(text, index, pos);
        self.code.push(code);
    }

    /// `(text, index)` of edge `e`, at position `pos` among its source's
    /// edges.
    fn get(&self, e: usize, pos: usize) -> (u32, u32) {
        let c = self.code[e];
        match c & WIDE_TAG {
            WIDE_TAG => self.wide[(c & LOW_30) as usize],
            WHOLE_TAG => (c & LOW_30, WHOLE),
            _ => {
                let delta = i64::from(c & DELTA_MASK) - DELTA_BIAS;
                // The index fitted in a `u32` when it was encoded.
                (c >> TEMPLATE_TEXT_SHIFT, (pos as i64 + delta) as u32)
            }
        }
    }
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
    label: EdgeLabels,
    interner: Interner,
    /// Nodes with an edge through a map key, in order (their labels are
    /// made by a second, labelled trace).
    keyed: Vec<u32>,
}

impl Edges {
    /// Adds an edge of the node being traced (the last `start`).
    fn push(&mut self, target: u32, text: u32, index: u32) {
        let pos = self.target.len() - *self.start.last().unwrap_or(&0) as usize;
        self.target.push(target);
        self.label.push(text, index, pos);
    }
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
            self.edges.push(t, l, WHOLE);
        }
    }

    fn edge_path(&mut self, target: NonNull<Header>, path: &LabelPath) {
        let Some(t) = (self.resolve)(target) else {
            return;
        };
        self.keyed |= path.has_key();
        let (l, i) = self.edges.interner.label_of(path);
        self.edges.push(t, l, i);
    }
}

/// Relabels one node's edges in the second, labelled pass (keys formatted
/// with their `Debug`): the `k`-th edge to a node must be the first pass's
/// `k`-th, else (user code changed the value meanwhile) the rest keep their
/// first-pass labels.
struct KeySink<'a> {
    addrs: &'a [usize],
    /// The node's edges: their targets, and the position of the first.
    targets: &'a [u32],
    first: usize,
    labels: &'a mut EdgeLabels,
    interner: &'a mut Interner,
    k: usize,
}

impl EdgeSink for KeySink<'_> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        let Some(t) = find_in(self.addrs, target.as_ptr() as usize) else {
            return;
        };
        if self.targets.get(self.k) != Some(&(t as u32)) {
            self.k = usize::MAX - 1; // out of step: stop here
            return;
        }
        let text = self.interner.intern(path, WHOLE);
        self.labels.code[self.first + self.k] = self.labels.encode(text, WHOLE, self.k);
        self.k += 1;
    }
}

/// The node at address `addr` in `addrs` (ascending).
fn find_in(addrs: &[usize], addr: usize) -> Option<usize> {
    addrs.binary_search(&addr).ok()
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
        // Node numbers are `u32`s (in headers' scratch words, in the edges).
        assert!(
            headers.len() < u32::MAX as usize,
            "too many objects for a HeapGraph"
        );
        let mut objects = Columns::with_capacity(headers.len());
        let mut edges = Edges {
            start: Vec::with_capacity(headers.len() + 1),
            target: Vec::new(),
            label: EdgeLabels::default(),
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
        objects.count_outside(&edges.target);
        // (The edge arrays grew by doubling.)
        edges.target.shrink_to_fit();
        edges.label.code.shrink_to_fit();
        edges.label.wide.shrink_to_fit();
        HeapGraph {
            nodes: objects,
            out_start: edges.start,
            out_target: edges.target,
            out_label: edges.label,
            in_edges: OnceLock::new(),
            objects: OnceLock::new(),
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
        self.nodes.len()
    }

    /// Whether the heap had no objects.
    ///
    /// ```
    /// let g = rcycle::HeapGraph::capture();
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
    /// let graph = rcycle::HeapGraph::capture();
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
    /// use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// assert!(rcycle::HeapGraph::capture().find(rcycle::ObjectId::of(&g)).is_some());
    /// ```
    pub fn find(&self, id: ObjectId) -> Option<usize> {
        find_in(&self.nodes.addr, id.0)
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
    /// # use rcycle::{Gc, HeapGraph, ObjectId};
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
    /// # use rcycle::{Gc, HeapGraph, ObjectId};
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
    objects: &mut Columns,
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
        let strong = h.strong.get();
        // Minus the implicit weak while the value is there.
        let weak = h.weak.get().saturating_sub(u32::from(strong > 0));
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
        objects.push(
            header.as_ptr() as usize,
            &entry,
            h.type_index(),
            entry.info.alloc_size,
        );
        objects.set_counts(n, strong, weak);
        objects.set_flag(n, DEAD, dead);
        objects.set_flag(n, UNTRACEABLE_NODE, untraceable);
    }
}

/// The second pass of [`HeapGraph::capture_from`]: `heap_size`, and the
/// labels of edges through map keys (user code, which may drop handles).
fn second_pass(heap: &Heap, headers: &[NonNull<Header>], objects: &mut Columns, edges: &mut Edges) {
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
        let strong = h.strong.get();
        // Minus our hold, and the implicit weak while the value is there.
        let weak = h.weak.get().saturating_sub(1 + u32::from(strong > 0));
        objects.set_counts(n, strong, weak);
        // SAFETY: readable (see above).
        let Some(pin) = (unsafe { ErasedGc::new(heap, header) }) else {
            let dead = objects.has(n, DEAD);
            if !h.value_alive() && !dead {
                objects.set_flag(n, DEAD, true);
                objects.set_flag(n, UNTRACEABLE_NODE, false);
                died |= edges.start[n] != edges.start[n + 1];
            } else if !dead {
                // Lent out by a `GcMut` since the first pass.
                objects.set_flag(n, UNTRACEABLE_NODE, true);
            }
            continue;
        };
        // SAFETY: the value is intact and pinned.
        let heap_size = unsafe { (entry.info.heap_size)(header) };
        objects.set_size(n, objects.size(n).saturating_add(heap_size));
        if is_keyed && !h.has(ACYCLIC) {
            let range = edges.start[n] as usize..edges.start[n + 1] as usize;
            let mut sink = KeySink {
                addrs: &objects.addr,
                targets: &edges.target[range.clone()],
                first: range.start,
                labels: &mut edges.label,
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
/// second pass dropped a value). An edge keeps its position among its
/// source's edges, which its label's code may depend on.
fn drop_edges_of_dead(objects: &Columns, edges: &mut Edges) {
    let mut w = 0;
    let mut from = edges.start[0] as usize;
    for n in 0..objects.len() {
        let end = edges.start[n + 1] as usize;
        edges.start[n] = w as u32;
        if !objects.has(n, DEAD) {
            for e in from..end {
                edges.target[w] = edges.target[e];
                edges.label.code[w] = edges.label.code[e];
                w += 1;
            }
        }
        from = end;
    }
    edges.start[objects.len()] = w as u32;
    edges.target.truncate(w);
    edges.label.code.truncate(w);
}

/// In-edge lists (positions in the out-edge arrays), by counting sort.
fn reverse_edges(nodes: usize, out_target: &[u32]) -> InEdges {
    let mut start = vec![0u32; nodes + 1];
    for &t in out_target {
        start[t as usize + 1] += 1;
    }
    for i in 0..nodes {
        start[i + 1] += start[i];
    }
    let mut fill = start[..nodes].to_vec();
    let mut edge = vec![0u32; out_target.len()];
    for (e, &t) in out_target.iter().enumerate() {
        edge[fill[t as usize] as usize] = e as u32;
        fill[t as usize] += 1;
    }
    InEdges { start, edge }
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

    #[test]
    fn columns_keep_what_does_not_fit_on_the_side() {
        let entry = heap().type_of(
            // SAFETY: a live object's header.
            unsafe { Gc::new(0u8).header_ptr().as_ref() },
        );
        let mut c = Columns::with_capacity(2);
        c.push(0x10, &entry, 3, 24);
        c.push(0x20, &entry, 3, usize::MAX);
        assert_eq!((c.size(0), c.size(1)), (24, usize::MAX));
        c.set_size(0, u32::MAX as usize);
        c.set_size(1, u32::MAX as usize - 1);
        assert_eq!(
            (c.size(0), c.size(1)),
            (u32::MAX as usize, u32::MAX as usize - 1)
        );
        assert_eq!(c.big_size.len(), 1);
        for (strong, weak) in [
            (0, 0),
            (STRONG_MASK, WEAK_MAX),
            (STRONG_MASK + 1, 0),
            (1, WEAK_MAX + 1),
            (u32::MAX, u32::MAX),
        ] {
            c.set_counts(0, strong, weak);
            assert_eq!(c.counts(0), (strong, weak));
        }
        c.set_counts(0, 1, 2);
        assert_eq!((c.counts(0), c.big_counts.len()), ((1, 2), 0));
        c.set_flag(1, DEAD, true);
        c.set_flag(1, UNTRACEABLE_NODE, true);
        c.set_flag(1, UNTRACEABLE_NODE, false);
        assert_eq!((c.has(1, DEAD), c.has(1, UNTRACEABLE_NODE)), (true, false));
        assert_eq!((c.has(0, DEAD), c.type_name(1)), (false, "u8"));
        assert_eq!(c.type_names.len(), 4);
    }

    #[test]
    fn edge_labels_pack_what_fits_and_keep_the_rest_whole() {
        let mut l = EdgeLabels::default();
        let bias = DELTA_BIAS as u32;
        let cases = [
            (0, WHOLE, 0),
            (LOW_30, WHOLE, 7),
            (LOW_30 + 1, WHOLE, 7), // wide
            (5, 0, 0),
            (5, 3, 9),
            (TEMPLATE_TEXTS - 1, u32::MAX - 1, (u32::MAX - 1) as usize),
            (TEMPLATE_TEXTS, 1, 1), // wide
            (2, bias - 1, 0),
            (2, bias, 0),              // wide
            (2, 0, bias as usize + 1), // wide
            (2, 0, bias as usize),
        ];
        for (e, &(text, index, pos)) in cases.iter().enumerate() {
            l.push(text, index, pos);
            assert_eq!(l.get(e, pos), (text, index), "case {e}");
        }
        assert_eq!(l.wide.len(), 4);
    }

    // A million handles and a vector of half a million slots: hours under
    // Miri, and nothing unsafe here that the small captures above do not
    // run (the packing of counts and label codes is plain arithmetic).
    #[test]
    #[cfg_attr(miri, ignore = "a million handles")]
    fn big_counts_and_far_indices_survive_a_capture() {
        let shared = Gc::new(1u8);
        let clones: Vec<Gc<u8>> = (0..STRONG_MASK).map(|_| shared.clone()).collect();
        let weaks: Vec<_> = (0..=WEAK_MAX).map(|_| Gc::downgrade(&shared)).collect();
        // One element far past its position among the vector's edges.
        let far = (DELTA_BIAS + 5) as usize;
        let mut sparse: Vec<Option<Gc<u8>>> = vec![None; far + 1];
        sparse[far] = Some(shared.clone());
        let sparse = Gc::new(sparse);
        let g = HeapGraph::capture();
        let s = g.find(ObjectId::of(&shared)).unwrap();
        let v = g.find(ObjectId::of(&sparse)).unwrap();
        assert_eq!(g.strong(s), STRONG_MASK as usize + 2);
        assert_eq!(g.weak(s), WEAK_MAX as usize + 1);
        assert_eq!(g.outside_count(s), STRONG_MASK as usize + 1);
        let label = format!("[{far}]");
        assert_eq!(g.referents(v).collect::<Vec<_>>(), [(s, label.as_str())]);
        assert_eq!(g.referrers(s).collect::<Vec<_>>(), [(v, label.as_str())]);
        assert_eq!(g.out_label.wide.len(), 1);
        assert_eq!(g.objects()[s], g.object(s));
        drop((clones, weaks));
    }
}
