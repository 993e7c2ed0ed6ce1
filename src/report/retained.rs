//! Retained size [guppy `domisize`]: the bytes that would be freed if an
//! object went away.
//!
//! Object `d` *dominates* object `x` when every path of references from
//! outside the heap to `x` goes through `d`. The dominator tree hangs every
//! reachable object under its *immediate* dominator, and the tree's root is a
//! virtual node whose children are the objects held from outside the heap
//! ([`HeapGraph::outside_holders`], which includes the objects whose edges
//! are unknown). An object's retained size is the sum of
//! [`ObjectInfo::size`](super::ObjectInfo::size) over its subtree: itself and
//! everything only it keeps alive.
//!
//! Objects that nothing outside the heap reaches (garbage cycles awaiting a
//! [`collect`](crate::collect())) have no dominator: they are listed apart by
//! [`Dominators::unreachable`] and are part of no retained size.
//!
//! The tree is computed by the Lengauer–Tarjan algorithm (with path
//! compression), with explicit stacks throughout: no recursion over the
//! graph, so a chain of millions of objects needs no more stack than a
//! single one, and the cost stays `O(E log N)` whatever the shape.

use std::collections::HashMap;

use super::big_vec::BigVec;
use super::graph::{HeapGraph, ObjectId};
use super::{live_report, LiveReport};
use crate::gc::Gc;

/// `idom` of an object only the virtual root dominates.
const ROOT: u32 = u32::MAX - 1;
/// `idom` of an object the virtual root does not reach.
const UNREACHABLE: u32 = u32::MAX;

/// The dominator tree of a [`HeapGraph`], with the retained size of every
/// object; made by [`HeapGraph::dominators`].
///
/// ```
/// use rcycle::{Gc, Trace};
/// use rcycle::report::{HeapGraph, ObjectId};
/// #[derive(Trace)]
/// struct Owner { parts: Vec<Gc<u64>> }
/// let owner = Gc::new(Owner { parts: vec![Gc::new(1), Gc::new(2)] });
/// let graph = HeapGraph::capture();
/// let doms = graph.dominators();
/// let o = graph.find(ObjectId::of(&owner)).unwrap();
/// // The owner and its two 24-byte parts.
/// assert_eq!(doms.retained(o), Some(graph.objects()[o].size + 2 * 24));
/// assert_eq!(doms.dominated(o).count(), 2);
/// ```
pub struct Dominators<'g> {
    graph: &'g HeapGraph,
    /// Per node: its immediate dominator, [`ROOT`] or [`UNREACHABLE`].
    idom: BigVec<u32>,
    /// Per node: its retained size (0 when unreachable).
    retained: BigVec<usize>,
    /// Dominator-tree children of node `i` (of the virtual root for
    /// `i == len`): `child[child_start[i]..child_start[i + 1]]`.
    child_start: BigVec<u32>,
    child: BigVec<u32>,
    unreachable: Vec<usize>,
}

