//! Graphviz pictures of the object graph: objgraph's `show_backrefs` and
//! `show_refs`.
//!
//! [`backrefs`] draws what refers to some objects (why they are alive),
//! [`refs`] what they refer to. Both walk the graph breadth-first up to
//! [`DotOptions::max_depth`] levels and return DOT source; [`render`] turns it
//! into a PNG or SVG with Graphviz's `dot`, when it is installed.
//!
//! In the picture:
//! - each object is a box with its type name (short, like objgraph's: `Iq`,
//!   `Vec<Iq>`; [`DotOptions::full_type_names`] for the whole path), a
//!   summary of its value when one is asked for ([`DotOptions::summaries`],
//!   like objgraph's `Iq(id=1)`), its address, size and handle counts;
//! - handles held from outside the heap (the stack, a static, something not
//!   traced) are drawn as dashed edges from a `<held outside>` node, labelled
//!   with their number (one node for all of them when at most 8 objects are
//!   held, else one node for each: Graphviz lays out a node with edges into
//!   hundreds of ranks very slowly);
//! - the objects asked about have a thick border, [highlighted] ones are
//!   filled, dead boxes are red, untraceable objects (a mutably borrowed
//!   `RefCell`: their edges are unknown) dashed;
//! - every edge is labelled with the field path it comes from, like
//!   `.children[2]`;
//! - when an object has more than [`DotOptions::too_many`] neighbours, only
//!   that many are drawn, and one `N more` node stands for the others.
//!
//! Every DOT file renders with Graphviz without a warning:
//! - label lines (type names, summaries, edge labels with their map keys) are
//!   cut to [`DotOptions::label_width`] characters (40, objgraph's cut), the
//!   last one a `…`;
//! - control characters and bidirectional or invisible formatting characters
//!   (U+202E, U+2066..U+2069, U+200E, U+061C, ...) are written as visible
//!   escapes (`\r`, `\t`, `\u{202e}`), so a key cannot reorder or hide the
//!   text around it, and a line break inside a value shows as `\n`;
//! - the drawing is at most 300 by 300 inches (`size="300,300"`): Graphviz
//!   scales a larger one down, where its bitmap renderers would warn that
//!   the graph is too large (above 32,767 pixels at the default 96 dpi).
//!
//! [highlighted]: DotOptions::highlight
//!
//! ```
//! use rcycle::report::dot::{self, DotOptions};
//! use rcycle::{Gc, Trace};
//! use rcycle::report::ObjectId;
//!
//! #[derive(Trace)]
//! struct Holder { held: Gc<u8> }
//! let x = Gc::new(1u8);
//! let h = Gc::new(Holder { held: x.clone() });
//! let source = dot::backrefs(&[ObjectId::of(&x)], &DotOptions::default());
//! assert!(source.starts_with("digraph rcycle {"));
//! assert!(source.contains("n1 -> n0 [label=\".held\"];"));
//! ```

use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::ptr::NonNull;
use std::sync::Arc;

use super::{HeapGraph, ObjectId, ObjectInfo};
use crate::gc::ErasedGc;
use crate::header::{GcBox, Header};
use crate::heap::Heap;
use crate::runtime::query;
use crate::trace::Trace;

/// At most this many objects held from outside share one `<held outside>`
/// node in a picture; past that each gets its own.
const SHARED_OUTSIDE_NODE_UP_TO: usize = 8;

