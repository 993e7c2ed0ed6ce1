//! Graphviz pictures of the object graph: objgraph's `show_backrefs` and
//! `show_refs`.
//!
//! [`backrefs`] draws what refers to some objects (why they are alive),
//! [`refs`] what they refer to. Both walk the graph breadth-first up to
//! [`DotOptions::max_depth`] levels and return DOT source; [`render`] turns it
//! into a PNG or SVG with Graphviz's `dot`, when it is installed.
//!
//! In the picture:
//! - each object is a box with its type name, address, size and handle counts;
//! - handles held from outside the heap (the stack, a static, something not
//!   traced) are drawn as dashed edges from a `<held outside>` node, labelled
//!   with their number;
//! - the objects asked about have a thick border, [highlighted] ones are
//!   filled, dead boxes are red, untraceable objects (a mutably borrowed
//!   `RefCell`: their edges are unknown) dashed;
//! - every edge is labelled with the field path it comes from, like
//!   `.children[2]`;
//! - when an object has more than [`DotOptions::too_many`] neighbours, only
//!   that many are drawn, and one `N more` node stands for the others.
//!
//! [highlighted]: DotOptions::highlight
//!
//! ```
//! use rcycle::dot::{self, DotOptions};
//! use rcycle::{Gc, ObjectId, Trace};
//!
//! #[derive(Trace)]
//! struct Holder { held: Gc<u8> }
//! let x = Gc::new(1u8);
//! let h = Gc::new(Holder { held: x.clone() });
//! let source = dot::backrefs(&[ObjectId::of(&x)], &DotOptions::default());
//! assert!(source.starts_with("digraph rcycle {"));
//! assert!(source.contains("n1 -> n0 [label=\".held\"];"));
//! ```

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{HeapGraph, ObjectId, ObjectInfo};

/// What [`backrefs`] and [`refs`] draw.
///
/// ```
/// use rcycle::dot::DotOptions;
/// let options = DotOptions { max_depth: 5, ..DotOptions::default() };
/// assert_eq!((options.max_depth, options.too_many), (5, 10));
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
}

impl Default for DotOptions {
    /// `max_depth` 3, `too_many` 10, nothing highlighted, no filter.
    ///
    /// ```
    /// let o = rcycle::dot::DotOptions::default();
    /// assert!(o.highlight.is_empty() && o.filter.is_none());
    /// ```
    fn default() -> DotOptions {
        DotOptions {
            max_depth: 3,
            too_many: 10,
            highlight: Vec::new(),
            filter: None,
        }
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
/// use rcycle::{dot, Gc, ObjectId};
/// let x = Gc::new(5u32);
/// let holder = Gc::new(vec![x.clone()]);
/// let source = dot::backrefs(&[ObjectId::of(&x)], &Default::default());
/// assert!(source.contains("[label=\"[0]\"]"));
/// assert!(source.contains("outside -> n0 [label=\"1 handle\", style=dashed];"));
/// ```
pub fn backrefs(targets: &[ObjectId], options: &DotOptions) -> String {
    HeapGraph::capture().backrefs_dot(targets, options)
}

/// The DOT picture of the objects `targets` refer to, up to
/// [`max_depth`](DotOptions::max_depth) levels deep (objgraph's `show_refs`).
/// Takes a [`HeapGraph`] snapshot; ids not found in it are ignored.
///
/// ```
/// use rcycle::{dot, Gc, ObjectId};
/// let list = Gc::new(vec![Gc::new(1u8), Gc::new(2u8)]);
/// let source = dot::refs(&[ObjectId::of(&list)], &Default::default());
/// assert_eq!(source.matches("n0 -> n").count(), 2);
/// ```
pub fn refs(targets: &[ObjectId], options: &DotOptions) -> String {
    HeapGraph::capture().refs_dot(targets, options)
}

impl HeapGraph {
    /// [`dot::backrefs`](crate::dot::backrefs) on this snapshot.
    ///
    /// ```
    /// use rcycle::{Gc, HeapGraph, ObjectId};
    /// let x = Gc::new(5u32);
    /// let holder = Gc::new(Some(x.clone()));
    /// let graph = HeapGraph::capture();
    /// let source = graph.backrefs_dot(&[ObjectId::of(&x)], &Default::default());
    /// assert_eq!(source.matches(" -> ").count(), 3); // holder -> x, two outside edges
    /// ```
    pub fn backrefs_dot(&self, targets: &[ObjectId], options: &DotOptions) -> String {
        draw(self, targets, options, Direction::Back)
    }

    /// [`dot::refs`](crate::dot::refs) on this snapshot.
    ///
    /// ```
    /// use rcycle::{Gc, HeapGraph, ObjectId};
    /// let holder = Gc::new(Some(Gc::new(5u32)));
    /// let graph = HeapGraph::capture();
    /// let source = graph.refs_dot(&[ObjectId::of(&holder)], &Default::default());
    /// assert!(source.contains("n0 -> n1 [label=\"\"];"));
    /// ```
    pub fn refs_dot(&self, targets: &[ObjectId], options: &DotOptions) -> String {
        draw(self, targets, options, Direction::Forward)
    }
}

/// Breadth-first walk from `targets`; iterative (the drawn list is the
/// queue).
fn draw(graph: &HeapGraph, targets: &[ObjectId], options: &DotOptions, dir: Direction) -> String {
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
                if !keep(&graph.objects()[m]) {
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
            let _ = writeln!(edges, "  n{from} -> n{to} [label=\"{}\"];", escape(label));
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
    out.push_str("  node [shape=box, style=filled, fillcolor=white, fontsize=10];\n");
    out.push_str("  edge [fontsize=9];\n");
    for (i, &(node, _)) in drawn.iter().enumerate() {
        let info = &graph.objects()[node];
        let _ = write!(out, "  n{i} [label=\"{}\"", escape(&node_label(info)));
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
    let mut outside_edges = String::new();
    for (i, &(node, _)) in drawn.iter().enumerate() {
        let handles = graph.outside_count(node);
        if handles > 0 {
            let plural = if handles == 1 { "" } else { "s" };
            let _ = writeln!(
                outside_edges,
                "  outside -> n{i} [label=\"{handles} handle{plural}\", style=dashed];"
            );
        }
    }
    if !outside_edges.is_empty() {
        out.push_str("  outside [label=\"<held outside>\", shape=ellipse, style=dashed];\n");
        out.push_str(&outside_edges);
    }
    out.push_str(&more_nodes);
    out.push_str(&edges);
    out.push_str("}\n");
    out
}

/// `app::Node`, then `0x55d0c0a1b2c0 48 B`, then `strong 3, weak 1`.
fn node_label(info: &ObjectInfo) -> String {
    let mut label = String::new();
    if info.dead {
        label.push_str("<dead> ");
    }
    let _ = write!(
        label,
        "{}\n{} {} B\nstrong {}",
        info.type_name, info.id, info.size, info.strong
    );
    if info.weak > 0 {
        let _ = write!(label, ", weak {}", info.weak);
    }
    if info.untraceable {
        label.push_str("\nuntraceable");
    }
    label
}

/// Escapes text for a DOT double-quoted string: `"` and `\` are escaped, a
/// line break becomes DOT's `\n`, other control characters are shown as
/// `\xNN` text.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {
                let _ = write!(out, "\\\\x{:02x}", c as u32);
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
/// use rcycle::{dot, Gc, ObjectId};
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
