//! The analysis behind a [`GarbageReport`]: the garbage's graph (the
//! reporter's builder's, with folded labels), its edge kinds, its strongly
//! connected components (iterative Tarjan), the kinds of cycles, and the
//! edges to make weak ([`suggest`](super::suggest)). Nothing here recurses.

use std::collections::HashMap;
use std::ptr::NonNull;

use super::suggest::suggest;
use super::{CycleKind, EdgeCount, EdgeKind, GarbageReport, Suggestion, TypeCount};
use crate::header::Header;
use crate::heap::Heap;
use crate::report::big_vec::BigVec;
use crate::report::graph::Built;
use crate::report::tally::{sort_rows, RowOrder, TypeTally};

/// A directed graph in compressed-row form, each edge with a kind.
#[derive(Default)]
pub(super) struct Csr {
    /// Edges of node `i` are `start[i]..start[i + 1]`.
    pub(super) start: BigVec<u32>,
    pub(super) target: BigVec<u32>,
    pub(super) kind: Vec<u32>,
}

impl Csr {
    pub(super) fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    pub(super) fn edges(&self, node: usize) -> std::ops::Range<usize> {
        self.start[node] as usize..self.start[node + 1] as usize
    }
}

/// Interns edge kinds: (source type index, label, target type index).
#[derive(Default)]
struct EdgeKinds {
    ids: HashMap<(u32, u32, u32), u32>,
    /// The kinds, by id.
    list: Vec<(u32, u32, u32)>,
    /// The kind interned last (a node's edges often repeat it).
    last: Option<((u32, u32, u32), u32)>,
}

impl EdgeKinds {
    fn intern(&mut self, kind: (u32, u32, u32)) -> u32 {
        match self.last {
            Some((k, id)) if k == kind => id,
            _ => {
                let next = self.list.len() as u32;
                let id = *self.ids.entry(kind).or_insert(next);
                if id == next {
                    self.list.push(kind);
                }
                self.last = Some((kind, id));
                id
            }
        }
    }
}

/// Describes a garbage set found by the collector (dry run: every member is
/// still referenced; the collector holds their memory and no collection can
/// run).
///
/// The graph is the reporter's builder's ([`Built::garbage`]): members
/// numbered in the collector's order, edges to other members only, labels
/// folded (`.children[3]` and `.children[4]` are one edge kind, whatever a
/// key's `Debug` prints), sizes measured with the builder's pin discipline
/// (user code in `heap_size` runs with the member pinned and every member's
/// memory held; a member whose value went meanwhile counts its slot alone
/// and has no edges). What is this analysis's own: edge kinds, cycles,
/// their kinds and the suggestions.
pub(super) fn analyse(heap: &Heap, garbage: &[NonNull<Header>]) -> GarbageReport {
    let mut built = Built::garbage(heap, garbage);
    let node_type: Vec<u32> = (0..built.len()).map(|n| built.type_index(n)).collect();
    let mut by_type = TypeTally::with_types(heap.type_count());
    for (n, &t) in node_type.iter().enumerate() {
        by_type.add(t, built.size(n));
    }
    let (start, target) = built.take_edges();
    let mut kinds = EdgeKinds::default();
    let mut kind = Vec::with_capacity(target.len());
    for (n, &source_type) in node_type.iter().enumerate() {
        for e in start[n] as usize..start[n + 1] as usize {
            let kind_of_e = (source_type, built.label(e), node_type[target[e] as usize]);
            kind.push(kinds.intern(kind_of_e));
        }
    }
    let graph = Csr {
        start,
        target,
        kind,
    };

    let name = |t: u32| (heap.type_entry(t).info.type_name)();
    let mut by_type: Vec<TypeCount> = by_type
        .types(heap)
        .map(|(type_name, count, size)| TypeCount {
            type_name,
            count,
            size,
        })
        .collect();
    sort_rows(&mut by_type, RowOrder::Most, |t| {
        (t.size, t.count, t.type_name)
    });
    let edge_kind = |id: u32| {
        let (source, label, target) = kinds.list[id as usize];
        EdgeKind {
            source: name(source),
            label: built.label_text(label).to_string(),
            target: name(target),
        }
    };
    let (cycles, kinds) = cycle_kinds(&graph, &node_type, name, edge_kind);
    GarbageReport {
        objects: node_type.len(),
        size: by_type.iter().map(|t| t.size).sum(),
        by_type,
        cycles,
        kinds,
    }
}

