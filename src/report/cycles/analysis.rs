//! The analysis behind a [`GarbageReport`]: the garbage traced again with
//! labels, its strongly connected components (iterative Tarjan), the kinds
//! of cycles, and the edges to make weak. Nothing here recurses.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::ptr::NonNull;

use super::{CycleKind, EdgeCount, EdgeKind, GarbageReport, Suggestion, TypeCount};
use crate::header::Header;
use crate::heap::Heap;
use crate::report::graph::Built;
use crate::report::tally::{sort_rows, RowOrder, TypeTally};

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

/// Edge visits [`suggest`] spends on its exact greedy choice (rule 1 for
/// every candidate of every cycle) before it finishes with a linear answer.
/// Real data models stay far below it: a kind's cycles have a handful of
/// edge kinds. (Exposed for tests, which lower it.)
const SUGGEST_BUDGET: usize = 1 << 22;

/// The edge kinds to make weak so that `graph` (one kind's cycles: every
/// node is on one) has no cycle left, chosen greedily by the rules in the
/// module docs.
///
/// Rule 1 is computed per strongly connected component: removing an edge
/// kind only changes the components holding edges of that kind, so each
/// component measures, for each of its edge kinds, how many of its objects
/// removing that kind takes off cycles, and after each choice only the
/// components holding the chosen kind are split and measured again. The
/// best candidate is kept at the front of an ordered set. So the step costs
/// (edge kinds of a component) x (its edges) per component measured, plus
/// a logarithm per choice, instead of (edge kinds)^2 x (edges) for the whole
/// graph: many separate cycles with edge kinds of their own (map keys that
/// defeated label folding, issue 19) cost linear time. Past
/// [`SUGGEST_BUDGET`] edge visits (one huge cycle with thousands of edge
/// kinds), the components left are finished in linear time: the kinds of
/// the back edges of a depth-first search, which leave them acyclic.
fn suggest(graph: &Csr, edge_kind: impl Fn(u32) -> EdgeKind) -> Option<Vec<EdgeKind>> {
    suggest_within(graph, edge_kind, SUGGEST_BUDGET)
}