impl HeapGraph {
    /// Computes the dominator tree of this snapshot and every object's
    /// retained size (see [`Dominators`]). Iterative and `O(E log N)`: tens
    /// of milliseconds for a million objects in a release build (taking the
    /// [`capture`](Self::capture) costs more).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let list = Gc::new(vec![Gc::new(1u64), Gc::new(2u64)]);
    /// let graph = HeapGraph::capture();
    /// let node = graph.find(ObjectId::of(&list)).unwrap();
    /// let doms = graph.dominators();
    /// assert_eq!(doms.immediate_dominator(node), None); // held from outside
    /// assert_eq!(doms.retained(node), Some(graph.objects()[node].size + 48));
    /// ```
    pub fn dominators(&self) -> Dominators<'_> {
        let n = self.len();
        let Preorder {
            vertex,
            idom_num,
            sum,
            ..
        } = self.preorder_sums();
        let count = vertex.len() - 1;
        let mut idom = BigVec::filled(UNREACHABLE, n);
        let mut retained = BigVec::filled(0usize, n);
        for k in 2..=count {
            let v = vertex[k] as usize;
            let d = idom_num[k] as usize;
            idom[v] = if d == 1 { ROOT } else { vertex[d] };
            retained[v] = sum[k];
        }
        // Dominator-tree children, by counting sort on the parent.
        let parent_of = |v: usize| match idom[v] {
            ROOT => n,
            d => d as usize,
        };
        let mut child_start = BigVec::filled(0u32, n + 2);
        for v in (0..n).filter(|&v| idom[v] != UNREACHABLE) {
            child_start[parent_of(v) + 1] += 1;
        }
        for i in 0..=n {
            child_start[i + 1] += child_start[i];
        }
        let mut fill = child_start.clone();
        let mut child = BigVec::filled(0u32, child_start[n + 1] as usize);
        for v in (0..n).filter(|&v| idom[v] != UNREACHABLE) {
            let slot = &mut fill[parent_of(v)];
            child[*slot as usize] = v as u32;
            *slot += 1;
        }
        let unreachable = (0..n).filter(|&v| idom[v] == UNREACHABLE).collect();
        Dominators {
            graph: self,
            idom,
            retained,
            child_start,
            child,
            unreachable,
        }
    }

    /// The dominator tree's preorder (from the virtual root, node `len()`),
    /// each number's immediate dominator, and each number's retained size
    /// (the sum over its dominator subtree).
    fn preorder_sums(&self) -> Preorder {
        let n = self.len();
        assert!(n < ROOT as usize, "too many objects for a dominator tree");
        // Successor lists, with the virtual root (node `n`) last.
        // (The out-edge arrays as they are: `referents` would format every
        // label.)
        let holders = self.outside_holders();
        let (out_start, out_target) = self.out_edges();
        let mut succ_start = BigVec::with_capacity(n + 2);
        succ_start.extend_from_slice(out_start);
        let mut succ = BigVec::with_capacity(out_target.len() + holders.len());
        succ.extend_from_slice(out_target);
        succ.extend(holders.into_iter().map(|v| v as u32));
        succ_start.push(succ.len() as u32);

        // Depth-first preorder numbers from the root, 1-based (0: not
        // reached), with an explicit stack of (node, next edge).
        let mut num = BigVec::filled(0u32, n + 1);
        let mut vertex = BigVec::with_capacity(n + 2);
        let mut parent = BigVec::with_capacity(n + 2);
        vertex.push(0u32); // number 0 is the "none" sentinel
        parent.push(0u32);
        vertex.push(n as u32);
        parent.push(0);
        num[n] = 1;
        let mut stack = vec![(n as u32, succ_start[n])];
        while let Some(top) = stack.last_mut() {
            let (v, e) = *top;
            if e == succ_start[v as usize + 1] {
                stack.pop();
                continue;
            }
            top.1 += 1;
            let w = succ[e as usize];
            if num[w as usize] == 0 {
                num[w as usize] = vertex.len() as u32;
                vertex.push(w);
                parent.push(num[v as usize]);
                stack.push((w, succ_start[w as usize]));
            }
        }
        let count = vertex.len() - 1;

        // Predecessor lists in number space (counting sort).
        let mut pred_start = BigVec::filled(0u32, count + 2);
        for &v in &vertex[1..] {
            let v = v as usize;
            for &w in &succ[succ_start[v] as usize..succ_start[v + 1] as usize] {
                pred_start[num[w as usize] as usize + 1] += 1;
            }
        }
        for k in 0..=count {
            pred_start[k + 1] += pred_start[k];
        }
        let mut fill = pred_start.clone();
        let mut pred = BigVec::filled(0u32, pred_start[count + 1] as usize);
        for (k, &v) in vertex.iter().enumerate().skip(1) {
            let v = v as usize;
            for &w in &succ[succ_start[v] as usize..succ_start[v + 1] as usize] {
                let slot = &mut fill[num[w as usize] as usize];
                pred[*slot as usize] = k as u32;
                *slot += 1;
            }
        }
        drop((succ, succ_start, fill));

        let idom_num = lengauer_tarjan(count, &parent, &pred_start, &pred);

        // Retained sizes: a dominator has a smaller preorder number than
        // everything it dominates, so one backward sweep sums the subtrees.
        let mut sum = BigVec::filled(0usize, count + 1);
        for k in 2..=count {
            sum[k] = self.size(vertex[k] as usize);
        }
        for k in (2..=count).rev() {
            sum[idom_num[k] as usize] += sum[k];
        }
        Preorder {
            num,
            vertex,
            idom_num,
            sum,
        }
    }

    /// The retained size of one node (as [`Dominators::retained`]) without
    /// the rest of the dominator tree.
    fn retained_of(&self, node: usize) -> Option<usize> {
        let p = self.preorder_sums();
        match p.num[node] {
            0 => None,
            k => Some(p.sum[k as usize]),
        }
    }
}