/// What [`backrefs`] and [`refs`] draw.
///
/// ```
/// use rcycle::report::dot::DotOptions;
/// let options = DotOptions { max_depth: 5, ..DotOptions::default() };
/// assert_eq!((options.max_depth, options.too_many, options.label_width), (5, 10, 40));
/// ```
#[derive(Clone, Debug)]
pub struct DotOptions {
    /// Levels of referrers (or referents) drawn beyond the objects asked
    /// about; objects at this depth are drawn but not followed. Default 3.
    pub max_depth: usize,
    /// Neighbours drawn per object; the others become one `N more` node.
    /// Default 10.
    pub too_many: usize,
    /// Objects drawn filled (they need not be among the objects asked about).
    pub highlight: Vec<ObjectId>,
    /// When set, neighbours for which it returns `false` are neither drawn
    /// nor counted in `N more` (the objects asked about are always drawn).
    pub filter: Option<fn(&ObjectInfo) -> bool>,
    /// Type names with their whole paths (`leak_hunt::Iq`,
    /// `alloc::vec::Vec<leak_hunt::Iq>`) rather than objgraph's short names
    /// (`Iq`, `Vec<Iq>`). Default `false`.
    pub full_type_names: bool,
    /// The most characters of one label line (a type name, a summary, an edge
    /// label): longer ones are cut, ending with `…`. Default 40 (objgraph cuts
    /// its summaries at 40); 0 cuts nothing.
    pub label_width: usize,
    /// How to summarize values of some types, one line under the type name
    /// (objgraph's `Iq(id=1)`); types with none show no summary. Only
    /// [`backrefs`] and [`refs`] show summaries: they read the values while
    /// they draw, right after capturing the graph. A [`HeapGraph`] kept from
    /// earlier ([`HeapGraph::backrefs_dot`]) holds no values, so its pictures
    /// have none.
    pub summaries: Vec<Summary>,
}

impl Default for DotOptions {
    /// `max_depth` 3, `too_many` 10, nothing highlighted, no filter, short
    /// type names, labels cut at 40 characters, no summaries.
    ///
    /// ```
    /// let o = rcycle::report::dot::DotOptions::default();
    /// assert!(o.highlight.is_empty() && o.filter.is_none() && o.summaries.is_empty());
    /// assert!(!o.full_type_names);
    /// ```
    fn default() -> DotOptions {
        DotOptions {
            max_depth: 3,
            too_many: 10,
            highlight: Vec::new(),
            filter: None,
            full_type_names: false,
            label_width: 40,
            summaries: Vec::new(),
        }
    }
}

/// A summary of the values of one type for the boxes of a DOT picture: its
/// `Debug` text ([`Summary::debug`]) or any text ([`Summary::of`]), cut to
/// [`DotOptions::label_width`].
///
/// A summary is user code run while the picture is drawn, on the objects
/// drawn only, each held by a handle meanwhile. If it frees an object (drops
/// the last handle to one), the boxes drawn after that get no summary: the
/// picture's addresses may no longer be the objects it captured.
///
/// ```
/// use rcycle::report::dot::{self, DotOptions, Summary};
/// use rcycle::{Gc, Trace};
/// use rcycle::report::ObjectId;
///
/// #[derive(Trace, Debug)]
/// struct Iq { id: u64 }
/// #[derive(Trace)]
/// struct Node { tag: String }
/// let (a, b) = (Gc::new(Iq { id: 1 }), Gc::new(Node { tag: "item".into() }));
/// let options = DotOptions {
///     summaries: vec![Summary::debug::<Iq>(), Summary::of(|n: &Node| format!("<{}>", n.tag))],
///     ..DotOptions::default()
/// };
/// let source = dot::refs(&[ObjectId::of(&a), ObjectId::of(&b)], &options);
/// assert!(source.contains("label=\"Iq\\nIq { id: 1 }\\n"));
/// assert!(source.contains("label=\"Node\\n<item>\\n"));
/// ```
#[derive(Clone)]
pub struct Summary {
    type_name: &'static str,
    /// The type's index on `heap`, if it has one.
    type_index: fn(&Heap) -> Option<u32>,
    /// Writes the summary of the value of `header`, an object of this type.
    /// Called only by [`Values::summarize`], which checks the type and holds the
    /// object.
    write: Arc<WriteSummary>,
}

/// See [`Summary::write`].
type WriteSummary = dyn Fn(NonNull<Header>, &mut Cut) + Send + Sync;

