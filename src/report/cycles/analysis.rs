//! The analysis behind a [`GarbageReport`]: the garbage traced again with
//! labels, its strongly connected components (iterative Tarjan), the kinds
//! of cycles, and the edges to make weak. Nothing here recurses.

use std::collections::HashMap;
use std::ptr::NonNull;

use super::{CycleKind, EdgeCount, EdgeKind, GarbageReport, Suggestion, TypeCount};
use crate::addr_map::AddrMap;
use crate::gc::ErasedGc;
use crate::header::{Header, ACYCLIC};
use crate::heap::Heap;
use crate::trace::{EdgeSink, LabelPath, Tracer};

/// A directed graph in compressed-row form, each edge with a kind.
#[derive(Default)]
struct Csr {
    /// Edges of node `i` are `start[i]..start[i + 1]`.
    start: Vec<u32>,
    target: Vec<u32>,
    kind: Vec<u32>,
}

impl Csr {
    fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    fn edges(&self, node: usize) -> std::ops::Range<usize> {
        self.start[node] as usize..self.start[node + 1] as usize
    }
}

/// Interns edge kinds while the garbage is traced with labels.
#[derive(Default)]
struct EdgeKinds {
    labels: HashMap<Box<str>, u32>,
    label_list: Vec<Box<str>>,
    ids: HashMap<(u32, u32, u32), u32>,
    /// (source type index, label, target type index) per edge kind.
    list: Vec<(u32, u32, u32)>,
}

impl EdgeKinds {
    fn intern(&mut self, source: u32, label: &str, target: u32) -> u32 {
        let label = match self.labels.get(label) {
            Some(&l) => l,
            None => {
                let l = self.label_list.len() as u32;
                self.label_list.push(label.into());
                self.labels.insert(label.into(), l);
                l
            }
        };
        let next = self.list.len() as u32;
        let id = *self.ids.entry((source, label, target)).or_insert(next);
        if id == next {
            self.list.push((source, label, target));
        }
        id
    }
}

/// Receives one garbage object's labelled edges; keeps those that stay in
/// the garbage set. Labels arrive folded (every index and key written `[_]`:
/// [`LabelPath::new`]), so that `.children[3]` and `.children[4]` are one
/// edge kind, whatever a key's `Debug` prints.
struct LabelSink<'a> {
    index: &'a AddrMap<u32>,
    source_type: u32,
    graph: &'a mut Csr,
    kinds: &'a mut EdgeKinds,
}

impl EdgeSink for LabelSink<'_> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        let Some(&t) = self.index.get(&(target.as_ptr() as usize)) else {
            return; // not garbage
        };
        // SAFETY: an edge is a live `Gc` handle: its target's header is
        // readable.
        let target_type = unsafe { target.as_ref() }.type_index();
        let kind = self.kinds.intern(self.source_type, path, target_type);
        self.graph.target.push(t);
        self.graph.kind.push(kind);
    }
}