/// What [`HeapGraph::preorder_sums`] finds: `num[v]` is node `v`'s
/// preorder number (0: not reached; the virtual root is 1), `vertex[k]`
/// the node numbered `k`, `idom_num[k]` its immediate dominator's number,
/// `sum[k]` its retained size.
struct Preorder {
    num: BigVec<u32>,
    vertex: BigVec<u32>,
    idom_num: BigVec<u32>,
    sum: BigVec<usize>,
}

/// Immediate dominators, in preorder-number space (1 is the root, `parent`
/// the DFS tree), by Lengauer–Tarjan with path compression; no recursion.
fn lengauer_tarjan(count: usize, parent: &[u32], pred_start: &[u32], pred: &[u32]) -> BigVec<u32> {
    let mut semi: BigVec<u32> = (0..=count as u32).collect();
    let mut label = semi.clone();
    let mut ancestor = BigVec::filled(0u32, count + 1);
    let mut idom = BigVec::filled(0u32, count + 1);
    let mut bucket_head = BigVec::filled(0u32, count + 1);
    let mut bucket_next = BigVec::filled(0u32, count + 1);
    let mut path = Vec::new();

    // EVAL with an iterative COMPRESS: the minimum-semi vertex on the
    // forest path above `v`.
    let mut eval = |v: u32, semi: &[u32], ancestor: &mut [u32], label: &mut [u32]| -> u32 {
        if ancestor[v as usize] == 0 {
            return v;
        }
        let mut x = v;
        while ancestor[ancestor[x as usize] as usize] != 0 {
            path.push(x);
            x = ancestor[x as usize];
        }
        while let Some(y) = path.pop() {
            let (y, a) = (y as usize, ancestor[y as usize] as usize);
            if semi[label[a] as usize] < semi[label[y] as usize] {
                label[y] = label[a];
            }
            ancestor[y] = ancestor[a];
        }
        label[v as usize]
    };

    for w in (2..=count).rev() {
        for &v in &pred[pred_start[w] as usize..pred_start[w + 1] as usize] {
            let u = eval(v, &semi, &mut ancestor, &mut label);
            if semi[u as usize] < semi[w] {
                semi[w] = semi[u as usize];
            }
        }
        let s = semi[w] as usize;
        bucket_next[w] = bucket_head[s];
        bucket_head[s] = w as u32;
        let p = parent[w];
        ancestor[w] = p; // LINK(parent(w), w)
        let mut v = std::mem::take(&mut bucket_head[p as usize]);
        while v != 0 {
            let next = bucket_next[v as usize];
            let u = eval(v, &semi, &mut ancestor, &mut label);
            idom[v as usize] = if semi[u as usize] < semi[v as usize] {
                u
            } else {
                p
            };
            v = next;
        }
    }
    for w in 2..=count {
        if idom[w] != semi[w] {
            idom[w] = idom[idom[w] as usize];
        }
    }
    idom
}