impl Summary {
    /// Summarizes a `T` with `summary`.
    ///
    /// ```
    /// use rcycle::report::dot::Summary;
    /// let s = Summary::of(|v: &Vec<u8>| format!("{} bytes", v.len()));
    /// assert_eq!(format!("{s:?}"), "Summary(alloc::vec::Vec<u8>)");
    /// ```
    pub fn of<T: Trace + 'static>(summary: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        Self::writing::<T>(move |value, out| {
            let _ = out.write_str(&summary(value));
        })
    }

    /// Summarizes a `T` with its `Debug` text (`{:?}`), formatted only up to
    /// the cut.
    ///
    /// ```
    /// use rcycle::report::dot::Summary;
    /// let s = Summary::debug::<String>();
    /// assert_eq!(format!("{s:?}"), "Summary(alloc::string::String)");
    /// ```
    pub fn debug<T: Trace + fmt::Debug + 'static>() -> Self {
        Self::writing::<T>(|value, out| {
            // An error here is the cut stopping the formatting.
            let _ = write!(out, "{value:?}");
        })
    }

    fn writing<T: Trace + 'static>(write: impl Fn(&T, &mut Cut) + Send + Sync + 'static) -> Self {
        Summary {
            type_name: std::any::type_name::<T>(),
            type_index: Heap::type_index_of::<T>,
            write: Arc::new(move |header, out| {
                // SAFETY: `summarize` calls this only for an object of type
                // `T` (its type index is `T`'s), allocated, whose value is
                // intact and held by a handle for the call; `Header` is at
                // offset 0 of the `repr(C)` box.
                let value = unsafe { &(*header.cast::<GcBox<T>>().as_ptr()).value };
                write(value, out)
            }),
        }
    }
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Summary({})", self.type_name)
    }
}

/// A text sink that keeps at most `width + 1` characters and then fails, so
/// that a long `Debug` text is not formatted in full only to be cut.
struct Cut {
    text: String,
    /// Characters still accepted (`usize::MAX`: no limit).
    room: usize,
}

impl fmt::Write for Cut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.room == 0 {
                return Err(fmt::Error);
            }
            self.room -= 1;
            self.text.push(c);
        }
        Ok(())
    }
}

/// Which way the walk follows edges.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From an object to its referrers; edges point at the objects asked
    /// about.
    Back,
    /// From an object to its referents.
    Forward,
}

/// The DOT picture of the objects that refer to `targets`, up to
/// [`max_depth`](DotOptions::max_depth) levels back (objgraph's
/// `show_backrefs`): the picture of why they are alive. Takes a
/// [`HeapGraph`] snapshot; ids not found in it are ignored.
///
/// ```
/// use rcycle::Gc;
/// use rcycle::report::{dot, ObjectId};
/// let x = Gc::new(5u32);
/// let holder = Gc::new(vec![x.clone()]);
/// let source = dot::backrefs(&[ObjectId::of(&x)], &Default::default());
/// assert!(source.contains("[label=\"[0]\"]"));
/// assert!(source.contains("outside -> n0 [label=\"1 handle\", style=dashed];"));
/// ```
pub fn backrefs(targets: &[ObjectId], options: &DotOptions) -> String {
    capture_and_draw(targets, options, Direction::Back)
}

/// The DOT picture of the objects `targets` refer to, up to
/// [`max_depth`](DotOptions::max_depth) levels deep (objgraph's `show_refs`).
/// Takes a [`HeapGraph`] snapshot; ids not found in it are ignored.
///
/// ```
/// use rcycle::Gc;
/// use rcycle::report::{dot, ObjectId};
/// let list = Gc::new(vec![Gc::new(1u8), Gc::new(2u8)]);
/// let source = dot::refs(&[ObjectId::of(&list)], &Default::default());
/// assert_eq!(source.matches("n0 -> n").count(), 2);
/// ```
pub fn refs(targets: &[ObjectId], options: &DotOptions) -> String {
    capture_and_draw(targets, options, Direction::Forward)
}

/// Captures this thread's graph and draws it, with value summaries while the
/// captured addresses are known to be the captured objects.
fn capture_and_draw(targets: &[ObjectId], options: &DotOptions, dir: Direction) -> String {
    let rt = query();
    let heap = &rt.heap;
    let frees = heap.frees();
    let graph = HeapGraph::capture_from(heap);
    // The capture runs user code (`Debug` of map keys): if it freed an
    // object, a captured address may be free, or another object's.
    let values = (heap.frees() == frees).then_some(Values { heap, frees });
    draw(&graph, targets, options, dir, values.as_ref())
}

