//! Heap snapshots for Chrome DevTools: this thread's object graph in V8's
//! `.heapsnapshot` format, to load in the Memory panel (Load profile) and
//! explore with its Summary, Comparison, Containment and retainers views.
//!
//! The snapshot is a [`HeapGraph`] written out:
//! - node 0 is a synthetic root named `(held outside)`; it has one `element`
//!   edge (`[0]`, `[1]`, ...) to each object held from outside the heap (the
//!   stack, a static, something not traced, or an object whose edges are
//!   unknown): the [`outside holders`](HeapGraph::outside_holders). So the
//!   retainers and dominators DevTools computes start where the program's
//!   own handles are;
//! - each object is an `object` node named by its full type name (`<dead>
//!   TypeName` for a dead box, as in [`live_report`](crate::live_report)),
//!   whose self size is the object's [`size`](ObjectInfo::size);
//! - each edge is a `property` edge named by its field path without the
//!   leading dot (`children[2]`), or an `element` edge for a bare position
//!   (`[3]`).
//!
//! Node ids: the root is 1; an object's id is odd and derived from its
//! address (`(address >> 3) << 1 | 1`, kept to 32 bits), so the same object
//! has the same id in every snapshot and DevTools' Comparison view matches it
//! across snapshots. (An address freed and reused counts as the same object.)
//! In the rare case two addresses give the same 32-bit id (objects a multiple
//! of 16 GiB apart), the later object takes the next free odd id.
//!
//! Objects only garbage refers to are in the snapshot too, unreachable from
//! the root: call [`collect`](crate::collect()) first to leave them out.
//!
//! ```
//! use rcycle::{devtools, Gc};
//! let list = Gc::new(vec![Gc::new(1u8)]);
//! let json = devtools::heap_snapshot_json();
//! assert!(json.starts_with("{\"snapshot\":{\"meta\":{\"node_fields\":[\"type\",\"name\""));
//! assert!(json.contains("\"(held outside)\""));
//! ```

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::{HeapGraph, ObjectInfo};

/// The `snapshot.meta` object: the layout of the flat arrays.
const META: &str = concat!(
    r#"{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"#,
    r#""node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"#,
    r#""edge_fields":["type","name_or_index","to_node"],"#,
    r#""edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"#,
    r#""trace_function_info_fields":[],"trace_node_fields":[],"sample_fields":[],"location_fields":[]}"#
);
/// Numbers in a node.
const NODE_FIELDS: usize = 7;
/// Node types (positions in `node_types[0]`).
const NODE_OBJECT: u32 = 3;
const NODE_SYNTHETIC: u32 = 9;
/// Edge types (positions in `edge_types[0]`).
const EDGE_ELEMENT: u32 = 1;
const EDGE_PROPERTY: u32 = 2;
/// The root's id, as in V8.
const ROOT_ID: u32 = 1;

/// This thread's heap as a DevTools heap snapshot (JSON text).
///
/// ```
/// let g = rcycle::Gc::new(String::from("hello"));
/// let json = rcycle::devtools::heap_snapshot_json();
/// assert!(json.contains("\"alloc::string::String\""));
/// ```
pub fn heap_snapshot_json() -> String {
    HeapGraph::capture().heap_snapshot_json()
}

/// Writes this thread's heap as a DevTools heap snapshot to the file at
/// `path` (created or truncated; name it `*.heapsnapshot` for DevTools).
///
/// ```
/// let g = rcycle::Gc::new(7u64);
/// let path = std::env::temp_dir().join(format!("rcycle-doc-{}.heapsnapshot", std::process::id()));
/// rcycle::devtools::write_heap_snapshot(&path).unwrap();
/// assert!(std::fs::read_to_string(&path).unwrap().contains("\"u64\""));
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_heap_snapshot(path: impl AsRef<Path>) -> io::Result<()> {
    HeapGraph::capture().write_heap_snapshot(File::create(path)?)
}

/// Writes this thread's heap as a DevTools heap snapshot to `out` (buffered
/// internally).
///
/// ```
/// let g = rcycle::Gc::new(7u64);
/// let mut bytes = Vec::new();
/// rcycle::devtools::write_heap_snapshot_to(&mut bytes).unwrap();
/// assert!(bytes.ends_with(b"]}\n"));
/// ```
pub fn write_heap_snapshot_to(out: impl Write) -> io::Result<()> {
    HeapGraph::capture().write_heap_snapshot(out)
}