/// Describes a garbage set found by the collector (dry run: every member is
/// still referenced; the collector holds their memory and no collection can
/// run). Skips members whose value went meanwhile.
pub(super) fn analyse(heap: &Heap, garbage: &[NonNull<Header>]) -> GarbageReport {
    let mut index = AddrMap::default();
    index.reserve(garbage.len());
    for (i, h) in garbage.iter().enumerate() {
        index.insert(h.as_ptr() as usize, i as u32);
    }
    let mut graph = Csr::default();
    let mut kinds = EdgeKinds::default();
    let mut node_type = Vec::with_capacity(garbage.len());
    let mut sizes = vec![(0usize, 0usize); heap.type_count() + 1];
    // Indices and keys folded as the tracer makes them.
    let mut path = LabelPath::new(true);
    for &header in garbage {
        graph.start.push(graph.target.len() as u32);
        // SAFETY: the collector holds a weak count on every member: its
        // header is readable.
        let h = unsafe { header.as_ref() };
        let type_index = h.type_index();
        node_type.push(type_index);
        let entry = heap.type_entry(type_index);
        let slot = &mut sizes[type_index as usize];
        slot.0 += 1;
        slot.1 += entry.info.alloc_size;
        // User code run meanwhile (`heap_size`, `Trace`; keys are folded,
        // not formatted) may drop handles: the pin keeps this value from
        // going meanwhile.
        // SAFETY: readable (see above).
        let Some(_pin) = (unsafe { ErasedGc::new(header) }) else {
            continue; // its value went meanwhile
        };
        // SAFETY: the value is intact and pinned.
        slot.1 += unsafe { (entry.info.heap_size)(header) };
        if !h.has(ACYCLIC) {
            let mut sink = LabelSink {
                index: &index,
                source_type: type_index,
                graph: &mut graph,
                kinds: &mut kinds,
            };
            path.clear();
            let mut tracer = Tracer::new(&mut sink, Some(&mut path));
            // SAFETY: the value is intact and pinned.
            unsafe { (entry.info.trace)(header, &mut tracer) };
        }
    }
    graph.start.push(graph.target.len() as u32);

    let name = |t: u32| (heap.type_entry(t).info.type_name)();
    let mut by_type: Vec<TypeCount> = (1..sizes.len())
        .filter(|&t| sizes[t].0 > 0)
        .map(|t| TypeCount {
            type_name: name(t as u32),
            count: sizes[t].0,
            size: sizes[t].1,
        })
        .collect();
    by_type.sort_by(|a, b| (b.count, b.size, a.type_name).cmp(&(a.count, a.size, b.type_name)));
    let edge_kind = |id: u32| {
        let (source, label, target) = kinds.list[id as usize];
        EdgeKind {
            source: name(source),
            label: kinds.label_list[label as usize].to_string(),
            target: name(target),
        }
    };
    let (cycles, kinds) = cycle_kinds(&graph, &node_type, name, edge_kind);
    GarbageReport {
        objects: garbage.len(),
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

/// An edge kind that could be made weak, in one kind's cycles.
struct Candidate {
    id: u32,
    edge: EdgeKind,
    /// Edges of this kind.
    count: usize,
    /// Distinct objects they point to.
    targets: usize,
}

/// Field names that say "this points back" (rule 4 in the module docs).
const BACK_POINTERS: [&str; 8] = [
    "parent",
    "prev",
    "previous",
    "owner",
    "back",
    "up",
    "container",
    "outer",
];

/// The edge kinds to make weak so that `graph` (one kind's cycles: every
/// node is on one) has no cycle left, chosen greedily by the rules in the
/// module docs.
fn suggest(graph: &Csr, edge_kind: impl Fn(u32) -> EdgeKind) -> Option<Vec<EdgeKind>> {
    let mut ids: Vec<u32> = graph.kind.clone();
    ids.sort_unstable();
    ids.dedup();
    let candidates: Vec<Candidate> = ids
        .into_iter()
        .map(|id| {
            let mut targets: Vec<u32> = (0..graph.target.len())
                .filter(|&e| graph.kind[e] == id)
                .map(|e| graph.target[e])
                .collect();
            let count = targets.len();
            targets.sort_unstable();
            targets.dedup();
            Candidate {
                id,
                edge: edge_kind(id),
                count,
                targets: targets.len(),
            }
        })
        .collect();
    let rank = |(left_a, a): &(usize, &Candidate), (left_b, b): &(usize, &Candidate)| {
        let not_back = |c: &Candidate| !BACK_POINTERS.contains(&c.edge.last_field());
        left_a
            .cmp(left_b)
            .then(b.edge.is_plain_field().cmp(&a.edge.is_plain_field()))
            // Fan-in (count / targets), higher first, without division.
            .then((b.count * a.targets).cmp(&(a.count * b.targets)))
            .then(not_back(a).cmp(&not_back(b)))
            .then(a.count.cmp(&b.count))
            .then(a.edge.cmp(&b.edge))
    };
    let (mut removed, mut chosen) = (Vec::new(), Vec::new());
    let mut left = graph.len();
    while left > 0 {
        let tried: Vec<(usize, &Candidate)> = candidates
            .iter()
            .filter(|c| !removed.contains(&c.id))
            .map(|c| {
                let mut with = removed.clone();
                with.push(c.id);
                (cyclic_nodes(graph, &with), c)
            })
            .collect();
        let (still_cyclic, best) = tried.into_iter().min_by(rank)?;
        removed.push(best.id);
        chosen.push(best.edge.clone());
        left = still_cyclic;
    }
    (!chosen.is_empty()).then_some(chosen)
}

/// Objects still on a cycle of `graph` once the edges of the `removed` kinds
/// are ignored.
fn cyclic_nodes(graph: &Csr, removed: &[u32]) -> usize {
    let keep = |e: usize| !removed.contains(&graph.kind[e]);
    let (comp, comps) = strongly_connected(graph, keep);
    let cyclic = cyclic_components(graph, &comp, comps, keep);
    comp.iter().filter(|&&c| cyclic[c as usize]).count()
}

/// Strongly connected components of the graph made of the edges `keep`
/// accepts (Tarjan's algorithm with an explicit stack). Returns each node's
/// component and the number of components.
fn strongly_connected(graph: &Csr, keep: impl Fn(usize) -> bool) -> (Vec<u32>, usize) {
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
fn cyclic_components(
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
    use crate::heap::heap;
    use crate::report::collect_dry_run;

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
            (h.state.get(), h.scratch.get(), h.strong.get(), h.weak.get())
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
}
