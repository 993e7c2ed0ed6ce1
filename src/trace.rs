//! Tracing: how the collector (and, later, the reporter) learns which `Gc`
//! handles a value owns.
//!
//! Every value stored in a [`Gc`](crate::Gc) implements [`Trace`]. The
//! collector calls [`Trace::trace`] to enumerate the value's outgoing edges;
//! each edge arrives with a *label path* (field names, indices, map keys) that
//! the collector ignores and the leak reporter uses to say *which field* keeps
//! an object alive.

mod std_impls;

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

    /// Whether [`heap_size`](Trace::heap_size) runs no code but this
    /// crate's own, which drops, frees and allocates nothing: true only for
    /// the leaf types of `std` (integers, strings, ...). A report then
    /// measures the value without pinning it. Not for your impls: returning
    /// `true` for a type whose `heap_size` could drop a handle, allocate or
    /// collect breaks the contract of this `unsafe` trait (the value could
    /// be dropped while it is measured).
    #[doc(hidden)]
    #[inline(always)]
    fn __heap_size_is_inert() -> bool
    where
        Self: Sized,
    {
        false
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

/// The label path a reporting [`Tracer`] builds: the labels from the traced
/// value down to the current part, as text, and where each label starts
/// (so that a label is taken off again without re-reading the text).
///
/// With `fold`, indices and keys are all written `[_]` (the dry run's edge
/// kinds): the folding follows the labels as the tracer made them, whatever
/// a key's `Debug` prints, and no key is formatted at all.
///
/// As a *template* ([`LabelPath::template`]), no text is kept while
/// tracing: the labels are a stack of [`TemplatePart`]s (a field's
/// `&'static str`, an index's value, or "a key", never formatted: no user
/// code runs), a push or a pop being one `Vec` operation. The heap graph's
/// capture reads the parts ([`parts`](Self::parts)), compares them with the
/// previous edge's, and writes the text (indices as `[#]`, keys as `[_]`)
/// only when they differ: it stores `.kids[#]` once and each edge's index
/// as a number.
#[derive(Default)]
pub(crate) struct LabelPath {
    text: String,
    starts: Vec<usize>,
    fold: bool,
    template: bool,
    /// Template mode: the labels, outermost first.
    parts: Vec<TemplatePart>,
    /// Template mode: how many of `parts` are keys.
    keys: usize,
}

/// One label of a template [`LabelPath`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum TemplatePart {
    Field(&'static str),
    Index(usize),
    Key,
}

impl TemplatePart {
    /// Whether two parts write the same template text (any two indices
    /// do; fields are compared by address first).
    #[inline]
    pub(crate) fn same_text(self, other: TemplatePart) -> bool {
        match (self, other) {
            (TemplatePart::Field(a), TemplatePart::Field(b)) => {
                (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
            }
            (TemplatePart::Index(_), TemplatePart::Index(_)) => true,
            (TemplatePart::Key, TemplatePart::Key) => true,
            _ => false,
        }
    }
}

impl LabelPath {
    /// An empty path; `fold` writes every index and key as `[_]`.
    pub(crate) fn new(fold: bool) -> Self {
        LabelPath {
            fold,
            ..LabelPath::default()
        }
    }

    /// An empty template path: labels kept as [`TemplatePart`]s
    /// ([`parts`](Self::parts)), keys never formatted
    /// ([`has_key`](Self::has_key)). Its [`as_str`](Self::as_str) is empty.
    pub(crate) fn template() -> Self {
        LabelPath {
            template: true,
            ..LabelPath::default()
        }
    }

    /// Empties the path (after a panic in user code left labels on it).
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.starts.clear();
        self.parts.clear();
        self.keys = 0;
    }

    /// Template mode: the labels, outermost first.
    pub(crate) fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// Whether this is a template path ([`template`](Self::template)).
    pub(crate) fn is_template(&self) -> bool {
        self.template
    }

    /// Template mode: whether the path goes through a map key.
    pub(crate) fn has_key(&self) -> bool {
        self.keys != 0
    }

    /// The path as text, e.g. `.expected[42]` (empty in template mode).
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Template mode: sets the index of the last label, an index.
    pub(crate) fn set_last_index(&mut self, index: usize) {
        debug_assert!(self.template);
        if let Some(TemplatePart::Index(i)) = self.parts.last_mut() {
            *i = index;
        }
    }

    /// Appends one label.
    fn push(&mut self, label: Label<'_>) {
        if self.template {
            self.parts.push(match label {
                Label::Field(name) => TemplatePart::Field(name),
                Label::Index(i) => TemplatePart::Index(i),
                Label::Key(_) => {
                    self.keys += 1;
                    TemplatePart::Key
                }
            });
            return;
        }
        let start = self.text.len();
        self.starts.push(start);
        match label {
            Label::Index(_) | Label::Key(_) if self.fold => self.text.push_str("[_]"),
            // What `Display` writes, without the formatting machinery.
            Label::Field(name) => {
                self.text.push('.');
                self.text.push_str(name);
            }
            // Writing to a `String` cannot fail.
            _ => {
                let _ = fmt::Write::write_fmt(&mut self.text, format_args!("{label}"));
            }
        }
    }

    /// Takes the last label off.
    fn pop(&mut self) {
        if self.template {
            if let Some(TemplatePart::Key) = self.parts.pop() {
                self.keys -= 1;
            }
            return;
        }
        if let Some(start) = self.starts.pop() {
            self.text.truncate(start);
        }
    }
}

/// Receives the edges a value reports from [`Trace::trace`].
///
/// `Tracer` is handed to you; you never build one. Call [`field`](Self::field),
/// [`index`](Self::index) or [`key`](Self::key) for each part of your value
/// that may own a `Gc`.
///
/// ```
/// use rcycle::{Gc, Trace, Tracer};
/// use std::collections::HashMap;
///
/// struct Registry { by_id: HashMap<u32, Gc<String>>, newest: Option<Gc<String>> }
/// // SAFETY: each owned Gc is reported once.
/// unsafe impl Trace for Registry {
///     fn trace(&self, tracer: &mut Tracer<'_>) {
///         tracer.field("by_id", &self.by_id); // the map's impl labels each key
///         tracer.field("newest", &self.newest);
///     }
/// }
/// # let _ = Gc::new(Registry { by_id: HashMap::new(), newest: None });
/// ```
pub struct Tracer<'a> {
    sink: &'a mut dyn EdgeSink,
    /// `Some` when the caller wants label paths (the reporter); `None` for the
    /// collector, which must not pay for formatting keys.
    /// Labels are appended to one buffer and taken off again on the way
    /// back, so recording a path allocates nothing per field.
    path: Option<&'a mut LabelPath>,
    /// `Some` in *size mode* ([`Trace::heap_size`]'s default): each field
    /// adds its own `heap_size` here instead of being traced.
    size: Option<usize>,
    /// Neither labels nor sizes: the collector's mode, checked first so
    /// that each field and edge costs it one test.
    plain: bool,
    complete: bool,
}

