//! The edge kinds to make weak so that a kind of cycles has none left
//! (the rules are on [`Suggestion`](super::Suggestion)): a greedy choice,
//! measured per strongly connected component. Nothing here recurses.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::analysis::{cyclic_components, strongly_connected, Csr};
use super::EdgeKind;

/// An edge kind that could be made weak, in one kind's cycles.
struct Candidate {
    id: u32,
    edge: EdgeKind,
    /// Edges of this kind.
    count: usize,
    /// Distinct objects they point to.
    targets: usize,
}

/// Field names that say "this points back" (rule 4 on [`Suggestion`](super::Suggestion)).
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
/// node is on one) has no cycle left, chosen greedily by the rules on
/// [`Suggestion`](super::Suggestion).
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
pub(super) fn suggest(graph: &Csr, edge_kind: impl Fn(u32) -> EdgeKind) -> Option<Vec<EdgeKind>> {
    suggest_within(graph, edge_kind, SUGGEST_BUDGET)
}

/// [`suggest`] with a work budget.
pub(super) fn suggest_within(
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
