//! Garbage cycles: what a collection would free, how many separate cycles
//! that is, which edges close them, and which field to make a `WeakGc`.
//!
//! [`collect_dry_run`] is Python's `gc.DEBUG_SAVEALL` without the saving: it
//! finds the garbage exactly as [`collect`](crate::collect()) would, reports
//! it, and leaves it where it is. [`collect_explained`] reports the garbage,
//! then frees it.
//!
//! How cycles are counted and grouped, and how the field to make weak is
//! chosen, is documented on [`Suggestion`] (the public face of this module).
//! Every graph algorithm here is iterative: nothing recurses.

mod analysis;
mod suggest;

use std::fmt;

use crate::runtime::query;
use crate::stats::CollectStats;
use analysis::analyse;

/// What a collection would free now, found without freeing it.
/// `Display` prints a summary.
///
/// ```
/// use rcycle::{Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Pair { other: RefCell<Option<Gc<Pair>>> }
///
/// let a = Gc::new(Pair { other: RefCell::new(None) });
/// let b = Gc::new(Pair { other: RefCell::new(Some(a.clone())) });
/// *a.other.borrow_mut() = Some(b);
/// drop(a);
/// let dry = rcycle::collect_dry_run();
/// assert_eq!((dry.garbage.objects, dry.garbage.cycles), (2, 1));
/// println!("{dry}");
/// assert_eq!(rcycle::collect(), 2); // the dry run left everything in place
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DryRun {
    /// Candidates examined as possible roots of garbage cycles.
    pub roots: usize,
    /// Objects in the subgraph reachable from the roots.
    pub examined: usize,
    /// The garbage found.
    pub garbage: GarbageReport,
}

/// The garbage a collection finds: its objects by type, its separate cycles,
/// the edges that close them, and which fields to make weak.
///
/// ```
/// let report = rcycle::collect_dry_run().garbage;
/// assert_eq!(report.objects, report.by_type.iter().map(|t| t.count).sum::<usize>());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GarbageReport {
    /// Garbage objects.
    pub objects: usize,
    /// Their total size in bytes (objects plus the heap memory their values
    /// own).
    pub size: usize,
    /// Garbage per type, most objects first (then largest, then by name).
    pub by_type: Vec<TypeCount>,
    /// Separate cycles: strongly connected components of the garbage with
    /// more than one object, or one object referring to itself. Garbage that
    /// is only *reachable from* a cycle belongs to none.
    pub cycles: usize,
    /// The cycles grouped by the set of types they are made of, most objects
    /// first.
    pub kinds: Vec<CycleKind>,
}

/// Objects of one type.
///
/// ```
/// let t = rcycle::report::TypeCount { type_name: "app::Node", count: 2, size: 96 };
/// assert_eq!(t.count, 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TypeCount {
    /// `std::any::type_name` of the values.
    pub type_name: &'static str,
    /// Number of objects.
    pub count: usize,
    /// Bytes, as in [`live_report`](crate::live_report).
    pub size: usize,
}

/// Garbage cycles made of the same set of types.
///
/// ```
/// let dry = rcycle::collect_dry_run();
/// for kind in &dry.garbage.kinds {
///     println!("{} cycles of {:?}", kind.cycles, kind.types);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CycleKind {
    /// The types of the objects on these cycles, sorted by name.
    pub types: Vec<&'static str>,
    /// Number of separate cycles of this kind.
    pub cycles: usize,
    /// Objects on them.
    pub objects: usize,
    /// The edges inside these cycles (those that close them), by kind, most
    /// first.
    pub edges: Vec<EdgeCount>,
    /// Which edges to make weak to break them all.
    pub suggestion: Option<Suggestion>,
}

/// A kind of edge: from a `source` object, through a field `label` (indices
/// and keys shown as `_`), to a `target` object. `Display` prints
/// `app::Node.parent -> app::Node`.
///
/// ```
/// let e = rcycle::report::EdgeKind { source: "app::Node", label: ".children[_]".into(), target: "app::Node" };
/// assert_eq!(e.to_string(), "app::Node.children[_] -> app::Node");
/// assert!(!e.is_plain_field());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EdgeKind {
    /// The type of the object holding the `Gc`.
    pub source: &'static str,
    /// The label path of the field, like `.parent`, `.children[_]` or
    /// `.by_id[_]`.
    pub label: String,
    /// The type of the object the `Gc` points to.
    pub target: &'static str,
}