/// [`suggest`] with a work budget.
fn suggest_within(
    graph: &Csr,
    edge_kind: impl Fn(u32) -> EdgeKind,
    budget: usize,
) -> Option<Vec<EdgeKind>> {
    // Candidates: one per edge kind, with its edge count and distinct
    // targets, in one sort of the edges.
    let mut pairs: Vec<(u32, u32)> = (0..graph.target.len())
        .map(|e| (graph.kind[e], graph.target[e]))
        .collect();
    pairs.sort_unstable();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (i, &(id, target)) in pairs.iter().enumerate() {
        if candidates.last().is_none_or(|c| c.id != id) {
            candidates.push(Candidate {
                id,
                edge: edge_kind(id),
                count: 0,
                targets: 0,
            });
        }
        let c = candidates.last_mut().expect("just pushed");
        c.count += 1;
        if i == 0 || pairs[i - 1] != (id, target) {
            c.targets += 1;
        }
    }
    if candidates.is_empty() {
        return None;
    }
    // Rules 2 to 5 are fixed per candidate: rank them once.
    let not_back = |c: &Candidate| !BACK_POINTERS.contains(&c.edge.last_field());
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        b.edge
            .is_plain_field()
            .cmp(&a.edge.is_plain_field())
            // Fan-in (count / targets), higher first, without division.
            .then((b.count * a.targets).cmp(&(a.count * b.targets)))
            .then(not_back(a).cmp(&not_back(b)))
            .then(a.count.cmp(&b.count))
            .then(a.edge.cmp(&b.edge))
    });
    let mut static_rank = vec![0u32; candidates.len()];
    for (rank, &c) in order.iter().enumerate() {
        static_rank[c] = rank as u32;
    }
    // Candidate of each edge kind id (ids are sorted).
    let candidate_of = |id: u32| {
        candidates
            .binary_search_by_key(&id, |c| c.id)
            .expect("every edge's kind is a candidate")
    };
    let edge_candidate: Vec<u32> = graph.kind.iter().map(|&k| candidate_of(k) as u32).collect();

    let mut state = Greedy {
        graph,
        edge_candidate: &edge_candidate,
        removed: vec![false; candidates.len()],
        gain: vec![0; candidates.len()],
        in_components: vec![Vec::new(); candidates.len()],
        components: Vec::new(),
        local: vec![u32::MAX; graph.len()],
        work: 0,
        budget,
    };
    // The cycles as the search starts: every node is on one.
    let all: Vec<u32> = (0..graph.len() as u32).collect();
    state.add_components(&all);
    let mut left = graph.len();
    let mut best_first: BTreeSet<(Reverse<usize>, u32)> = (0..candidates.len())
        .map(|c| (Reverse(state.gain[c]), static_rank[c]))
        .collect();
    let mut chosen = Vec::new();
    while left > 0 {
        if state.work > state.budget {
            // Linear finish: the back edges' kinds of what is left, best
            // ranked first.
            let mut rest: Vec<usize> = state.back_edge_candidates();
            rest.sort_by_key(|&c| static_rank[c]);
            chosen.extend(rest.into_iter().map(|c| candidates[c].edge.clone()));
            break;
        }
        let (_, rank) = best_first.pop_first()?;
        let best = order[rank as usize];
        state.removed[best] = true;
        chosen.push(candidates[best].edge.clone());
        left -= state.gain[best];
        // Split the components the chosen kind ran through; the gains of
        // their other kinds change.
        for comp in std::mem::take(&mut state.in_components[best]) {
            let Some(component) = state.components[comp as usize].take() else {
                continue;
            };
            for &(c, gain) in &component.gains {
                let c = c as usize;
                if !state.removed[c] {
                    best_first.remove(&(Reverse(state.gain[c]), static_rank[c]));
                    state.gain[c] -= gain;
                    best_first.insert((Reverse(state.gain[c]), static_rank[c]));
                }
            }
            let before: Vec<usize> = component.gains.iter().map(|&(c, _)| c as usize).collect();
            let old: Vec<usize> = before.iter().map(|&c| state.gain[c]).collect();
            state.add_components(&component.nodes);
            for (&c, old) in before.iter().zip(old) {
                if !state.removed[c] && state.gain[c] != old {
                    best_first.remove(&(Reverse(old), static_rank[c]));
                    best_first.insert((Reverse(state.gain[c]), static_rank[c]));
                }
            }
        }
    }
    (!chosen.is_empty()).then_some(chosen)
}

/// One cycle (strongly connected component) of the greedy search, with the
/// objects that removing each of its edge kinds would take off cycles.
struct Component {
    nodes: Vec<u32>,
    /// (candidate, objects of this component no longer on a cycle without
    /// the candidate's edges).
    gains: Vec<(u32, usize)>,
}

/// The state of [`suggest`]'s greedy search.
struct Greedy<'g> {
    graph: &'g Csr,
    /// The candidate of each edge.
    edge_candidate: &'g [u32],
    removed: Vec<bool>,
    /// Per candidate: objects its removal takes off cycles (sum over the
    /// components it runs through).
    gain: Vec<usize>,
    /// Per candidate: the components holding its edges (some since split).
    in_components: Vec<Vec<u32>>,
    components: Vec<Option<Component>>,
    /// Scratch: a node's index in the component being built, or `u32::MAX`.
    local: Vec<u32>,
    /// Edge visits so far.
    work: usize,
    budget: usize,
}

