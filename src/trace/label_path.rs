//! The label path of a reporting [`Tracer`](super::Tracer): the labels
//! from a traced value down to the part being traced.

use std::fmt;

use super::Label;

/// The label path a reporting [`Tracer`](super::Tracer) builds: the labels from the traced
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
    pub(super) text: String,
    pub(super) starts: Vec<usize>,
    pub(super) fold: bool,
    pub(super) template: bool,
    /// Template mode: the labels, outermost first.
    pub(super) parts: Vec<TemplatePart>,
    /// Template mode: how many of `parts` are keys.
    pub(super) keys: usize,
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
    pub(super) fn push(&mut self, label: Label<'_>) {
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
    pub(super) fn pop(&mut self) {
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
