//! What is leaking, in one call: Eclipse MAT's *Leak Suspects* report
//! ([`leak_suspects`]), and the clustering of retainer chains it shares with
//! the leak checks for tests ([`super::LeakCheck`]).
//!
//! # How a suspect is found
//!
//! From the dominator tree of a fresh capture (an object *dominates*
//! another when every chain from outside the heap to the second passes
//! through the first; what an object dominates goes with it, its *retained
//! size*): every object held from outside the heap (a child of the tree's
//! virtual root) that retains at least a share of the heap is followed down
//! the tree, to its biggest child, for as long as that child retains most
//! ([`CONCENTRATED`]) of what its parent does, is itself above the share,
//! and is of another type (a list or a tree of one type is reported at its
//! top, not at the node deep inside it where the size finally spreads).
//! Where the search stops, the size has *accumulated*: that object is the
//! suspect (MAT's *accumulation point*). A map that keeps every request is
//! the typical one: thousands of small children, none of them big.
//!
//! What the suspect accumulates is then grouped: each object it dominates
//! directly is reached from it by the chain of edges that the breadth-first
//! search from the outside holders found (it passes through the suspect, by
//! domination), and those chains are grouped by their labels with map keys
//! and indices folded (`.expected[17]` and `.expected[18]` are both
//! `.expected[*]`) and by the type of the object at the end, as memlab
//! clusters the retainer traces of leaked objects.

use std::collections::HashMap;
use std::fmt;

use super::graph::HeapGraph;
use super::{Chain, ObjectInfo, Related};

/// A child that retains at least this share of what its parent retains
/// carries the parent's size down: the search for the accumulation point
/// goes on into it.
pub const CONCENTRATED: f64 = 0.8;

/// The share of the heap above which an object is a suspect, unless
/// [`leak_suspects_above`] says otherwise (MAT's default).
pub const DEFAULT_SHARE: f64 = 0.1;

/// The objects that hold a large share of this thread's heap, largest
/// first: [`leak_suspects_above`] with [`DEFAULT_SHARE`] (10%). See the
/// module documentation for how they are found.
///
/// ```
/// use rcycle::{Gc, Trace};
/// use std::cell::RefCell;
/// use std::collections::HashMap;
///
/// #[derive(Trace)]
/// struct Iq { body: String }
/// #[derive(Trace)]
/// struct Dispatcher { expected: RefCell<HashMap<u64, Gc<Iq>>> }
///
/// let d = Gc::new(Dispatcher { expected: RefCell::new(HashMap::new()) });
/// for id in 0..100 {
///     let iq = Gc::new(Iq { body: format!("<iq id='{id}'/>") });
///     d.expected.borrow_mut().insert(id, iq); // never removed: the leak
/// }
/// let suspects = rcycle::report::leak_suspects();
/// let first = &suspects.suspects()[0];
/// assert!(first.object.type_name.ends_with("Dispatcher"));
/// assert_eq!(first.accumulated[0].count, 100);
/// assert_eq!(first.accumulated[0].path, ".expected[*]");
/// print!("{suspects}");
/// ```
pub fn leak_suspects() -> LeakSuspects {
    leak_suspects_above(DEFAULT_SHARE)
}

/// [`leak_suspects`] with the share of the heap (between 0 and 1) an object
/// must retain to be a suspect.
///
/// ```
/// let big = rcycle::Gc::new(vec![0u8; 1000]);
/// let small = rcycle::Gc::new(1u8);
/// let all = rcycle::report::leak_suspects_above(0.0);
/// assert!(all.suspects().len() >= 2);
/// let none = rcycle::report::leak_suspects_above(1.01);
/// assert!(none.suspects().is_empty());
/// ```
pub fn leak_suspects_above(share: f64) -> LeakSuspects {
    let graph = HeapGraph::capture();
    suspects_in(&graph, share)
}

/// The report of [`leak_suspects`]. `Display` prints it in the house style;
/// [`dot`](Suspect::dot) draws a suspect's chain.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LeakSuspects {
    /// The bytes reachable from outside the heap (what the shares are of).
    pub total_size: usize,
    /// The share asked for.
    pub share: f64,
    suspects: Vec<Suspect>,
}