impl Greedy<'_> {
    /// The graph induced by `nodes`, without the edges of removed kinds and
    /// of `without`, renumbered `0..nodes.len()`; each edge's kind is its
    /// candidate.
    fn induced(&mut self, nodes: &[u32], without: Option<u32>) -> Csr {
        for (i, &n) in nodes.iter().enumerate() {
            self.local[n as usize] = i as u32;
        }
        let mut sub = Csr::default();
        for &n in nodes {
            sub.start.push(sub.target.len() as u32);
            for e in self.graph.edges(n as usize) {
                let c = self.edge_candidate[e];
                let t = self.local[self.graph.target[e] as usize];
                if t != u32::MAX && !self.removed[c as usize] && Some(c) != without {
                    sub.target.push(t);
                    sub.kind.push(c);
                }
            }
            self.work += self.graph.edges(n as usize).len() + 1;
        }
        sub.start.push(sub.target.len() as u32);
        for &n in nodes {
            self.local[n as usize] = u32::MAX;
        }
        sub
    }

    /// Splits `nodes` into the cycles left (without the removed kinds),
    /// measures each kind's gain in each, and adds them.
    fn add_components(&mut self, nodes: &[u32]) {
        let sub = self.induced(nodes, None);
        let (comp, comps) = strongly_connected(&sub, |_| true);
        let cyclic = cyclic_components(&sub, &comp, comps, |_| true);
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); comps];
        for (i, &c) in comp.iter().enumerate() {
            if cyclic[c as usize] {
                members[c as usize].push(nodes[i]);
            }
        }
        for members in members.into_iter().filter(|m| !m.is_empty()) {
            let id = self.components.len() as u32;
            let inner = self.induced(&members, None);
            let mut kinds: Vec<u32> = inner.kind.clone();
            kinds.sort_unstable();
            kinds.dedup();
            let mut gains = Vec::with_capacity(kinds.len());
            for c in kinds {
                // Past the budget, gains are not measured any more (the
                // search is about to finish linearly).
                let gain = if self.work > self.budget {
                    0
                } else {
                    let keep = |e: usize| inner.kind[e] != c;
                    self.work += inner.target.len() + members.len();
                    let (comp, comps) = strongly_connected(&inner, keep);
                    let cyclic = cyclic_components(&inner, &comp, comps, keep);
                    members.len() - comp.iter().filter(|&&k| cyclic[k as usize]).count()
                };
                self.gain[c as usize] += gain;
                self.in_components[c as usize].push(id);
                gains.push((c, gain));
            }
            self.components.push(Some(Component {
                nodes: members,
                gains,
            }));
        }
    }

    /// The candidates of the back edges of a depth-first search of every
    /// component left: without them, no cycle is left.
    fn back_edge_candidates(&mut self) -> Vec<usize> {
        let mut found = vec![false; self.removed.len()];
        let components: Vec<Vec<u32>> = self
            .components
            .iter_mut()
            .filter_map(|c| c.take().map(|c| c.nodes))
            .collect();
        for nodes in components {
            let sub = self.induced(&nodes, None);
            // 0: unseen, 1: on the search path, 2: done.
            let mut state = vec![0u8; sub.len()];
            let mut frames: Vec<(usize, usize)> = Vec::new();
            for root in 0..sub.len() {
                if state[root] != 0 {
                    continue;
                }
                state[root] = 1;
                frames.push((root, sub.start[root] as usize));
                while let Some(top) = frames.last_mut() {
                    let v = top.0;
                    if top.1 < sub.start[v + 1] as usize {
                        let e = top.1;
                        top.1 += 1;
                        let w = sub.target[e] as usize;
                        match state[w] {
                            0 => {
                                state[w] = 1;
                                frames.push((w, sub.start[w] as usize));
                            }
                            1 => found[sub.kind[e] as usize] = true,
                            _ => {}
                        }
                    } else {
                        state[v] = 2;
                        frames.pop();
                    }
                }
            }
        }
        (0..found.len())
            .filter(|&c| found[c] && !self.removed[c])
            .collect()
    }
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