/// The heap a graph was just captured from, and its count of freed objects
/// then: while the count stays the same, every captured object is still
/// allocated at its address, and its value may be summarized.
struct Values<'h> {
    heap: &'h Heap,
    frees: u64,
}

impl Values<'_> {
    /// The summary of the object `id`, if a summary in `summaries` is for
    /// its type and the object can still be read.
    fn summarize(&self, id: ObjectId, summaries: &[Summary], width: usize) -> Option<String> {
        if summaries.is_empty() || self.heap.frees() != self.frees {
            return None;
        }
        let header = NonNull::new(id.0 as *mut Header)?;
        // SAFETY: a captured object, and nothing was freed since the capture
        // (checked above): allocated, so readable.
        let index = unsafe { header.as_ref() }.type_index();
        let summary = summaries
            .iter()
            .find(|s| (s.type_index)(self.heap) == Some(index))?;
        // SAFETY: readable (above), an object of this thread's heap. `None`
        // for a dead box or a value lent out by a `GcMut`.
        let _pin = unsafe { ErasedGc::new(self.heap, header) }?;
        let mut out = Cut {
            text: String::new(),
            room: if width == 0 { usize::MAX } else { width + 1 },
        };
        // The object's type is the summary's, its value intact and held.
        (summary.write)(header, &mut out);
        Some(out.text)
    }
}

impl HeapGraph {
    /// [`dot::backrefs`](crate::report::dot::backrefs) on this snapshot.
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let x = Gc::new(5u32);
    /// let holder = Gc::new(Some(x.clone()));
    /// let graph = HeapGraph::capture();
    /// let source = graph.backrefs_dot(&[ObjectId::of(&x)], &Default::default());
    /// assert_eq!(source.matches(" -> ").count(), 3); // holder -> x, two outside edges
    /// ```
    pub fn backrefs_dot(&self, targets: &[ObjectId], options: &DotOptions) -> String {
        draw(self, targets, options, Direction::Back, None)
    }

    /// [`dot::refs`](crate::report::dot::refs) on this snapshot.
    ///
    /// ```
    /// use rcycle::Gc;
    /// use rcycle::report::{HeapGraph, ObjectId};
    /// let holder = Gc::new(Some(Gc::new(5u32)));
    /// let graph = HeapGraph::capture();
    /// let source = graph.refs_dot(&[ObjectId::of(&holder)], &Default::default());
    /// assert!(source.contains("n0 -> n1 [label=\"\"];"));
    /// ```
    pub fn refs_dot(&self, targets: &[ObjectId], options: &DotOptions) -> String {
        draw(self, targets, options, Direction::Forward, None)
    }
}