impl LeakSuspects {
    /// The suspects, largest retained size first.
    ///
    /// ```
    /// let held = rcycle::Gc::new(vec![0u64; 100]);
    /// let s = rcycle::report::leak_suspects();
    /// assert!(s.suspects().iter().any(|s| s.object.id == rcycle::report::ObjectId::of(&held)));
    /// ```
    pub fn suspects(&self) -> &[Suspect] {
        &self.suspects
    }
}

/// One accumulation point: an object that retains a large share of the heap
/// in many small pieces.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Suspect {
    /// The accumulation point.
    pub object: ObjectInfo,
    /// The bytes it retains (itself included).
    pub retained: usize,
    /// `retained` over the report's `total_size`.
    pub share: f64,
    /// The shortest chain from outside the heap to it.
    pub chain: Chain,
    /// What it accumulates: the objects it dominates directly, grouped by
    /// the folded path that reaches them from it and by their type, largest
    /// retained size first.
    pub accumulated: Vec<RetainerGroup>,
}

impl Suspect {
    /// A Graphviz picture of what refers to the suspect, two levels up
    /// ([`dot::backrefs`](super::dot::backrefs)).
    ///
    /// ```
    /// let held = rcycle::Gc::new(vec![0u64; 100]);
    /// let s = rcycle::report::leak_suspects();
    /// assert!(s.suspects()[0].dot().starts_with("digraph"));
    /// ```
    pub fn dot(&self) -> String {
        super::dot::backrefs(
            &[self.object.id],
            &super::dot::DotOptions {
                max_depth: 2,
                ..Default::default()
            },
        )
    }
}

/// Objects reached the same way: the same folded path of edge labels from
/// the object that holds them, and the same type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RetainerGroup {
    /// The type of the object the path starts from.
    pub holder_type: &'static str,
    /// The edge labels from the holder to the objects, map keys and indices
    /// folded (`.expected[*]`); links of a longer chain are joined with
    /// ` -> ` and the type of each object passed through.
    pub path: String,
    /// The objects' type.
    pub type_name: &'static str,
    /// How many objects.
    pub count: usize,
    /// What they retain together (their own sizes included), in bytes.
    pub size: usize,
    /// The line most of them were allocated at, with how many (cargo
    /// feature `sites`; `None` without it, or when no site was recorded).
    pub site: Option<(String, usize)>,
}

impl fmt::Display for RetainerGroup {
    /// `2000 leak_hunt::Iq (228000 bytes) through leak_hunt::Dispatcher.expected[*]`,
    /// and with feature `sites` `, 2000 allocated at src/dispatch.rs:42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({} bytes) through {}{}",
            self.count, self.type_name, self.size, self.holder_type, self.path
        )?;
        if let Some((site, n)) = &self.site {
            write!(f, ", {n} allocated at {site}")?;
        }
        Ok(())
    }
}

impl fmt::Display for LeakSuspects {
    /// ```text
    /// Leak suspects: objects retaining at least 10% of the 289000 bytes reachable from outside
    ///
    /// 1. leak_hunt::Dispatcher retains 288900 bytes (99.9% of the heap)
    ///    held: <held outside> leak_hunt::Dispatcher
    ///    accumulates: 2000 leak_hunt::Iq (288000 bytes, 99.6% of the heap) through leak_hunt::Dispatcher.expected[*]
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Leak suspects: objects retaining at least {}% of the {} bytes reachable from outside",
            percent(self.share),
            self.total_size
        )?;
        if self.suspects.is_empty() {
            return writeln!(f, "\nNo suspect.");
        }
        for (i, s) in self.suspects.iter().enumerate() {
            writeln!(
                f,
                "\n{}. {} retains {} bytes ({}% of the heap)",
                i + 1,
                s.object.type_name,
                s.retained,
                percent(s.share)
            )?;
            writeln!(f, "   held: {}", s.chain)?;
            for g in &s.accumulated {
                writeln!(
                    f,
                    "   accumulates: {} {} ({} bytes, {}% of the heap) through {}{}",
                    g.count,
                    g.type_name,
                    g.size,
                    percent(share_of(g.size, self.total_size)),
                    g.holder_type,
                    g.path
                )?;
                if let Some((site, n)) = &g.site {
                    writeln!(f, "     ({n} allocated at {site})")?;
                }
            }
        }
        Ok(())
    }
}