/// The sink of size mode: it never receives an edge (fields are measured,
/// not traced).
struct NoEdges;

impl EdgeSink for NoEdges {
    fn edge(&mut self, _: NonNull<Header>, _: &str) {}
}

impl<'a> Tracer<'a> {
    pub(crate) fn new(sink: &'a mut dyn EdgeSink, path: Option<&'a mut LabelPath>) -> Self {
        Tracer {
            plain: path.is_none(),
            sink,
            path,
            size: None,
            complete: true,
        }
    }

    /// The heap memory owned by the parts of `value` it reports through
    /// `field`, `index` and `key`.
    fn measure<T: Trace + ?Sized>(value: &T) -> usize {
        let mut sink = NoEdges;
        let mut tracer = Tracer {
            sink: &mut sink,
            path: None,
            size: Some(0),
            plain: false,
            complete: true,
        };
        value.trace(&mut tracer);
        tracer.size.unwrap_or(0)
    }

    /// `false` if some part of the value called [`untraceable`](Self::untraceable).
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether label paths are being recorded (a report is being built).
    ///
    /// Implementations never need this; it lets an expensive label be skipped.
    ///
    /// ```
    /// # use rcycle::{Trace, Tracer};
    /// struct Quiet;
    /// // SAFETY: owns no Gc.
    /// unsafe impl Trace for Quiet {
    ///     fn trace(&self, tracer: &mut Tracer<'_>) { let _ = tracer.wants_labels(); }
    /// }
    /// ```
    #[inline]
    pub fn wants_labels(&self) -> bool {
        self.path.is_some()
    }

