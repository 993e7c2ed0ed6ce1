//! Tracing: how the collector (and, later, the reporter) learns which `Gc`
//! handles a value owns.
//!
//! Every value stored in a [`Gc`](crate::Gc) implements [`Trace`]. The
//! collector calls [`Trace::trace`] to enumerate the value's outgoing edges;
//! each edge arrives with a *label path* (field names, indices, map keys) that
//! the collector ignores and the leak reporter uses to say *which field* keeps
//! an object alive.

mod label_path;
mod std_impls;
mod tracer;

pub(crate) use label_path::{LabelPath, TemplatePart};
pub use tracer::Tracer;

use std::fmt;
use std::ptr::NonNull;

use crate::header::Header;

/// A value that can tell the collector which [`Gc`](crate::Gc) handles it owns.
///
/// Use `#[derive(Trace)]` for your own types: it is the safe path. Types that
/// hold no `Gc` at all get a trivial implementation (all integer, float, string
/// and other leaf types of `std` already have one).
///
/// # Safety
///
/// `trace` must report, through the [`Tracer`], **every `Gc` the value owns
/// at most once** and **no `Gc` it does not own**:
///
/// * *Over-reporting* (reporting an edge twice, or reporting a `Gc` that lives
///   somewhere else) makes the collector believe there are fewer outside
///   references than there are, so it can free memory that is still in use.
///   That is undefined behaviour, which is why the trait is `unsafe`.
/// * *Under-reporting* (not reporting an edge) is safe: the target only looks
///   held from outside the heap, so a cycle through that edge is never freed
///   (it leaks, exactly as with `Rc`).
///
/// `trace` must not create, clone, drop or move `Gc` handles, and must not
/// mutate anything, neither the value nor anything it reaches: it runs in
/// the middle of a collection. In particular it must not borrow a `RefCell`
/// mutably: the collector reads the content of every `RefCell` it traces
/// without taking a borrow guard, so a mutable borrow started meanwhile
/// would alias it (derived impls only call the fields' impls). A value that
/// cannot be inspected right now (a `RefCell` that is mutably borrowed) calls
/// [`Tracer::untraceable`]; the collector then treats the object as held from
/// outside, which is always safe.
///
/// # Example
///
/// ```
/// use rcycle::{Gc, Trace, Tracer};
///
/// struct Pair {
///     left: Gc<u32>,
///     right: Option<Gc<u32>>,
///     hits: u64, // holds no Gc: nothing to report
/// }
///
/// // SAFETY: reports each owned `Gc` exactly once and nothing else.
/// unsafe impl Trace for Pair {
///     fn trace(&self, tracer: &mut Tracer<'_>) {
///         tracer.field("left", &self.left);
///         tracer.field("right", &self.right);
///     }
/// }
///
/// let p = Gc::new(Pair { left: Gc::new(1), right: None, hits: 0 });
/// assert_eq!(*p.left, 1);
/// ```
pub unsafe trait Trace {
    /// Reports every `Gc` this value owns to `tracer`, with a label.
    ///
    /// ```
    /// use rcycle::{Gc, Trace, Tracer};
    /// struct Wrapper(Vec<Gc<String>>);
    /// // SAFETY: the Vec's impl reports each element once.
    /// unsafe impl Trace for Wrapper {
    ///     fn trace(&self, tracer: &mut Tracer<'_>) {
    ///         tracer.field("0", &self.0);
    ///     }
    /// }
    /// # let _ = Gc::new(Wrapper(vec![]));
    /// ```
    fn trace(&self, tracer: &mut Tracer<'_>);

    /// Whether a value of this type can ever own a `Gc`, directly or not.
    ///
    /// A type that cannot is never part of a cycle, so its objects are never
    /// buffered as cycle candidates. Returning `false` for a type that does own
    /// a `Gc` is safe but may leak cycles through it; the default is `true`.
    ///
    /// ```
    /// use rcycle::Trace;
    /// assert!(!<u64 as Trace>::may_contain_gc());
    /// assert!(<Option<rcycle::Gc<u64>> as Trace>::may_contain_gc());
    /// ```
    #[inline(always)]
    fn may_contain_gc() -> bool
    where
        Self: Sized,
    {
        true
    }

    /// Whether [`finalize`](Trace::finalize) does anything for this type.
    ///
    /// The collector skips its finalization pass (and the recount that follows
    /// it) when no object in a garbage set has a finalizer. Derived impls
    /// return `true` under `#[trace(finalize)]`.
    ///
    /// ```
    /// use rcycle::Trace;
    /// assert!(!<String as Trace>::has_finalizer());
    /// ```
    #[inline(always)]
    fn has_finalizer() -> bool
    where
        Self: Sized,
    {
        false
    }

    /// Runs once, before the value of a *cyclic garbage* object is dropped,
    /// while every object of its garbage set is still intact (PEP 442).
    ///
    /// A finalizer may resurrect objects by storing a clone of a `Gc`
    /// somewhere reachable; the collector then keeps whatever is reachable
    /// from it and frees the rest. It is not called for objects freed by
    /// their count reaching zero (that is what `Drop` is for), and it is never
    /// called twice for one object.
    ///
    /// ```
    /// use rcycle::{Finalize, Trace};
    /// #[derive(Trace)]
    /// #[trace(finalize)]
    /// struct Conn { id: u32 }
    /// impl Finalize for Conn {
    ///     fn finalize(&self) { println!("closing {}", self.id); }
    /// }
    /// assert!(<Conn as Trace>::has_finalizer());
    /// ```
    #[inline(always)]
    fn finalize(&self) {}

    /// Bytes of heap memory this value owns *outside* its own `Gc` object
    /// (string and vector buffers, map tables, boxes), not counting other
    /// `Gc` objects. The leak reporter adds it to the object's size, so a
    /// node holding a 1 MB buffer is not reported as 48 bytes.
    ///
    /// The default adds up the `heap_size` of every part the value reports
    /// through [`Tracer::field`], [`Tracer::index`] and [`Tracer::key`] (so
    /// derived impls need nothing more); containers with a buffer of their
    /// own override it. It is only called when a report is asked for.
    ///
    /// It is safe code, and reports allow for anything it does: it may drop
    /// handles, allocate, `collect()` or ask for another report (the report
    /// holds every object it listed, skips those freed meanwhile, and keeps
    /// the measured value alive while this runs). It should be quick and
    /// free of side effects all the same: it runs once per object and per
    /// report.
    ///
    /// ```
    /// use rcycle::Trace;
    /// #[derive(Trace)]
    /// struct Doc { title: String, body: Vec<u8> }
    /// let d = Doc { title: String::with_capacity(10), body: Vec::with_capacity(1000) };
    /// assert_eq!(d.heap_size(), 1010);
    /// ```
    fn heap_size(&self) -> usize {
        Tracer::measure(self)
    }

    /// This value's [`heap_size`](Trace::heap_size), if measuring it runs
    /// no user code: only this crate's and `std`'s code, which drops, frees
    /// and allocates nothing, and `#[derive(Trace)]`'s sum of its fields'
    /// answers. `None` (the default) when some part is measured by an impl
    /// of yours, or the value nests deeper than `depth` parts (each part
    /// asks its own parts with `depth - 1`: no unbounded recursion, a long
    /// `Box` list included). Where it is `Some(n)`, `n == heap_size()`. A
    /// report measures such a value without pinning it. Not for your impls:
    /// returning `Some` from code that could drop a handle, allocate or
    /// collect breaks the contract of this `unsafe` trait.
    #[doc(hidden)]
    #[inline(always)]
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let _ = depth;
        None
    }

