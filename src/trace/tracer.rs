//! [`Tracer`]: what a [`Trace`] impl reports its parts and edges to, in the
//! collector's plain mode, the reporter's labelled mode, or size mode.

use std::fmt;
use std::ptr::NonNull;

use super::{EdgeSink, Label, LabelPath, TemplatePart, Trace};
use crate::header::Header;

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
    pub(super) plain: bool,
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
    pub(super) fn measure<T: Trace + ?Sized>(value: &T) -> usize {
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