    /// Traces `value`, reached through the label that `push` appends.
    ///
    /// The label is made only on the reporter's path: built eagerly, it was
    /// written to the stack before the `plain` test on every field the
    /// collector traces (three stores per field). A closure of a word or two
    /// travels in registers instead.
    ///
    /// The reporter's path is two calls: [`report_part`](Self::report_part),
    /// which appends the label and *tail-calls* the part's trace, then
    /// [`pop_label`](Self::pop_label). So the only frame a deep structure
    /// (a `Box` list) recurses through is the caller's own `trace` (or
    /// `report_part` with it inlined), as in the collector's mode: a report
    /// goes as deep as Rust's own drop of the same list (measured on a 2 MiB
    /// thread, in the test profile and in release; issue 19). Before, the
    /// label was formatted in a frame of its own around the part's trace,
    /// and a report overflowed at about a quarter of that depth.
    ///
    /// `inline(always)`: with both calls here, merely `inline`, it was left
    /// out of line in the collector's trace (+11% instructions on the ring).
    #[inline(always)]
    fn labelled<T: Trace + ?Sized>(&mut self, push: impl FnOnce(&mut Self), value: &T) {
        if self.plain {
            value.trace(self)
        } else if value.__owns_no_gc() && self.size.is_none() {
            // A leaf (an integer, a string): no edge to label. (Its size
            // is still measured in size mode.)
        } else {
            Self::report_part(value, self, push);
            self.pop_label();
        }
    }

    /// The reporter's path into one part of a value: in size mode, adds the
    /// part's `heap_size`; otherwise appends its label and traces it. Out of
    /// line (a copy of the part's trace in each field's report path, with
    /// one more inside for each level of nesting, kept the collector's
    /// trace from being inlined), and the part's trace is a tail call: this
    /// adds no frame to a deep recursion. `cold`: the collector never comes
    /// here.
    #[cold]
    #[inline(never)]
    fn report_part<T: Trace + ?Sized>(value: &T, tracer: &mut Self, push: impl FnOnce(&mut Self)) {
        if tracer.size.is_some() {
            return Self::add_size_of(value, tracer);
        }
        push(tracer);
        value.trace(tracer)
    }

    /// Size mode: adds the `heap_size` of one part of the value measured.
    /// Out of line: its frame stays out of [`report_part`](Self::report_part)'s.
    #[inline(never)]
    fn add_size_of<T: Trace + ?Sized>(value: &T, tracer: &mut Self) {
        let size = value.heap_size();
        if let Some(total) = &mut tracer.size {
            *total += size;
        }
    }

    /// Appends a label to the path being recorded. Out of line and not
    /// generic: formatting stays out of the frames a deep value recurses
    /// through.
    #[inline(never)]
    fn push_label(&mut self, label: Label<'_>) {
        if let Some(path) = self.path.as_deref_mut() {
            path.push(label);
        }
    }

    /// [`push_label`](Self::push_label) of a field (arguments in registers;
    /// a template path's push inline).
    #[inline(never)]
    fn push_field(&mut self, name: &'static str) {
        match self.path.as_deref_mut() {
            Some(path) if path.template => path.parts.push(TemplatePart::Field(name)),
            _ => self.push_label(Label::Field(name)),
        }
    }