/// Groups the cycles of `graph` by their set of types; returns the number
/// of cycles and the kinds, each with its closing edges and suggestion.
fn cycle_kinds(
    graph: &Csr,
    node_type: &[u32],
    name: impl Fn(u32) -> &'static str,
    edge_kind: impl Fn(u32) -> EdgeKind,
) -> (usize, Vec<CycleKind>) {
    let (comp, comps) = strongly_connected(graph, |_| true);
    let cyclic = cyclic_components(graph, &comp, comps, |_| true);
    // Members of each cyclic component, in node order.
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); comps];
    for (n, &c) in comp.iter().enumerate() {
        if cyclic[c as usize] {
            members[c as usize].push(n as u32);
        }
    }
    // Components by sorted set of type names.
    let mut groups: HashMap<Vec<&'static str>, Vec<u32>> = HashMap::new();
    for c in (0..comps).filter(|&c| cyclic[c]) {
        let mut types: Vec<_> = members[c]
            .iter()
            .map(|&n| name(node_type[n as usize]))
            .collect();
        types.sort_unstable();
        types.dedup();
        groups.entry(types).or_default().push(c as u32);
    }
    let cycles = cyclic.iter().filter(|&&c| c).count();
    let mut kinds: Vec<CycleKind> = groups
        .into_iter()
        .map(|(types, group)| {
            let nodes: Vec<u32> = group
                .iter()
                .flat_map(|&c| members[c as usize].iter().copied())
                .collect();
            let local = subgraph_of(graph, &comp, &nodes);
            let mut counts: HashMap<u32, usize> = HashMap::new();
            for &k in &local.kind {
                *counts.entry(k).or_default() += 1;
            }
            let mut edges: Vec<EdgeCount> = counts
                .into_iter()
                .map(|(k, count)| EdgeCount {
                    edge: edge_kind(k),
                    count,
                })
                .collect();
            edges.sort_by(|a, b| b.count.cmp(&a.count).then(a.edge.cmp(&b.edge)));
            let suggestion = suggest(&local, &edge_kind).map(|edges| Suggestion {
                edges,
                objects: nodes.len(),
            });
            CycleKind {
                types,
                cycles: group.len(),
                objects: nodes.len(),
                edges,
                suggestion,
            }
        })
        .collect();
    kinds.sort_by(|a, b| {
        (b.objects, b.cycles)
            .cmp(&(a.objects, a.cycles))
            .then(a.types.cmp(&b.types))
    });
    (cycles, kinds)
}

/// The graph induced by `nodes` (renumbered `0..nodes.len()`), keeping only
/// edges inside one component: the edges that lie on cycles.
fn subgraph_of(graph: &Csr, comp: &[u32], nodes: &[u32]) -> Csr {
    let mut local_index: HashMap<u32, u32> = HashMap::with_capacity(nodes.len());
    for (i, &n) in nodes.iter().enumerate() {
        local_index.insert(n, i as u32);
    }
    let mut local = Csr::default();
    for &n in nodes {
        local.start.push(local.target.len() as u32);
        for e in graph.edges(n as usize) {
            let t = graph.target[e];
            if comp[t as usize] == comp[n as usize] {
                local.target.push(local_index[&t]);
                local.kind.push(graph.kind[e]);
            }
        }
    }
    local.start.push(local.target.len() as u32);
    local
}

/// Objects still on a cycle of `graph` once the edges of the `removed` kinds
/// are ignored (what [`suggest`] measured for every candidate, before).
#[cfg(test)]
fn cyclic_nodes(graph: &Csr, removed: &[u32]) -> usize {
    let keep = |e: usize| !removed.contains(&graph.kind[e]);
    let (comp, comps) = strongly_connected(graph, keep);
    let cyclic = cyclic_components(graph, &comp, comps, keep);
    comp.iter().filter(|&&c| cyclic[c as usize]).count()
}

