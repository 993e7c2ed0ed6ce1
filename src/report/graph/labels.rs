//! Edge labels of a [`HeapGraph`](super::HeapGraph): interned texts, and one
//! packed code per edge.

use std::collections::HashMap;
use std::fmt;

use crate::report::big_vec::BigVec;
use crate::trace::{LabelPath, TemplatePart};

use super::WHOLE;

/// `EdgeLabels` code tags (the top two bits): a template label, whose
/// `[#]` index is stored as its distance from the edge's position among
/// its source's edges (a `Vec`'s elements are usually its edges in order:
/// `.kids[0]`, `.kids[1]`...).
pub(super) const TEMPLATE_TEXT_SHIFT: u32 = 20;
pub(super) const TEMPLATE_TEXTS: u32 = 1 << (31 - TEMPLATE_TEXT_SHIFT);
pub(super) const DELTA_MASK: u32 = (1 << TEMPLATE_TEXT_SHIFT) - 1;
pub(super) const DELTA_BIAS: i64 = 1 << (TEMPLATE_TEXT_SHIFT - 1);
/// Tag: a whole label, the text in the low 30 bits.
pub(super) const WHOLE_TAG: u32 = 0b10 << 30;
/// Tag: the `(text, index)` pair at the low 30 bits' position in `wide`.
pub(super) const WIDE_TAG: u32 = 0b11 << 30;
pub(super) const LOW_30: u32 = (1 << 30) - 1;

/// The labels of a graph's edges, 4 bytes an edge: a text of [`Labels`]
/// and the index written into its `[#]` ([`WHOLE`]: none), packed into
/// one code, or kept whole in `wide` when they do not fit.
#[derive(Default)]
pub(super) struct EdgeLabels {
    pub(super) code: BigVec<u32>,
    pub(super) wide: Vec<(u32, u32)>,
}

impl EdgeLabels {
    /// The code of label `(text, index)` for the edge at position `pos`
    /// among its source's edges.
    pub(super) fn encode(&mut self, text: u32, index: u32, pos: usize) -> u32 {
        if index == WHOLE {
            if text <= LOW_30 {
                return WHOLE_TAG | text;
            }
        } else if text < TEMPLATE_TEXTS {
            let delta = i64::from(index) - pos as i64 + DELTA_BIAS;
            if (0..=i64::from(DELTA_MASK)).contains(&delta) {
                return text << TEMPLATE_TEXT_SHIFT | delta as u32;
            }
        }
        let w = u32::try_from(self.wide.len())
            .ok()
            .filter(|&w| w <= LOW_30)
            .expect("too many edge labels for a HeapGraph");
        self.wide.push((text, index));
        WIDE_TAG | w
    }

    pub(super) fn push(&mut self, text: u32, index: u32, pos: usize) {
        let code = self.encode(text, index, pos);
        self.code.push(code);
    }

    /// `(text, index)` of edge `e`, at position `pos` among its source's
    /// edges.
    pub(super) fn get(&self, e: usize, pos: usize) -> (u32, u32) {
        let c = self.code[e];
        match c & WIDE_TAG {
            WIDE_TAG => self.wide[(c & LOW_30) as usize],
            WHOLE_TAG => (c & LOW_30, WHOLE),
            _ => {
                let delta = i64::from(c & DELTA_MASK) - DELTA_BIAS;
                // The index fitted in a `u32` when it was encoded.
                (c >> TEMPLATE_TEXT_SHIFT, (pos as i64 + delta) as u32)
            }
        }
    }
}

/// The label texts of a graph: whole labels (`.parent`, `.by_id["k"]`) and
/// *templates* with one index left out (`.kids[#]`), few of them; a label
/// made of a template and an index is formatted only when it is asked for.
#[derive(Default)]
pub(super) struct Labels {
    pub(super) texts: Vec<Box<str>>,
    /// Where the `[#]` of each template starts; [`WHOLE`] for a whole label.
    pub(super) holes: Vec<u32>,
    /// Labels made from a template and an index, by `(text, index)`. An
    /// entry is never removed or changed once made, and `String`'s buffer
    /// does not move when the map moves the `String`: the `&str`s
    /// [`get`](Self::get) hands out stay valid while the graph lives.
    pub(super) made: std::sync::Mutex<HashMap<(u32, u32), String>>,
}

impl Labels {
    pub(super) fn get(&self, text: u32, index: u32) -> &str {
        let t = &self.texts[text as usize];
        if index == WHOLE {
            return t;
        }
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let label = made.entry((text, index)).or_insert_with(|| {
            let hole = self.holes[text as usize] as usize;
            format!("{}[{index}]{}", &t[..hole], &t[hole + 3..])
        });
        let label: *const str = label.as_str();
        drop(made);
        // SAFETY: the string lives in `made` until the graph drops (entries
        // are never removed or replaced, and dropping the graph needs
        // `&mut self`, which this borrow of `self` excludes); its bytes sit
        // in its own allocation, which moving the `String` (the map growing)
        // does not move, and nothing writes to them.
        unsafe { &*label }
    }
}