    /// [`push_label`](Self::push_label) of an index (a template path's push
    /// inline).
    #[inline(never)]
    fn push_index(&mut self, index: usize) {
        match self.path.as_deref_mut() {
            Some(path) if path.template => path.parts.push(TemplatePart::Index(index)),
            _ => self.push_label(Label::Index(index)),
        }
    }

    /// [`push_label`](Self::push_label) of a key.
    #[inline(never)]
    fn push_key(&mut self, key: &dyn fmt::Debug) {
        self.push_label(Label::Key(key))
    }

    /// Takes the last label off the path (nothing in size mode).
    #[cold]
    #[inline(never)]
    fn pop_label(&mut self) {
        if let Some(path) = self.path.as_deref_mut() {
            path.pop();
        }
    }

    /// Traces the field `name` of the current value.
    ///
    /// ```
    /// # use rcycle::{Gc, Trace, Tracer};
    /// struct Child { parent: Option<Gc<u8>> }
    /// // SAFETY: reports `parent` once.
    /// unsafe impl Trace for Child {
    ///     fn trace(&self, t: &mut Tracer<'_>) { t.field("parent", &self.parent) }
    /// }
    /// ```
    #[inline]
    pub fn field<T: Trace + ?Sized>(&mut self, name: &'static str, value: &T) {
        self.labelled(move |t: &mut Self| t.push_field(name), value)
    }

    /// Traces element `index` of a sequence.
    ///
    /// ```
    /// # use rcycle::{Gc, Trace, Tracer};
    /// struct Row([Gc<u8>; 2]);
    /// // SAFETY: reports each element once.
    /// unsafe impl Trace for Row {
    ///     fn trace(&self, t: &mut Tracer<'_>) {
    ///         for (i, g) in self.0.iter().enumerate() { t.index(i, g) }
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn index<T: Trace + ?Sized>(&mut self, index: usize, value: &T) {
        self.labelled(move |t: &mut Self| t.push_index(index), value)
    }

    /// Traces each element of a sequence, labelled with its position, as
    /// [`index`](Self::index) does. The collector's loop is a loop of its
    /// own, with no test per element (the one of `index` kept the loop from
    /// being unswitched once the reporter's path became two calls).
    #[inline(always)]
    pub(crate) fn elements<'e, T: Trace + 'e>(&mut self, elements: impl Iterator<Item = &'e T>) {
        if self.plain {
            for e in elements {
                e.trace(self);
            }
        } else {
            self.report_elements(elements);
        }
    }

    /// The reporter's [`elements`](Self::elements). Out of line, like
    /// [`report_part`](Self::report_part): the collector's trace keeps its
    /// loop and nothing else (inline, this path cost the collector 3-6%
    /// instructions on the stress graph and the idle collections).
    #[cold]
    #[inline(never)]
    fn report_elements<'e, T: Trace + 'e>(&mut self, elements: impl Iterator<Item = &'e T>) {
        if self.size.is_none() && self.path.as_ref().is_some_and(|p| p.is_template()) {
            self.template_elements(elements);
        } else {
            for (i, e) in elements.enumerate() {
                self.index(i, e);
            }
        }
    }

    /// [`elements`](Self::elements) of a slice: the same edges; in the heap
    /// graph's capture a slice of `Gc`s to sized values is already a run of
    /// headers (`Trace::__gc_headers`), given to the sink as it is.
    #[inline(always)]
    pub(crate) fn slice_elements<T: Trace>(&mut self, elements: &[T]) {
        if self.plain {
            for e in elements {
                e.trace(self);
            }
        } else {
            self.report_slice_elements(elements);
        }
    }