impl EdgeKind {
    /// Whether the edge is a plain field (`.parent`, `.inner.next`): no index
    /// or key in its label.
    ///
    /// ```
    /// let e = rcycle::report::EdgeKind { source: "A", label: ".parent".into(), target: "A" };
    /// assert!(e.is_plain_field());
    /// ```
    pub fn is_plain_field(&self) -> bool {
        self.label.starts_with('.') && !self.label.contains('[')
    }

    /// How a suggestion names the place to change: `the field 'parent'`,
    /// `the elements of 'children'`.
    fn place(&self) -> String {
        let field = self.label.split('[').next().unwrap_or("");
        let field = field.strip_prefix('.').unwrap_or(field);
        match (self.is_plain_field(), field.is_empty()) {
            (true, _) => format!("the field '{field}'"),
            (false, false) => format!("the elements of '{field}'"),
            (false, true) if self.label.is_empty() => "the value itself".to_string(),
            (false, true) => "the elements of the value".to_string(),
        }
    }

    /// The last field name in the label (`parent` for `.inner.parent`).
    fn last_field(&self) -> &str {
        let field = self.label.split('[').next().unwrap_or("");
        field.rsplit('.').next().unwrap_or("")
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{} -> {}", self.source, self.label, self.target)
    }
}

/// An edge kind and how many edges of it there are.
///
/// ```
/// let e = rcycle::report::EdgeKind { source: "A", label: ".next".into(), target: "A" };
/// let c = rcycle::report::EdgeCount { edge: e, count: 3 };
/// assert_eq!(c.count, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EdgeCount {
    /// The kind of edge.
    pub edge: EdgeKind,
    /// Edges of that kind.
    pub count: usize,
}

/// Which edges to make weak to break every cycle of a kind. `Display` prints
/// `cycles through app::Node.parent -> app::Node: 7857 objects; consider
/// WeakGc for the field 'parent'`.
///
/// # Which field to make weak
///
/// The garbage subgraph is split into *cycles*: its strongly connected
/// components with more than one object, or one object referring to itself
/// (iterative Tarjan). Cycles made of the same set of types are one *kind*
/// (every parsed XML tree of an application is one kind, however big). Inside
/// the cycles of a kind, edges are grouped by *edge kind*: (source type, field
/// label with indices and keys replaced by `_`, target type), e.g.
/// `app::Node.children[_] -> app::Node`.
///
/// For each kind, the suggestion names the edge kinds whose edges, if they
/// were weak, would leave no cycle of that kind. Edge kinds are tried one at a
/// time (greedily, until no cycle is left), the best first:
///
/// 1. the one after whose removal the fewest objects are still on a cycle
///    (so one that breaks every cycle alone wins);
/// 2. a plain field (`.parent`) before an element of a collection
///    (`.children[_]`): one field is one change, and the usual owner of an
///    object is the collection that holds it, not its back pointer;
/// 3. the highest *fan-in*, edges per distinct target: the parent-pointer
///    pattern (many children point at one parent) before the 1:1 links;
/// 4. a field whose name says it points back: `parent`, `prev`, `previous`,
///    `owner`, `back`, `up`, `container`, `outer` (so a doubly linked list
///    gets `prev`, as in the usual `Rc`/`Weak` list);
/// 5. the fewest edges, then the source type, label and target type names
///    (so the answer is always the same for the same graph).
///
/// Acyclicity is checked with an iterative Tarjan over the kind's cycles
/// only: nothing recurses, however long the cycles. Rule 1 is measured per
/// cycle, and after each choice only the cycles it breaks are measured
/// again, so many separate cycles cost linear time. Past a fixed amount of
/// work (one huge cycle with thousands of edge kinds) the cycles left are
/// finished in linear time with the edge kinds that close them in a
/// depth-first search, best ranked first.
///
/// Indices and keys are folded as the tracer reports them (a map key is
/// never formatted for this), so a key whose `Debug` prints brackets is
/// folded like any other.
///
/// # Example
///
/// ```
/// use rcycle::{Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { parent: RefCell<Option<Gc<Node>>>, children: RefCell<Vec<Gc<Node>>> }
///
/// let root = Gc::new(Node { parent: RefCell::new(None), children: RefCell::new(vec![]) });
/// for _ in 0..2 {
///     let child = Gc::new(Node { parent: RefCell::new(Some(root.clone())), children: RefCell::new(vec![]) });
///     root.children.borrow_mut().push(child);
/// }
/// drop(root);
/// let dry = rcycle::collect_dry_run();
/// let s = dry.garbage.kinds[0].suggestion.as_ref().unwrap();
/// assert_eq!(s.edges[0].label, ".parent");
/// assert!(s.to_string().ends_with(": 3 objects; consider WeakGc for the field 'parent'"));
/// # rcycle::collect();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Suggestion {
    /// The edge kinds to make weak (usually one).
    pub edges: Vec<EdgeKind>,
    /// Objects on the cycles this would break.
    pub objects: usize,
}

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cycles through ")?;
        for (i, e) in self.edges.iter().enumerate() {
            let sep = if i == 0 { "" } else { " and " };
            write!(f, "{sep}{e}")?;
        }
        write!(f, ": {} objects; consider WeakGc for ", self.objects)?;
        for (i, e) in self.edges.iter().enumerate() {
            let sep = if i == 0 { "" } else { " and " };
            write!(f, "{sep}{}", e.place())?;
        }
        Ok(())
    }
}