/// Breadth-first walk from `targets`; iterative (the drawn list is the
/// queue). `values`: the heap the graph was just captured from, for the
/// summaries.
fn draw(
    graph: &HeapGraph,
    targets: &[ObjectId],
    options: &DotOptions,
    dir: Direction,
    values: Option<&Values<'_>>,
) -> String {
    let width = options.label_width;
    const UNSEEN: usize = usize::MAX;
    // Drawing number of each graph node, and the drawn nodes with their depth.
    let mut slot = vec![UNSEEN; graph.len()];
    let mut drawn: Vec<(usize, usize)> = Vec::new();
    for &id in targets {
        if let Some(n) = graph.find(id) {
            if slot[n] == UNSEEN {
                slot[n] = drawn.len();
                drawn.push((n, 0));
            }
        }
    }
    let target_count = drawn.len();
    let mut edges = String::new();
    let mut more_nodes = String::new();
    let mut neighbours: Vec<(usize, &str)> = Vec::new();
    let mut cursor = 0;
    while cursor < drawn.len() {
        let (node, depth) = drawn[cursor];
        let me = cursor;
        cursor += 1;
        if depth >= options.max_depth {
            continue;
        }
        neighbours.clear();
        match dir {
            Direction::Back => neighbours.extend(graph.referrers(node)),
            Direction::Forward => neighbours.extend(graph.referents(node)),
        }
        let (mut shown, mut skipped) = (0usize, 0usize);
        for &(m, label) in &neighbours {
            if let Some(keep) = options.filter {
                if !keep(&graph.object(m)) {
                    continue;
                }
            }
            if shown >= options.too_many {
                skipped += 1;
                continue;
            }
            shown += 1;
            if slot[m] == UNSEEN {
                slot[m] = drawn.len();
                drawn.push((m, depth + 1));
            }
            let (from, to) = match dir {
                Direction::Back => (slot[m], me),
                Direction::Forward => (me, slot[m]),
            };
            let _ = writeln!(
                edges,
                "  n{from} -> n{to} [label=\"{}\"];",
                escape(&cut(label, width))
            );
        }
        if skipped > 0 {
            let _ = writeln!(
                more_nodes,
                "  more{me} [label=\"{skipped} more\", shape=plaintext, style=\"\"];"
            );
            let _ = match dir {
                Direction::Back => writeln!(more_nodes, "  more{me} -> n{me} [style=dotted];"),
                Direction::Forward => writeln!(more_nodes, "  n{me} -> more{me} [style=dotted];"),
            };
        }
    }

    let mut out = String::from("digraph rcycle {\n");
    // At most 300 x 300 inches: 28,800 pixels at 96 dpi, under the 32,767
    // of Graphviz's cairo bitmaps (a larger drawing is scaled down with a
    // warning).
    out.push_str("  graph [size=\"300,300\"];\n");
    out.push_str("  node [shape=box, style=filled, fillcolor=white, fontsize=10];\n");
    out.push_str("  edge [fontsize=9];\n");
    for (i, &(node, _)) in drawn.iter().enumerate() {
        let info = &graph.object(node);
        let summary = values.and_then(|v| v.summarize(info.id, &options.summaries, width));
        let _ = write!(
            out,
            "  n{i} [label=\"{}\"",
            node_label(info, summary.as_deref(), options)
        );
        if i < target_count {
            out.push_str(", penwidth=2");
        }
        if options.highlight.contains(&info.id) {
            out.push_str(", fillcolor=\"#9ec9ff\"");
        }
        if info.dead {
            out.push_str(", color=red, fontcolor=red");
        }
        if info.untraceable {
            out.push_str(", style=\"filled,dashed\"");
        }
        out.push_str("];\n");
    }
    // One `<held outside>` node for all, while they are few; past that, one
    // per object held (an edge from one node into hundreds of ranks makes
    // Graphviz's layout take minutes: a 400-link chain with every link held
    // from the stack ran past five).
    let held: Vec<(usize, usize)> = drawn
        .iter()
        .enumerate()
        .map(|(i, &(node, _))| (i, graph.outside_count(node)))
        .filter(|&(_, handles)| handles > 0)
        .collect();
    let shared = held.len() <= SHARED_OUTSIDE_NODE_UP_TO;
    if shared && !held.is_empty() {
        out.push_str("  outside [label=\"<held outside>\", shape=ellipse, style=dashed];\n");
    }
    for (i, handles) in held {
        let plural = if handles == 1 { "" } else { "s" };
        let from = if shared {
            "outside".to_string()
        } else {
            let _ = writeln!(
                out,
                "  outside{i} [label=\"<held outside>\", shape=ellipse, style=dashed];"
            );
            format!("outside{i}")
        };
        let _ = writeln!(
            out,
            "  {from} -> n{i} [label=\"{handles} handle{plural}\", style=dashed];"
        );
    }
    out.push_str(&more_nodes);
    out.push_str(&edges);
    out.push_str("}\n");
    out
}