/// `part` over `total` (0 for an empty heap).
fn share_of(part: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

/// A share as a percentage with one decimal, trailing `.0` dropped.
fn percent(share: f64) -> String {
    let p = (share * 1000.0).round() / 10.0;
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

/// The suspects of a captured graph (see the module documentation).
fn suspects_in(graph: &HeapGraph, share: f64) -> LeakSuspects {
    let doms = graph.dominators();
    let total = doms.reachable_size();
    let threshold = (share * total as f64).ceil() as usize;
    let tree = graph.holder_tree();
    let mut points: Vec<usize> = doms
        .top_level()
        .filter(|&n| doms.retained(n).is_some_and(|r| r >= threshold.max(1)))
        .map(|top| {
            // Down the tree while one child retains most of its parent.
            let mut point = top;
            loop {
                let here = doms.retained(point).unwrap_or(0);
                let biggest = doms
                    .dominated(point)
                    .max_by_key(|&c| (doms.retained(c).unwrap_or(0), std::cmp::Reverse(c)));
                match biggest {
                    Some(c)
                        if doms.retained(c).unwrap_or(0) as f64 >= CONCENTRATED * here as f64
                            && doms.retained(c).unwrap_or(0) >= threshold
                            && graph.type_name(c) != graph.type_name(point) =>
                    {
                        point = c
                    }
                    _ => break point,
                }
            }
        })
        .collect();
    points.sort_by_key(|&p| (std::cmp::Reverse(doms.retained(p).unwrap_or(0)), p));
    points.dedup();
    let suspects = points
        .into_iter()
        .map(|point| {
            let retained = doms.retained(point).unwrap_or(0);
            let members: Vec<usize> = doms.dominated(point).collect();
            let accumulated = cluster(
                graph,
                &tree,
                &members,
                |n| n == point,
                |n| doms.retained(n).unwrap_or(0),
            );
            Suspect {
                object: graph.object(point),
                retained,
                share: share_of(retained, total),
                chain: chain_to(graph, &tree, point),
                accumulated,
            }
        })
        .collect();
    LeakSuspects {
        total_size: total,
        share,
        suspects,
    }
}

/// The shortest chain from an outside holder to `node`, from the holder tree.
fn chain_to(graph: &HeapGraph, tree: &[u32], node: usize) -> Chain {
    let mut links = Vec::new();
    let mut n = node;
    loop {
        let parent = tree[n];
        let label = if parent >= HolderTree::HOLDER {
            String::new()
        } else {
            graph.edge_text(parent as usize).to_string()
        };
        links.push(Related {
            object: graph.object(n),
            label,
        });
        if parent >= HolderTree::HOLDER {
            break;
        }
        n = graph.edge_source(parent as usize);
    }
    links.reverse();
    Chain { links }
}

/// The holder tree's sentinels ([`HeapGraph::holder_tree`]).
pub(crate) struct HolderTree;

impl HolderTree {
    /// An outside holder (a root of the search).
    pub(crate) const HOLDER: u32 = u32::MAX - 1;
    /// Not reached from outside (garbage, or only reached from garbage).
    pub(crate) const UNREACHED: u32 = u32::MAX;
}

/// Groups `members` by how they are reached: for each, the chain of edges
/// of the holder `tree` up to the first object for which `stop` is true (or
/// an outside holder), folded ([`fold_label`]) and joined, with the type of
/// the member; `size` gives what each member counts for. Members not
/// reached from outside are grouped under the path `<unreached>`. Largest
/// groups first (by size, then count, then path).
pub(crate) fn cluster(
    graph: &HeapGraph,
    tree: &[u32],
    members: &[usize],
    stop: impl Fn(usize) -> bool,
    size: impl Fn(usize) -> usize,
) -> Vec<RetainerGroup> {
    type Key = (&'static str, String, &'static str);
    let mut groups: HashMap<Key, (usize, usize, HashMap<String, usize>)> = HashMap::new();
    for &m in members {
        let mut parts = Vec::new();
        let mut n = m;
        let holder = loop {
            let parent = tree[n];
            if parent == HolderTree::UNREACHED {
                parts.clear();
                parts.push("<unreached>".to_string());
                break graph.type_name(n);
            }
            if parent == HolderTree::HOLDER {
                break graph.type_name(n);
            }
            let source = graph.edge_source(parent as usize);
            let mut part = fold_label(graph.edge_text(parent as usize));
            if n != m {
                part = format!("{part} -> {}", graph.type_name(n));
            }
            parts.push(part);
            n = source;
            if stop(n) {
                break graph.type_name(n);
            }
        };
        parts.reverse();
        let entry = groups
            .entry((holder, parts.concat(), graph.type_name(m)))
            .or_default();
        entry.0 += 1;
        entry.1 += size(m);
        if let Some(site) = site_of(graph, m) {
            *entry.2.entry(site).or_default() += 1;
        }
    }
    let mut groups: Vec<RetainerGroup> = groups
        .into_iter()
        .map(
            |((holder_type, path, type_name), (count, size, sites))| RetainerGroup {
                holder_type,
                path,
                type_name,
                count,
                size,
                // The most frequent line; of equals, the first by name.
                site: sites
                    .into_iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0))),
            },
        )
        .collect();
    groups.sort_by(|a, b| {
        (b.size, b.count).cmp(&(a.size, a.count)).then_with(|| {
            (a.holder_type, &a.path, a.type_name).cmp(&(b.holder_type, &b.path, b.type_name))
        })
    });
    groups
}