    /// The reporter's [`slice_elements`](Self::slice_elements), out of line
    /// (see [`report_elements`](Self::report_elements)).
    #[cold]
    #[inline(never)]
    fn report_slice_elements<T: Trace>(&mut self, elements: &[T]) {
        if self.size.is_none() && self.path.as_ref().is_some_and(|p| p.is_template()) {
            match T::__gc_headers(elements) {
                // SAFETY: `__gc_headers` gives the elements' headers, in
                // order, as `NonNull<u8>`s, which have the layout of
                // `NonNull<Header>`s.
                Some(headers) => self.edge_run(0, unsafe {
                    std::slice::from_raw_parts(headers.as_ptr().cast(), headers.len())
                }),
                None => self.template_elements(elements.iter()),
            }
        } else {
            for (i, e) in elements.iter().enumerate() {
                self.index(i, e);
            }
        }
    }

    /// [`elements`](Self::elements) for the heap graph's capture (a
    /// template path): runs of `Gc`s go to the sink as runs (one label for
    /// the run, not one labelled trace per element); anything else is
    /// traced element by element. (`__gc_target` is `Some` for every `Gc`
    /// and `None` for every other type: the test folds away.)
    #[inline(always)]
    fn template_elements<'e, T: Trace + 'e>(&mut self, elements: impl Iterator<Item = &'e T>) {
        const RUN: usize = 32;
        let mut run = [NonNull::<Header>::dangling(); RUN];
        let (mut len, mut first) = (0, 0);
        for (i, e) in elements.enumerate() {
            match e.__gc_target() {
                Some(target) => {
                    if len == 0 {
                        first = i;
                    }
                    run[len] = target.cast();
                    len += 1;
                    if len == RUN {
                        self.edge_run(first, &run[..len]);
                        len = 0;
                    }
                }
                None => self.index(i, e),
            }
        }
        if len > 0 {
            self.edge_run(first, &run[..len]);
        }
    }

    /// A run of element edges under a template path (see
    /// [`EdgeSink::edge_run`]).
    #[inline(never)]
    fn edge_run(&mut self, first: usize, targets: &[NonNull<Header>]) {
        let Some(path) = self.path.as_deref_mut().filter(|_| !targets.is_empty()) else {
            return;
        };
        path.parts.push(TemplatePart::Index(first));
        self.sink.edge_run(first, targets, path);
        path.parts.pop();
    }

    /// Traces the value stored under `key` in a map (or a set element, with
    /// the element as its own key).
    ///
    /// ```
    /// # use rcycle::{Gc, Trace, Tracer};
    /// struct Pending(Vec<(u64, Gc<String>)>);
    /// // SAFETY: reports each value once.
    /// unsafe impl Trace for Pending {
    ///     fn trace(&self, t: &mut Tracer<'_>) {
    ///         for (id, g) in &self.0 { t.key(id, g) }
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn key<K: fmt::Debug + ?Sized, T: Trace + ?Sized>(&mut self, key: &K, value: &T) {
        // (`&K` is sized, so `&&K` makes a `&dyn Debug` even for `K = str`.)
        let key: &&K = &key;
        self.labelled(move |t: &mut Self| t.push_key(key), value)
    }

    /// Says that part of the value cannot be inspected now (for example a
    /// `RefCell` that is mutably borrowed). The collector treats the object as
    /// held from outside for this collection, which is always safe.
    ///
    /// ```
    /// # use rcycle::{Trace, Tracer};
    /// use std::cell::RefCell;
    /// struct Guarded(RefCell<Vec<rcycle::Gc<u8>>>);
    /// // SAFETY: reports each element once, or nothing when it cannot look.
    /// unsafe impl Trace for Guarded {
    ///     fn trace(&self, t: &mut Tracer<'_>) {
    ///         match self.0.try_borrow() {
    ///             Ok(v) => t.field("0", &*v),
    ///             Err(_) => t.untraceable(),
    ///         }
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn untraceable(&mut self) {
        self.complete = false;
    }

    /// Reports one owned edge. Only `Gc`'s own `Trace` impl calls this.
    #[inline]
    pub(crate) fn edge(&mut self, target: NonNull<Header>) {
        match &self.path {
            Some(p) => self.sink.edge_path(target, p),
            None => self.sink.edge(target, ""),
        }
    }
}