impl HeapGraph {
    /// This snapshot in DevTools' `.heapsnapshot` format (JSON text); see
    /// [`devtools`](crate::devtools) for how objects and edges are mapped.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// let graph = rcycle::HeapGraph::capture();
    /// let json = graph.heap_snapshot_json();
    /// let nodes = format!("\"node_count\":{},", graph.len() + 1);
    /// assert!(json.contains(&nodes));
    /// ```
    pub fn heap_snapshot_json(&self) -> String {
        let mut bytes = Vec::new();
        self.write_heap_snapshot(&mut bytes)
            .expect("writing to a Vec cannot fail");
        String::from_utf8(bytes).expect("the snapshot is written as UTF-8")
    }

    /// Writes this snapshot in DevTools' `.heapsnapshot` format to `out`
    /// (buffered internally).
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// let mut bytes = Vec::new();
    /// rcycle::HeapGraph::capture().write_heap_snapshot(&mut bytes).unwrap();
    /// assert!(bytes.starts_with(b"{\"snapshot\":"));
    /// ```
    pub fn write_heap_snapshot(&self, out: impl Write) -> io::Result<()> {
        write_snapshot(self, &mut BufWriter::with_capacity(1 << 16, out))
    }
}

/// The strings table, deduplicated.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Strings {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

fn write_snapshot<W: Write>(graph: &HeapGraph, out: &mut BufWriter<W>) -> io::Result<()> {
    let holders = graph.outside_holders();
    let ids = node_ids(graph.objects());
    let edge_count = holders.len() + graph.edges().count();
    let mut strings = Strings::default();

    write!(
        out,
        "{{\"snapshot\":{{\"meta\":{META},\"node_count\":{},\"edge_count\":{edge_count},\"trace_function_count\":0}},\n\"nodes\":[",
        graph.len() + 1
    )?;
    let root_name = strings.intern("(held outside)");
    write!(
        out,
        "{NODE_SYNTHETIC},{root_name},{ROOT_ID},0,{},0,0",
        holders.len()
    )?;
    let mut dead_name = String::new();
    for (n, info) in graph.objects().iter().enumerate() {
        let name = if info.dead {
            dead_name.clear();
            dead_name.push_str("<dead> ");
            dead_name.push_str(info.type_name);
            strings.intern(&dead_name)
        } else {
            strings.intern(info.type_name)
        };
        let size = u32::try_from(info.size).unwrap_or(u32::MAX);
        let edges = graph.referents(n).count();
        write!(out, ",\n{NODE_OBJECT},{name},{},{size},{edges},0,0", ids[n])?;
    }

    out.write_all(b"],\n\"edges\":[")?;
    let mut first = true;
    let mut edge = |out: &mut BufWriter<W>, kind: u32, name: u32, to: usize| {
        let sep = if first { "" } else { ",\n" };
        first = false;
        write!(out, "{sep}{kind},{name},{}", (to + 1) * NODE_FIELDS)
    };
    for (i, &h) in holders.iter().enumerate() {
        edge(out, EDGE_ELEMENT, i as u32, h)?;
    }
    for n in 0..graph.len() {
        for (to, label) in graph.referents(n) {
            match element_index(label) {
                Some(index) => edge(out, EDGE_ELEMENT, index, to)?,
                None => {
                    let name = strings.intern(label.strip_prefix('.').unwrap_or(label));
                    edge(out, EDGE_PROPERTY, name, to)?
                }
            }
        }
    }

    out.write_all(
        b"],\n\"trace_function_infos\":[],\"trace_tree\":[],\"samples\":[],\"locations\":[],\n\"strings\":[",
    )?;
    let mut text = String::new();
    for (i, s) in strings.list.iter().enumerate() {
        text.clear();
        if i > 0 {
            text.push_str(",\n");
        }
        json_string(&mut text, s);
        out.write_all(text.as_bytes())?;
    }
    out.write_all(b"]}\n")?;
    out.flush()
}

/// `3` for the label `[3]` (a position in a sequence); `None` for any other
/// label.
fn element_index(label: &str) -> Option<u32> {
    let digits = label.strip_prefix('[')?.strip_suffix(']')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Odd 32-bit ids derived from the objects' addresses, unique in the
/// snapshot and never the root's.
fn node_ids(objects: &[ObjectInfo]) -> Vec<u32> {
    let mut used = HashSet::with_capacity(objects.len() + 1);
    used.insert(ROOT_ID);
    objects
        .iter()
        .map(|o| {
            let mut id = ((o.id.addr() >> 3) as u32) << 1 | 1;
            while !used.insert(id) {
                id = id.wrapping_add(2);
            }
            id
        })
        .collect()
}

/// Appends `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::{element_index, json_string};

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn element_labels() {
        assert_eq!(element_index("[3]"), Some(3));
        assert_eq!(element_index("[+3]"), None);
        assert_eq!(element_index("[]"), None);
        assert_eq!(element_index(".kids[3]"), None);
        assert_eq!(element_index("[99999999999]"), None);
    }
}