    /// `elements` as the headers of their objects, if `Self` is a `Gc` to
    /// a sized value (a thin pointer to its object, whose header comes
    /// first): a slice of handles read as the run of edges it reports,
    /// without a copy. `None` for every other type. Not for your impls.
    #[doc(hidden)]
    #[inline(always)]
    fn __gc_headers(elements: &[Self]) -> Option<&[NonNull<u8>]>
    where
        Self: Sized,
    {
        let _ = elements;
        None
    }

    /// Whether this value's `trace` reports nothing, ever: true for the
    /// `std` leaf types (integers, strings, ...) and derived types with no
    /// traced field, so that a reporting tracer skips them without a
    /// labelled trace. Not for your impls (`false`, the default, is always
    /// right).
    #[doc(hidden)]
    #[inline(always)]
    fn __owns_no_gc(&self) -> bool {
        false
    }

    /// The header of the object this value is a strong handle to, if it
    /// is a `Gc` (`None` for every other type): what its `trace` reports,
    /// read without a trace, so that a reporting tracer takes a sequence
    /// of handles as a run of edges ([`Tracer::elements`]). Not for your
    /// impls.
    #[doc(hidden)]
    #[inline(always)]
    fn __gc_target(&self) -> Option<NonNull<u8>> {
        None
    }
}