impl GarbageReport {
    /// The suggestion of every kind of cycle, most objects first.
    ///
    /// ```
    /// for s in rcycle::collect_dry_run().garbage.suggestions() {
    ///     println!("{s}");
    /// }
    /// ```
    pub fn suggestions(&self) -> impl Iterator<Item = &Suggestion> + '_ {
        self.kinds.iter().filter_map(|k| k.suggestion.as_ref())
    }
}

impl fmt::Display for GarbageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} garbage objects, {} bytes, on or reachable from {} cycles.",
            self.objects, self.size, self.cycles
        )?;
        if self.by_type.is_empty() {
            return Ok(());
        }
        writeln!(f, "  Count     Size Type")?;
        for t in &self.by_type {
            writeln!(f, "{:7} {:8} {}", t.count, t.size, t.type_name)?;
        }
        for kind in &self.kinds {
            writeln!(
                f,
                "{} cycles ({} objects) of {}, closed by:",
                kind.cycles,
                kind.objects,
                kind.types.join(", ")
            )?;
            for e in &kind.edges {
                writeln!(f, "{:7} {}", e.count, e.edge)?;
            }
            if let Some(s) = &kind.suggestion {
                writeln!(f, "  {s}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dry run ({} roots, {} objects examined; nothing freed): {}",
            self.roots, self.examined, self.garbage
        )
    }
}

/// Finds the garbage a [`collect`](crate::collect()) would free now, exactly
/// as it would, and reports it without freeing, finalizing or dropping
/// anything (Python's `gc.DEBUG_SAVEALL`, without keeping the garbage): the
/// heap is left as it was, candidate buffer included, so a `collect()` right
/// after frees the same objects. Runs the `Trace` (with labels) and
/// `heap_size` impls of the objects it examines, and no collection callback.
/// Called while a collection is running (from a callback or a `Drop` impl),
/// it reports nothing.
///
/// ```
/// use rcycle::{Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Ring { next: RefCell<Option<Gc<Ring>>> }
///
/// let first = Gc::new(Ring { next: RefCell::new(None) });
/// let mut last = first.clone();
/// for _ in 0..3 {
///     last = Gc::new(Ring { next: RefCell::new(Some(last)) });
/// }
/// *first.next.borrow_mut() = Some(last);
/// drop(first);
/// let dry = rcycle::collect_dry_run();
/// assert_eq!((dry.garbage.objects, dry.garbage.cycles), (4, 1));
/// assert_eq!(dry.garbage.kinds[0].edges[0].count, 4);
/// assert_eq!(rcycle::collect(), 4);
/// ```
pub fn collect_dry_run() -> DryRun {
    let rt = query();
    let heap = &rt.heap;
    crate::collect::dry_run(heap, |roots, examined, garbage| DryRun {
        roots,
        examined,
        garbage: analyse(heap, garbage),
    })
    .unwrap_or_default()
}

/// Reports the garbage (as [`collect_dry_run`]), then collects (as
/// [`collect_with_stats`](crate::collect_with_stats)): what was freed, and
/// which fields made it garbage. The report describes the garbage before
/// finalizers ran, so it includes what a finalizer resurrected.
///
/// ```
/// use rcycle::{Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Pair { other: RefCell<Option<Gc<Pair>>> }
///
/// let a = Gc::new(Pair { other: RefCell::new(None) });
/// let b = Gc::new(Pair { other: RefCell::new(Some(a.clone())) });
/// *a.other.borrow_mut() = Some(b);
/// drop(a);
/// let (stats, garbage) = rcycle::report::collect_explained();
/// assert_eq!((stats.freed, garbage.objects), (2, 2));
/// let s = garbage.suggestions().next().unwrap().to_string();
/// assert!(s.ends_with("consider WeakGc for the field 'other'"));
/// ```
pub fn collect_explained() -> (CollectStats, GarbageReport) {
    let garbage = collect_dry_run().garbage;
    (crate::collect_with_stats(), garbage)
}