/// Strongly connected components of the graph made of the edges `keep`
/// accepts (Tarjan's algorithm with an explicit stack). Returns each node's
/// component and the number of components.
pub(super) fn strongly_connected(graph: &Csr, keep: impl Fn(usize) -> bool) -> (Vec<u32>, usize) {
    const UNSEEN: u32 = u32::MAX;
    let n = graph.len();
    let mut order = vec![UNSEEN; n]; // discovery order
    let mut low = vec![0u32; n];
    let mut comp = vec![UNSEEN; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    // Depth-first frames: (node, next edge to look at).
    let mut frames: Vec<(u32, usize)> = Vec::new();
    let (mut next_order, mut comps) = (0u32, 0usize);
    for root in 0..n {
        if order[root] != UNSEEN {
            continue;
        }
        // Discovers a node: numbers it and pushes it on both stacks.
        macro_rules! visit {
            ($v:expr) => {{
                let v: usize = $v;
                order[v] = next_order;
                low[v] = next_order;
                next_order += 1;
                on_stack[v] = true;
                stack.push(v as u32);
                frames.push((v as u32, graph.start[v] as usize));
            }};
        }
        visit!(root);
        while let Some(top) = frames.last_mut() {
            let v = top.0 as usize;
            if top.1 < graph.start[v + 1] as usize {
                let e = top.1;
                top.1 += 1;
                if !keep(e) {
                    continue;
                }
                let w = graph.target[e] as usize;
                if order[w] == UNSEEN {
                    visit!(w);
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent as usize] = low[parent as usize].min(low[v]);
            }
            if low[v] == order[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    comp[w as usize] = comps as u32;
                    if w as usize == v {
                        break;
                    }
                }
                comps += 1;
            }
        }
    }
    (comp, comps)
}