/// How the objects made since `baseline` are held ([`LeakReport::held_by`](super::LeakReport::held_by),
/// [`Snapshot::new_objects_held_by`](super::Snapshot::new_objects_held_by)): the objects new since `baseline`
/// that the holder tree reaches from an old object or from outside, grouped,
/// each with the size of the new objects behind it.
pub(crate) fn new_objects_held_by(
    graph: &HeapGraph,
    baseline: &super::Snapshot,
) -> Vec<RetainerGroup> {
    let is_new = baseline.new_nodes(graph);
    let tree = graph.holder_tree();
    // For each new node reached from outside, the first new node on its
    // chain (its *entry*), found with the chains' tails memoized: linear.
    const UNKNOWN: usize = usize::MAX;
    let mut entry = vec![UNKNOWN; graph.len()];
    let mut weight = vec![0usize; graph.len()];
    let mut path = Vec::new();
    for n in (0..graph.len()).filter(|&n| is_new[n]) {
        let mut m = n;
        let found = loop {
            if entry[m] != UNKNOWN {
                break entry[m];
            }
            let parent = tree[m];
            if parent == HolderTree::UNREACHED {
                break UNKNOWN; // only garbage reaches it (none is left)
            }
            if parent == HolderTree::HOLDER || !is_new[graph.edge_source(parent as usize)] {
                entry[m] = m;
                break m;
            }
            path.push(m);
            m = graph.edge_source(parent as usize);
        };
        for p in path.drain(..) {
            entry[p] = found;
        }
        if found != UNKNOWN {
            weight[found] += graph.size(n);
        }
    }
    let entries: Vec<usize> = (0..graph.len()).filter(|&n| entry[n] == n).collect();
    let mut groups = cluster(graph, &tree, &entries, |_| true, |n| weight[n]);
    for g in &mut groups {
        if g.path.is_empty() {
            g.holder_type = "<held outside>";
        }
    }
    groups
}

/// The allocation line of node `n`'s object (feature `sites`).
#[cfg(feature = "sites")]
fn site_of(graph: &HeapGraph, n: usize) -> Option<String> {
    let header = std::ptr::NonNull::new(graph.id(n).addr() as *mut crate::header::Header)?;
    // (Only the address is used: a lookup in the heap's site table.)
    let line = crate::runtime::query().heap.site_of(header)?;
    Some(format!("{}:{}", line.file(), line.line()))
}

#[cfg(not(feature = "sites"))]
fn site_of(_: &HeapGraph, _: usize) -> Option<String> {
    None
}

/// An edge label with what is inside each pair of brackets at the top level
/// replaced by `*` (indices and map keys; a key's text may hold brackets and
/// quoted strings of its own): `.expected[42]` and `.expected["a]"]` are
/// both `.expected[*]`.
pub(crate) fn fold_label(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in label.chars() {
        if depth == 0 {
            out.push(c);
            if c == '[' {
                depth = 1;
                out.push('*');
            }
            continue;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    out.push(']');
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fold_label;

    #[test]
    fn folds_indices_and_keys() {
        assert_eq!(fold_label(".expected[42]"), ".expected[*]");
        assert_eq!(fold_label(".a[1].b[\"x]y\"][3]"), ".a[*].b[*][*]");
        assert_eq!(fold_label("[[1, 2]]"), "[*]");
        assert_eq!(fold_label(".plain"), ".plain");
        assert_eq!(fold_label("[\"q\\\"]\"]"), "[*]");
    }
}