impl<'g> Dominators<'g> {
    /// The graph these dominators are of.
    ///
    /// ```
    /// let graph = rcycle::report::HeapGraph::capture();
    /// assert_eq!(graph.dominators().graph().len(), graph.len());
    /// ```
    pub fn graph(&self) -> &'g HeapGraph {
        self.graph
    }

    /// The retained size of `node`: the bytes that would be freed if it went
    /// (the sum of [`ObjectInfo::size`](super::ObjectInfo::size) over its
    /// dominator subtree, itself included). `None` for an object nothing
    /// outside the heap reaches (garbage awaiting collection).
    ///
    /// ```
    /// let leaf = rcycle::Gc::new(7u64);
    /// let graph = rcycle::report::HeapGraph::capture();
    /// let node = graph.find(rcycle::report::ObjectId::of(&leaf)).unwrap();
    /// assert_eq!(graph.dominators().retained(node), Some(24)); // header + u64
    /// ```
    pub fn retained(&self, node: usize) -> Option<usize> {
        self.is_reachable(node).then(|| self.retained[node])
    }

    /// The object every path from outside the heap to `node` last goes
    /// through. `None` if `node` is held from outside the heap itself (or
    /// its edges are unknown), is reached from several outside holders
    /// along separate paths, or is not reachable at all
    /// ([`is_reachable`](Self::is_reachable) tells which).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let outer = Gc::new(Some(Gc::new(1u8)));
    /// let graph = HeapGraph::capture();
    /// let o = graph.find(ObjectId::of(&outer)).unwrap();
    /// let (inner, _) = graph.referents(o).next().unwrap();
    /// let doms = graph.dominators();
    /// assert_eq!(doms.immediate_dominator(inner), Some(o));
    /// assert_eq!(doms.immediate_dominator(o), None);
    /// ```
    pub fn immediate_dominator(&self, node: usize) -> Option<usize> {
        match self.idom[node] {
            ROOT | UNREACHABLE => None,
            d => Some(d as usize),
        }
    }

    /// Whether `node` is reachable from an object held outside the heap.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// let graph = rcycle::report::HeapGraph::capture();
    /// let node = graph.find(rcycle::report::ObjectId::of(&g)).unwrap();
    /// assert!(graph.dominators().is_reachable(node));
    /// ```
    pub fn is_reachable(&self, node: usize) -> bool {
        self.idom[node] != UNREACHABLE
    }

    /// The objects `node` immediately dominates (its children in the
    /// dominator tree), in node order.
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let list = Gc::new(vec![Gc::new(1u8), Gc::new(2u8), Gc::new(3u8)]);
    /// let graph = HeapGraph::capture();
    /// let node = graph.find(ObjectId::of(&list)).unwrap();
    /// assert_eq!(graph.dominators().dominated(node).count(), 3);
    /// ```
    pub fn dominated(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let range = self.child_start[node] as usize..self.child_start[node + 1] as usize;
        self.child[range].iter().map(|&c| c as usize)
    }

    /// The tops of the dominator tree: the reachable objects no other object
    /// dominates (held from outside, or reached from several holders).
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let list = Gc::new(vec![Gc::new(1u8)]);
    /// let graph = HeapGraph::capture();
    /// let node = graph.find(ObjectId::of(&list)).unwrap();
    /// assert!(graph.dominators().top_level().any(|t| t == node));
    /// ```
    pub fn top_level(&self) -> impl Iterator<Item = usize> + '_ {
        self.dominated(self.idom.len())
    }

    /// The total size of the reachable objects (the retained size of the
    /// virtual root).
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u64);
    /// assert!(rcycle::report::HeapGraph::capture().dominators().reachable_size() >= 24);
    /// ```
    pub fn reachable_size(&self) -> usize {
        self.top_level().map(|t| self.retained[t]).sum()
    }

    /// The objects nothing outside the heap reaches: garbage that a
    /// [`collect`](crate::collect()) would free (or is about to). They have no
    /// dominator and count in no retained size.
    ///
    /// ```
    /// use rcycle::{Gc, Trace};
    /// use rcycle::report::HeapGraph;
    /// use std::cell::RefCell;
    /// #[derive(Trace)]
    /// struct Ring { next: RefCell<Option<Gc<Ring>>> }
    /// let a = Gc::new(Ring { next: RefCell::new(None) });
    /// *a.next.borrow_mut() = Some(a.clone()); // a cycle of one
    /// drop(a);
    /// let graph = HeapGraph::capture();
    /// assert_eq!(graph.dominators().unreachable().len(), 1);
    /// assert_eq!(rcycle::collect(), 1);
    /// ```
    pub fn unreachable(&self) -> &[usize] {
        &self.unreachable
    }

    /// Retained size per type, largest first, with the type names of
    /// [`ReportRow::kind`](super::ReportRow::kind) (dead boxes apart, as
    /// `<dead> TypeName`).
    ///
    /// The rule, to count no byte twice within a type: a type's retained
    /// size is the sum of the retained sizes of its objects that no other
    /// object *of the same type* dominates. For a linked list of `Node`s that
    /// is the retained size of the head alone. Different types do overlap
    /// (a `Dispatcher` retains its `Iq`s, which also count for `Iq`), so the
    /// figures of several types do not add up. Unreachable objects count
    /// nowhere; a type with only unreachable objects is listed with 0.
    ///
    /// ```
    /// use rcycle::{Gc, Trace};
    /// use rcycle::report::HeapGraph;
    /// #[derive(Trace)]
    /// struct Node { next: Option<Gc<Node>> }
    /// let list = Gc::new(Node { next: Some(Gc::new(Node { next: None })) });
    /// let graph = HeapGraph::capture();
    /// let by_type = graph.dominators().retained_by_type();
    /// let node = by_type.iter().find(|(kind, _)| kind.ends_with("Node")).unwrap();
    /// assert_eq!(node.1, 2 * 24); // the head retains both; the tail is not counted again
    /// ```
    pub fn retained_by_type(&self) -> Vec<(String, usize)> {
        let graph = self.graph;
        let n = graph.len();
        // Kinds by name (two types may share one), through a table by the
        // graph's kind key.
        let mut kinds: HashMap<(&str, bool), u32> = HashMap::new();
        let mut by_key = vec![u32::MAX; graph.kind_keys()];
        let kind_of: Vec<u32> = (0..n)
            .map(|v| {
                let key = &mut by_key[graph.kind_key(v)];
                if *key == u32::MAX {
                    let next = kinds.len() as u32;
                    *key = *kinds
                        .entry((graph.type_name(v), graph.is_dead(v)))
                        .or_insert(next);
                }
                *key
            })
            .collect();
        let mut total = vec![0usize; kinds.len()];
        // Objects of each type on the current tree path (explicit stack of
        // (node, next child position); enter adds, leave removes).
        let mut active = vec![0u32; kinds.len()];
        let mut stack = vec![(n, self.child_start[n])];
        while let Some(top) = stack.last_mut() {
            let (v, c) = *top;
            if c == self.child_start[v + 1] {
                stack.pop();
                if v != n {
                    active[kind_of[v] as usize] -= 1;
                }
                continue;
            }
            top.1 += 1;
            let w = self.child[c as usize] as usize;
            let k = kind_of[w] as usize;
            if active[k] == 0 {
                total[k] += self.retained[w];
            }
            active[k] += 1;
            stack.push((w, self.child_start[w]));
        }
        let mut rows: Vec<(String, usize)> = kinds
            .into_iter()
            .map(|((name, dead), k)| {
                let kind = if dead {
                    format!("<dead> {name}")
                } else {
                    name.to_string()
                };
                (kind, total[k as usize])
            })
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows
    }
}