/// Interns label texts while a graph is captured.
#[derive(Default)]
pub(super) struct Interner {
    pub(super) labels: Labels,
    pub(super) whole: HashMap<Box<str>, u32>,
    pub(super) templates: HashMap<Box<str>, u32>,
    /// The text interned last (most edges repeat it: `.kids[#]`).
    pub(super) last: Option<u32>,
    /// Scratch for a label with several indices.
    pub(super) filled: String,
    /// Scratch for a template's text.
    pub(super) template: String,
    /// The parts of the last template path [`label_of`](Self::label_of)
    /// wrote out, and its label: the text, and which part is the index
    /// (`None`: a whole label); `None` when the label depends on the
    /// values of indices.
    pub(super) shape: Vec<TemplatePart>,
    pub(super) shape_label: Option<(u32, Option<usize>)>,
    /// Folded labels: every index and key written `[_]`, each label whole
    /// (the garbage analysis's edge kinds, as [`LabelPath::new`] folds
    /// them).
    fold: bool,
}

impl Interner {
    /// An empty interner; `fold`: folded labels.
    pub(super) fn new(fold: bool) -> Interner {
        Interner {
            fold,
            ..Interner::default()
        }
    }

    /// Whether labels are folded.
    #[inline]
    pub(super) fn folds(&self) -> bool {
        self.fold
    }

    /// The id of `text`, a whole label if `hole` is [`WHOLE`], else a
    /// template whose `[#]` starts at `hole`.
    pub(super) fn intern(&mut self, text: &str, hole: u32) -> u32 {
        if let Some(l) = self.last {
            let i = l as usize;
            if self.labels.holes[i] == hole && *self.labels.texts[i] == *text {
                return l;
            }
        }
        let map = if hole == WHOLE {
            &mut self.whole
        } else {
            &mut self.templates
        };
        let id = match map.get(text) {
            Some(&l) if self.labels.holes[l as usize] == hole => l,
            Some(_) => {
                // A template with the same text and another hole (a field
                // named `[#]`): kept whole.
                let mut whole = String::from(&text[..hole as usize]);
                whole.push_str("[?]");
                whole.push_str(&text[hole as usize + 3..]);
                return self.intern(&whole, WHOLE);
            }
            None => {
                let l = self.labels.texts.len() as u32;
                self.labels.texts.push(text.into());
                self.labels.holes.push(hole);
                map.insert(text.into(), l);
                l
            }
        };
        self.last = Some(id);
        id
    }

    /// The label of an edge whose template path is `path`: `(text, index)`.
    /// Most edges have the previous edge's parts but for the values of
    /// indices (`.kids[#]`): those take the label found last without
    /// writing any text.
    pub(super) fn label_of(&mut self, path: &LabelPath) -> (u32, u32) {
        let parts = path.parts();
        if let Some((id, index_at)) = self.shape_label {
            if parts.len() == self.shape.len() && same_texts(parts, &self.shape) {
                match index_at {
                    None => return (id, WHOLE),
                    Some(p) => {
                        if let TemplatePart::Index(i) = parts[p] {
                            if i < WHOLE as usize {
                                return (id, i as u32);
                            }
                        }
                    }
                }
            }
        }
        self.label_of_parts(parts)
    }

    /// [`label_of`](Self::label_of) the slow way: writes the template text
    /// (indices `[#]`, keys `[_]`; folded, indices `[_]` too: a whole label)
    /// and interns it; remembers the parts for the next edge.
    #[cold]
    fn label_of_parts(&mut self, parts: &[TemplatePart]) -> (u32, u32) {
        let mut text = std::mem::take(&mut self.template);
        text.clear();
        // `(start of its "[#]", index, position in parts)` of each index.
        let mut indices = Vec::new();
        for (p, part) in parts.iter().enumerate() {
            match *part {
                TemplatePart::Field(name) => {
                    text.push('.');
                    text.push_str(name);
                }
                TemplatePart::Index(_) if self.fold => text.push_str("[_]"),
                TemplatePart::Index(i) => {
                    indices.push((text.len(), i, p));
                    text.push_str("[#]");
                }
                TemplatePart::Key => text.push_str("[_]"),
            }
        }
        let has_key = parts.iter().any(|p| matches!(p, TemplatePart::Key));
        let (label, shape) = match indices[..] {
            [] => {
                let id = self.intern(&text, WHOLE);
                ((id, WHOLE), Some((id, None)))
            }
            [(hole, index, p)] if index < WHOLE as usize && !has_key => {
                let id = self.intern(&text, hole as u32);
                ((id, index as u32), Some((id, Some(p))))
            }
            _ => {
                // Several indices (or one too big to store): written out now
                // (no user code: keys stay `[_]` until the labelled pass).
                let mut filled = std::mem::take(&mut self.filled);
                filled.clear();
                let mut from = 0;
                for &(hole, index, _) in &indices {
                    filled.push_str(&text[from..hole]);
                    let _ = fmt::Write::write_fmt(&mut filled, format_args!("[{index}]"));
                    from = hole + 3;
                }
                filled.push_str(&text[from..]);
                let id = self.intern(&filled, WHOLE);
                self.filled = filled;
                ((id, WHOLE), None)
            }
        };
        self.template = text;
        self.shape.clear();
        self.shape.extend_from_slice(parts);
        self.shape_label = shape;
        label
    }
}

/// Whether two template paths of the same length write the same text.
#[inline(always)]
fn same_texts(a: &[TemplatePart], b: &[TemplatePart]) -> bool {
    let mut i = 0;
    while i < a.len() {
        if !a[i].same_text(b[i]) {
            return false;
        }
        i += 1;
    }
    true
}