/// Which components are cycles: more than one node, or a node with an edge
/// (that `keep` accepts) to itself.
pub(super) fn cyclic_components(
    graph: &Csr,
    comp: &[u32],
    comps: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<bool> {
    let mut size = vec![0usize; comps];
    for &c in comp {
        size[c as usize] += 1;
    }
    let mut cyclic: Vec<bool> = size.iter().map(|&s| s > 1).collect();
    for (v, &c) in comp.iter().enumerate() {
        if !cyclic[c as usize]
            && graph
                .edges(v)
                .any(|e| keep(e) && graph.target[e] as usize == v)
        {
            cyclic[c as usize] = true;
        }
    }
    cyclic
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::collect_dry_run;
    use crate::report::cycles::suggest::suggest_within;
    use crate::runtime::heap;

    fn csr(n: usize, edges: &[(u32, u32, u32)]) -> Csr {
        let mut g = Csr::default();
        for v in 0..n as u32 {
            g.start.push(g.target.len() as u32);
            for &(s, t, k) in edges {
                if s == v {
                    g.target.push(t);
                    g.kind.push(k);
                }
            }
        }
        g.start.push(g.target.len() as u32);
        g
    }

    #[test]
    fn a_dry_run_puts_every_candidate_back_as_it_was() {
        use crate::gc::Gc;
        use std::cell::RefCell;

        #[derive(crate::Trace)]
        struct Pair {
            other: RefCell<Option<Gc<Pair>>>,
        }
        let heap = heap();
        let live = Gc::new(Pair {
            other: RefCell::new(None),
        });
        drop(live.clone()); // a candidate that is not garbage
        let mut weak = Vec::new();
        for _ in 0..3 {
            let a = Gc::new(Pair {
                other: RefCell::new(None),
            });
            let b = Gc::new(Pair {
                other: RefCell::new(Some(a.clone())),
            });
            *a.other.borrow_mut() = Some(b.clone());
            weak.push(Gc::downgrade(&a));
        }
        let state = |h: &NonNull<Header>| {
            // SAFETY: buffered objects are live.
            let h = unsafe { h.as_ref() };
            (h.state(), h.scratch(), h.strong(), h.weak())
        };
        let before = heap.take_candidates(|_| true);
        heap.rebuffer(before.iter().copied());
        let states: Vec<_> = before.iter().map(state).collect();
        assert_eq!(before.len(), 7);

        let dry = collect_dry_run();
        assert_eq!((dry.roots, dry.examined), (7, 7));
        assert_eq!((dry.garbage.objects, dry.garbage.cycles), (6, 3));
        assert_eq!(before.iter().map(state).collect::<Vec<_>>(), states);
        let after = heap.take_candidates(|_| true);
        assert_eq!(after, before, "same candidates, same order");
        heap.rebuffer(after);
        assert_eq!(crate::collect(), 6);
        drop((weak, live));
    }

    #[test]
    fn components_and_self_loops() {
        // 0 <-> 1, 2 -> 2, 3 -> 0, 4 alone.
        let g = csr(5, &[(0, 1, 0), (1, 0, 0), (2, 2, 0), (3, 0, 0)]);
        let (comp, comps) = strongly_connected(&g, |_| true);
        assert_eq!(comps, 4);
        assert_eq!(comp[0], comp[1]);
        let cyclic = cyclic_components(&g, &comp, comps, |_| true);
        let on_cycle: Vec<bool> = comp.iter().map(|&c| cyclic[c as usize]).collect();
        assert_eq!(on_cycle, [true, true, true, false, false]);
        assert_eq!(cyclic_nodes(&g, &[]), 3);
        assert_eq!(cyclic_nodes(&g, &[0]), 0);
    }

    #[test]
    fn deep_ring_needs_no_recursion() {
        let n = if cfg!(miri) { 10_000 } else { 1_000_000u32 };
        let edges: Vec<_> = (0..n).map(|i| (i, (i + 1) % n, 0)).collect();
        let mut g = Csr::default();
        for (i, &(_, t, k)) in edges.iter().enumerate() {
            g.start.push(i as u32);
            g.target.push(t);
            g.kind.push(k);
        }
        g.start.push(n);
        assert_eq!(cyclic_nodes(&g, &[]), n as usize);
    }

    /// Edge kind `id` as `A.f{id} -> A`.
    fn field_kind(id: u32) -> EdgeKind {
        EdgeKind {
            source: "A",
            label: format!(".f{id}"),
            target: "A",
        }
    }

    fn labels(edges: Option<Vec<EdgeKind>>) -> Vec<String> {
        edges.unwrap().into_iter().map(|e| e.label).collect()
    }

    #[test]
    fn suggest_splits_only_the_cycles_it_breaks() {
        // Two 2-cycles, each edge a kind of its own; 4 -> 4 shares kind 0.
        let g = csr(5, &[(0, 1, 0), (1, 0, 1), (2, 3, 2), (3, 2, 3), (4, 4, 0)]);
        // Kind 0 takes 3 objects off cycles, the others 2: kind 0 first,
        // then the best ranked of the second cycle.
        assert_eq!(
            labels(suggest_within(&g, field_kind, usize::MAX)),
            [".f0", ".f2"]
        );
        // Past the budget at once: the kinds of a depth-first search's back
        // edges (1 -> 0, 3 -> 2, 4 -> 4), best ranked first (kind 0 last:
        // it has two edges, rule 5).
        assert_eq!(
            labels(suggest_within(&g, field_kind, 0)),
            [".f1", ".f3", ".f0"]
        );
    }

    #[test]
    fn suggest_finishes_a_huge_cycle_in_linear_time() {
        // One ring, every edge a kind of its own: any one kind breaks it.
        let n = 6u32;
        let edges: Vec<_> = (0..n).map(|i| (i, (i + 1) % n, i)).collect();
        let g = csr(n as usize, &edges);
        assert_eq!(labels(suggest_within(&g, field_kind, usize::MAX)), [".f0"]);
        // The linear finish: the search from 0 closes the ring at 5 -> 0.
        assert_eq!(labels(suggest_within(&g, field_kind, 0)), [".f5"]);
    }
}