/// The escaped label of a box: `Node` (or `app::Node`), the summary if any,
/// `0x55d0c0a1b2c0 48 B`, `strong 3, weak 1`, and `untraceable` if so; lines
/// joined by DOT's `\n`.
fn node_label(info: &ObjectInfo, summary: Option<&str>, options: &DotOptions) -> String {
    let width = options.label_width;
    let mut kind = String::new();
    if info.dead {
        kind.push_str("<dead> ");
    }
    if options.full_type_names {
        kind.push_str(info.type_name);
    } else {
        kind.push_str(&short_type_name(info.type_name));
    }
    let mut label = escape(&cut(&kind, width));
    if let Some(summary) = summary {
        label.push_str("\\n");
        label.push_str(&escape(&cut(summary, width)));
    }
    let _ = write!(
        label,
        "\\n{} {} B\\nstrong {}",
        info.id, info.size, info.strong
    );
    if info.weak > 0 {
        let _ = write!(label, ", weak {}", info.weak);
    }
    if info.untraceable {
        label.push_str("\\nuntraceable");
    }
    label
}

/// A type name without its paths, like objgraph's short names:
/// `alloc::vec::Vec<app::Iq>` is `Vec<Iq>`, `app::main::{{closure}}` is
/// `{{closure}}`.
fn short_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    // Where the path being read started in `out`.
    let mut path_start = 0;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') && out.len() > path_start {
            chars.next();
            out.truncate(path_start);
            continue;
        }
        out.push(c);
        if !(c.is_alphanumeric() || c == '_' || c == '{' || c == '}') {
            path_start = out.len();
        }
    }
    out
}

/// `text` cut to `width` characters, the last one `…` (0: not cut).
fn cut(text: &str, width: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(width) {
        Some(_) if width > 0 => {
            let end = text.char_indices().nth(width - 1).map_or(0, |(i, _)| i);
            format!("{}…", &text[..end]).into()
        }
        _ => text.into(),
    }
}

/// Whether `c` is written as an escape in a label: control characters, and
/// the formatting characters that reorder or hide text (bidirectional
/// marks, embeddings, overrides and isolates; zero-width and invisible
/// characters; line and paragraph separators).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// Escapes text for a DOT double-quoted string, as one line: `"` and `\` are
/// escaped; a line break, a carriage return, a tab and NUL show as `\n`,
/// `\r`, `\t`, `\0`, every other character of [`needs_escape`] as
/// `\u{202e}` (Rust's notation), written with DOT's `\\` for the backslash.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\\\n"),
            '\r' => out.push_str("\\\\r"),
            '\t' => out.push_str("\\\\t"),
            '\0' => out.push_str("\\\\0"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Runs Graphviz's `dot` on `dot_source` and writes the picture to `path`,
/// in the format its extension names (`png`, `svg`, `pdf`, ...).
///
/// # Errors
///
/// [`NotFound`](io::ErrorKind::NotFound) when `dot` is not installed,
/// [`InvalidInput`](io::ErrorKind::InvalidInput) when `path` has no
/// extension, and an error with `dot`'s message when it fails.
///
/// ```
/// use rcycle::Gc;
/// use rcycle::report::{dot, ObjectId};
/// let x = Gc::new(1u8);
/// let source = dot::refs(&[ObjectId::of(&x)], &Default::default());
/// let path = std::env::temp_dir().join(format!("rcycle-doc-{}.svg", std::process::id()));
/// match dot::render(&source, &path) {
///     Ok(()) => assert!(std::fs::remove_file(&path).is_ok()),
///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound), // no Graphviz here
/// }
/// ```
pub fn render(dot_source: &str, path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let format = path
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: no extension to name an output format", path.display()),
            )
        })?;
    let mut child = Command::new("dot")
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => io::Error::new(
                io::ErrorKind::NotFound,
                "Graphviz `dot` was not found on the PATH",
            ),
            _ => e,
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Feed the source from another thread, so that neither side can block
    // the other on a full pipe.
    let (written, output) = std::thread::scope(|s| {
        let feeder = s.spawn(move || stdin.write_all(dot_source.as_bytes()));
        let output = child.wait_with_output();
        (feeder.join(), output)
    });
    let output = output?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "dot failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    match written {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