/// The depth [`Trace::__inert_heap_size`] is asked with: deeper than
/// real values nest their parts (a `Box` list longer than this is measured
/// the pinned way).
pub(crate) const INERT_DEPTH: u32 = 32;

/// The user-facing half of a finalizer: implement it and add
/// `#[trace(finalize)]` next to `#[derive(Trace)]`.
///
/// See [`Trace::finalize`] for when it runs.
///
/// ```
/// use rcycle::{collect, Finalize, Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// #[trace(finalize)]
/// struct Node { me: RefCell<Option<Gc<Node>>> }
/// impl Finalize for Node {
///     fn finalize(&self) { println!("node in a garbage cycle"); }
/// }
///
/// let n = Gc::new(Node { me: RefCell::new(None) });
/// *n.me.borrow_mut() = Some(n.clone());
/// drop(n);
/// assert_eq!(collect(), 1);
/// ```
pub trait Finalize {
    /// Called once, while the whole garbage set is still intact.
    ///
    /// ```
    /// # use rcycle::Finalize;
    /// struct X;
    /// impl Finalize for X { fn finalize(&self) {} }
    /// X.finalize();
    /// ```
    fn finalize(&self);
}

/// One step of the path from an object to a `Gc` it owns: a field name, an
/// index, or a map key.
///
/// ```
/// use rcycle::Label;
/// assert_eq!(Label::Field("parent").to_string(), ".parent");
/// assert_eq!(Label::Index(3).to_string(), "[3]");
/// assert_eq!(Label::Key(&"id-7").to_string(), "[\"id-7\"]");
/// ```
#[derive(Clone, Copy)]
pub enum Label<'a> {
    /// A named field (or a tuple field, named by its position).
    Field(&'static str),
    /// A position in a sequence.
    Index(usize),
    /// A key of a map (or an element of a set), shown with its `Debug` form.
    Key(&'a dyn fmt::Debug),
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Field(name) => write!(f, ".{name}"),
            Label::Index(i) => write!(f, "[{i}]"),
            Label::Key(k) => write!(f, "[{k:?}]"),
        }
    }
}

impl fmt::Debug for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What receives the edges a [`Tracer`] collects. The collector and the
/// reporter each have one; users never implement it.
pub(crate) trait EdgeSink {
    /// One edge to the object whose header is `target`; `path` is the label
    /// path from the traced value to the `Gc`, e.g. `.expected[42]` (empty
    /// unless recording).
    fn edge(&mut self, target: NonNull<Header>, path: &str);

    /// The same edge, with the whole label path (only when the tracer
    /// records one). The heap graph's capture reads the path's indices from
    /// it ([`LabelPath::template`]); every other sink takes the text.
    fn edge_path(&mut self, target: NonNull<Header>, path: &LabelPath) {
        self.edge(target, path.as_str())
    }

    /// A run of edges, the elements `first..first + targets.len()` of a
    /// sequence of `Gc`s, traced with a template `path` whose last label
    /// is the index `first`: the same edges as one
    /// [`edge_path`](Self::edge_path) per element, with the last index
    /// counting up. The heap graph's capture takes the run at once.
    fn edge_run(&mut self, first: usize, targets: &[NonNull<Header>], path: &mut LabelPath) {
        for (k, &target) in targets.iter().enumerate() {
            path.set_last_index(first + k);
            self.edge_path(target, path);
        }
        path.set_last_index(first);
    }
}