/// The bytes that would be freed if `obj` went away (guppy's `domisize`):
/// the object and everything that only it keeps alive. Takes a
/// [`HeapGraph`] snapshot; the handle passed in does not change the result.
///
/// ```
/// use rcycle::{Gc, Trace};
/// #[derive(Trace)]
/// struct Pair { a: Gc<u64>, b: Gc<u64> }
/// let shared = Gc::new(3u64);
/// let pair = Gc::new(Pair { a: Gc::new(1), b: shared.clone() });
/// // `pair` (16-byte header + two pointers) and `a`; not `shared`, held here too.
/// assert_eq!(rcycle::report::retained_size(&pair), 32 + 24);
/// assert_eq!(rcycle::report::retained_size(&shared), 24);
/// ```
pub fn retained_size<T: ?Sized>(obj: &Gc<T>) -> usize {
    let graph = HeapGraph::capture();
    graph
        .find(ObjectId::of(obj))
        .and_then(|node| graph.retained_of(node))
        .unwrap_or(0)
}

/// [`live_report`] with a retained-size column (guppy's `domisize`): each
/// row's [`retained`](super::ReportRow::retained) is the type's retained
/// size by the rule of [`Dominators::retained_by_type`]. The rows and their
/// order are those of `live_report` (largest total size first); `Display`
/// adds the `Retained` column and its percentage of the total size between
/// the cumulative column and the kind. Retained figures of different types
/// overlap, so their percentages can add up to more than 100.
///
/// ```
/// use rcycle::{Gc, Trace};
/// #[derive(Trace)]
/// struct Dispatcher { expected: Vec<Gc<u64>> }
/// let d = Gc::new(Dispatcher { expected: (0..4).map(Gc::new).collect() });
/// let report = rcycle::report::live_report_with_retained();
/// let row = report.rows().iter().find(|r| r.kind.ends_with("Dispatcher")).unwrap();
/// let own = row.size;
/// assert_eq!(row.retained, Some(own + 4 * 24));
/// let text = report.to_string();
/// assert!(text.contains(" Cumulative  %  Retained   % Type"));
/// ```
pub fn live_report_with_retained() -> LiveReport {
    let graph = HeapGraph::capture();
    let by_type: HashMap<String, usize> =
        graph.dominators().retained_by_type().into_iter().collect();
    let mut report = live_report();
    for row in &mut report.rows {
        row.retained = Some(by_type.get(&row.kind).copied().unwrap_or(0));
    }
    report
}
