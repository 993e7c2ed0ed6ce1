//! Heap snapshots for Chrome DevTools: this thread's object graph in V8's
//! `.heapsnapshot` format, to load in the Memory panel (Load profile) and
//! explore with its Summary, Comparison, Containment and retainers views, or
//! to give to memlab (`memlab find-leaks --baseline a --target b --final c`).
//!
//! The snapshot is a [`HeapGraph`] written out, in V8's layout:
//! - node 0 is the invisible synthetic root (named `""`, id 1); its one edge
//!   (`element` `[1]`) leads to node 1, the synthetic node `(held outside)`
//!   (id 3), like V8's `(GC roots)`. DevTools hides the root's edges, not
//!   those of `(held outside)`, so the Retainers view of an object held from
//!   outside shows `[i] in (held outside)`;
//! - `(held outside)` has one `element` edge (`[0]`, `[1]`, ...) to each
//!   object held from outside the heap (the stack, a static, something not
//!   traced, or an object whose edges are unknown): the
//!   [`outside holders`](HeapGraph::outside_holders). So the retainers and
//!   dominators DevTools computes start where the program's own handles are;
//! - each object is an `object` node named by its full type name (`<dead>
//!   TypeName` for a dead box, as in [`live_report`](crate::live_report)),
//!   whose self size is the object's [`size`](crate::report::ObjectInfo::size);
//! - each edge is a `property` edge named by its field path without the
//!   leading dot (`children[2]`), or an `element` edge for a bare position
//!   (`[3]`).
//!
//! Node ids: an object's id is its [`node_id`]: odd, given by a process-wide
//! counter the first time a snapshot (or [`Snapshot`](crate::Snapshot)) sees
//! the object, the same in every later snapshot, and never given to another
//! object, even one that takes the freed object's memory. So DevTools'
//! Comparison view and memlab match objects across snapshots exactly. (Ids
//! are 32-bit, as DevTools stores them: after about 2.1 billion objects have
//! had one in a process, numbering starts again.) Allocation pays nothing
//! for this: the id lives in a per-thread table that exists once a snapshot
//! has been taken and holds at most the objects alive at the last one.
//!
//! The file is written as it is made, through a [`BufWriter`]: no text of the
//! whole snapshot is built in memory (except by [`heap_snapshot_json`], which
//! returns it).
//!
//! Objects only garbage refers to are in the snapshot too, unreachable from
//! the root: call [`collect`](crate::collect()) first to leave them out.
//!
//! ```
//! use rcycle::Gc;
//! use rcycle::report::devtools;
//! let list = Gc::new(vec![Gc::new(1u8)]);
//! let json = devtools::heap_snapshot_json();
//! assert!(json.starts_with("{\"snapshot\":{\"meta\":{\"node_fields\":[\"type\",\"name\""));
//! assert!(json.contains("\"(held outside)\""));
//! let id = devtools::node_id(&list).to_string();
//! assert!(json.contains(&format!(",{id},"))); // 3,<name>,<id>,<size>,...
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::io::{self, BufWriter, Write};
use std::path::Path;

#[cfg(feature = "sites")]
mod traces;
/// Without feature `sites` no allocation stack is recorded: there are no
/// traces to write (the type has no value).
#[cfg(not(feature = "sites"))]
mod traces {
    pub(super) enum Traces {}

    impl Traces {
        pub(super) fn function_count(&self) -> usize {
            match *self {}
        }

        pub(super) fn trace_of(&self, _: usize) -> u32 {
            match *self {}
        }
    }
}

use super::big_vec::BigVec;
use super::ids::{self, HeapStamp, HELD_OUTSIDE_ID, ROOT_ID};
use super::HeapGraph;
use crate::addr_map::AddrMap;
use crate::gc::Gc;
use crate::runtime::query;

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
const NODE_OBJECT: u64 = 3;
const NODE_SYNTHETIC: u64 = 9;
/// Edge types (positions in `edge_types[0]`).
const EDGE_ELEMENT: u64 = 1;
const EDGE_PROPERTY: u64 = 2;
/// The node of the graph's object 0: after the root and `(held outside)`.
const FIRST_OBJECT: usize = 2;

/// The id `obj` has in this thread's heap snapshots (DevTools shows it as
/// `@id`), and in [`Snapshot`](crate::Snapshot)s: given the first time a
/// snapshot sees the object (or now), kept for the object's life, and never
/// given to another object. See the [module documentation](self).
///
/// ```
/// use rcycle::Gc;
/// use rcycle::report::devtools;
/// let a = Gc::new(1u8);
/// let id = devtools::node_id(&a);
/// assert_eq!(id % 2, 1);
/// assert_eq!(devtools::node_id(&a.clone()), id);
/// drop(a);
/// let b = Gc::new(2u8); // likely at `a`'s address
/// assert_ne!(devtools::node_id(&b), id);
/// ```
pub fn node_id<T: ?Sized>(obj: &Gc<T>) -> u64 {
    // SAFETY: `obj` keeps its object allocated, and the object belongs to
    // this thread's heap (`Gc` is not `Send`).
    u64::from(unsafe { ids::id_of(&query().heap, obj.header_ptr()) })
}

/// This thread's heap as a DevTools heap snapshot (JSON text).
///
/// ```
/// let g = rcycle::Gc::new(String::from("hello"));
/// let json = rcycle::report::devtools::heap_snapshot_json();
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
/// rcycle::report::devtools::write_heap_snapshot(&path).unwrap();
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
/// rcycle::report::devtools::write_heap_snapshot_to(&mut bytes).unwrap();
/// assert!(bytes.ends_with(b"]}\n"));
/// ```
pub fn write_heap_snapshot_to(out: impl Write) -> io::Result<()> {
    HeapGraph::capture().write_heap_snapshot(out)
}

impl HeapGraph {
    /// This snapshot in DevTools' `.heapsnapshot` format (JSON text); see
    /// [`devtools`](crate::report::devtools) for how objects and edges are mapped.
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// let graph = rcycle::report::HeapGraph::capture();
    /// let json = graph.heap_snapshot_json();
    /// // The objects, the root and `(held outside)`.
    /// let nodes = format!("\"node_count\":{},", graph.len() + 2);
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
    /// Node ids: if this thread's heap has freed no object since the capture,
    /// every node gets its object's [`node_id`]; otherwise some address may
    /// hold another object by now, and the nodes get ids of their own, valid
    /// in this file but matching no other snapshot (write the graph before
    /// freeing anything, or use [`write_heap_snapshot`], which captures and
    /// writes in one go).
    ///
    /// ```
    /// let g = rcycle::Gc::new(1u8);
    /// let mut bytes = Vec::new();
    /// rcycle::report::HeapGraph::capture().write_heap_snapshot(&mut bytes).unwrap();
    /// assert!(bytes.starts_with(b"{\"snapshot\":"));
    /// ```
    pub fn write_heap_snapshot(&self, out: impl Write) -> io::Result<()> {
        write_snapshot(self, out)
    }
}

/// What an export writes per number, at most (`u64::MAX` has 20 digits).
const MAX_DIGITS: usize = 20;

/// The output, with the number formatting the flat arrays need (a `write!`
/// per number is several times slower).
struct Out<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> Out<W> {
    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)
    }

    fn num(&mut self, n: u64) -> io::Result<()> {
        let mut buf = [0u8; MAX_DIGITS];
        let i = digits(&mut buf, n);
        self.out.write_all(&buf[i..])
    }

    /// `,\n` then the numbers separated by commas (one node or edge),
    /// formatted into one buffer and written at once.
    fn row(&mut self, first: bool, numbers: &[u64]) -> io::Result<()> {
        const MAX_ROW: usize = 2 + NODE_FIELDS * (MAX_DIGITS + 1);
        debug_assert!(numbers.len() <= NODE_FIELDS);
        let mut row = [0u8; MAX_ROW];
        let mut len = 0;
        if !first {
            row[..2].copy_from_slice(b",\n");
            len = 2;
        }
        for (i, &n) in numbers.iter().enumerate() {
            if i > 0 {
                row[len] = b',';
                len += 1;
            }
            len = put_digits(&mut row, len, n);
        }
        self.out.write_all(&row[..len])
    }
}

/// Two decimal digits per pair of bytes, `00` to `99`.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Writes `n` in decimal at the end of `buf`, two digits at a time;
/// returns where it starts.
fn digits(buf: &mut [u8; MAX_DIGITS], n: u64) -> usize {
    let at = MAX_DIGITS - decimal_len(n);
    put_digits(buf, at, n);
    at
}

/// The number of decimal digits of `n`.
#[inline(always)]
fn decimal_len(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 100 {
        n /= 100;
        d += 2;
    }
    d + usize::from(n >= 10)
}

/// Writes `n` in decimal into `buf` at `at`; returns the end.
#[inline(always)]
fn put_digits(buf: &mut [u8], at: usize, mut n: u64) -> usize {
    let end = at + decimal_len(n);
    let mut i = end;
    while n >= 10 {
        let p = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i] = PAIRS[p];
        buf[i + 1] = PAIRS[p + 1];
    }
    if i > at {
        buf[at] = b'0' + n as u8;
    }
    end
}

/// The allocation stacks of the graph's nodes (feature `sites`), if any
/// was recorded and the nodes are still the objects at their addresses
/// (nothing freed since the capture). Runs no user code.
#[cfg(feature = "sites")]
fn allocation_traces(graph: &HeapGraph) -> Option<traces::Traces> {
    if graph.stamp != HeapStamp::of(&query().heap) {
        return None;
    }
    Some(traces::Traces::of(graph)).filter(|t| !t.is_empty())
}

/// Without feature `sites`, no allocation stack is recorded.
#[cfg(not(feature = "sites"))]
fn allocation_traces(_: &HeapGraph) -> Option<traces::Traces> {
    None
}

/// The ids of the graph's nodes (see [`ids`]). Runs no user code: called
/// before anything is written to the caller's writer.
pub(super) fn node_ids(graph: &HeapGraph) -> BigVec<u32> {
    let rt = query();
    let heap = &rt.heap;
    if graph.stamp != HeapStamp::of(heap) {
        // Objects were freed (or the heap is another thread's): an address
        // may hold another object by now, so no node can be matched.
        return BigVec::from_slice(&ids::unmatched_ids(heap, graph.len()));
    }
    // Nothing freed since the capture: every node is still the object at
    // its address, and `refresh` lists them in the order `capture` did.
    let live = ids::refresh(heap);
    let mut by_addr: Option<AddrMap<u32>> = None;
    let mut missing = 0;
    let mut result: BigVec<u32> = (0..graph.len())
        .map(|n| match live.get(n) {
            Some(&(addr, id)) if addr == graph.id(n).addr() => id,
            _ => {
                let map = by_addr.get_or_insert_with(|| live.iter().copied().collect());
                map.get(&graph.id(n).addr()).copied().unwrap_or_else(|| {
                    missing += 1;
                    0
                })
            }
        })
        .collect();
    if missing > 0 {
        // Objects whose last handle went while the graph was captured.
        let mut spare = ids::unmatched_ids(heap, missing).into_iter();
        for id in result.iter_mut() {
            if *id == 0 {
                *id = spare.next().unwrap_or(0);
            }
        }
    }
    result
}

/// A string hasher for the strings table (few, short strings: one multiply
/// per 8 bytes).
#[derive(Default)]
struct StrHasher(u64);

impl std::hash::Hasher for StrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

/// The strings table, deduplicated.
#[derive(Default)]
struct Strings {
    list: Vec<Box<str>>,
    index: HashMap<Box<str>, u32, BuildHasherDefault<StrHasher>>,
}

impl Strings {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.into());
        self.index.insert(s.into(), i);
        i
    }
}

fn write_snapshot<W: Write>(graph: &HeapGraph, out: W) -> io::Result<()> {
    // Everything that reads the heap first: the writer is the caller's code.
    let ids = node_ids(graph);
    let holders = graph.outside_holders();
    let traces = allocation_traces(graph);
    let mut out = Out {
        out: BufWriter::with_capacity(1 << 16, out),
    };
    let edges: usize = (0..graph.len()).map(|n| graph.out_degree(n)).sum();
    let edge_count = 1 + holders.len() + edges;
    let mut strings = Strings::default();
    let root_name = strings.intern("");
    let held_name = strings.intern("(held outside)");

    out.bytes(b"{\"snapshot\":{\"meta\":")?;
    match &traces {
        #[cfg(feature = "sites")]
        Some(_) => out.bytes(
            META.replace(
                r#""trace_function_info_fields":[],"trace_node_fields":[]"#,
                &format!(
                    r#""trace_function_info_fields":{},"trace_node_fields":{}"#,
                    traces::FUNCTION_INFO_FIELDS,
                    traces::TRACE_NODE_FIELDS
                ),
            )
            .as_bytes(),
        )?,
        _ => out.bytes(META.as_bytes())?,
    }
    out.bytes(b",\"node_count\":")?;
    out.num((graph.len() + FIRST_OBJECT) as u64)?;
    out.bytes(b",\"edge_count\":")?;
    out.num(edge_count as u64)?;
    out.bytes(b",\"trace_function_count\":")?;
    out.num(traces.as_ref().map_or(0, |t| t.function_count()) as u64)?;
    out.bytes(b"},\n\"nodes\":[")?;
    let synthetic = |name: u32, id: u32, edges: usize| {
        [
            NODE_SYNTHETIC,
            u64::from(name),
            u64::from(id),
            0,
            edges as u64,
            0,
            0,
        ]
    };
    out.row(true, &synthetic(root_name, ROOT_ID, 1))?;
    out.row(false, &synthetic(held_name, HELD_OUTSIDE_ID, holders.len()))?;
    let mut dead_name = String::new();
    // Each type's name, interned once.
    let mut names = vec![u32::MAX; graph.kind_keys()];
    for n in 0..graph.len() {
        let name = &mut names[graph.kind_key(n)];
        if *name == u32::MAX {
            *name = if graph.is_dead(n) {
                dead_name.clear();
                dead_name.push_str("<dead> ");
                dead_name.push_str(graph.type_name(n));
                strings.intern(&dead_name)
            } else {
                strings.intern(graph.type_name(n))
            };
        }
        let name = *name;
        let size = u64::from(u32::try_from(graph.size(n)).unwrap_or(u32::MAX));
        let edges = graph.out_degree(n) as u64;
        out.row(
            false,
            &[
                NODE_OBJECT,
                u64::from(name),
                u64::from(ids[n]),
                size,
                edges,
                traces.as_ref().map_or(0, |t| u64::from(t.trace_of(n))),
                0,
            ],
        )?;
    }

    out.bytes(b"],\n\"edges\":[")?;
    let to_node = |node: usize| ((node + FIRST_OBJECT) * NODE_FIELDS) as u64;
    // The root's one edge, to `(held outside)` (node 1).
    out.row(true, &[EDGE_ELEMENT, 1, NODE_FIELDS as u64])?;
    for (i, &h) in holders.iter().enumerate() {
        out.row(false, &[EDGE_ELEMENT, i as u64, to_node(h)])?;
    }
    // Each label's kind and name, found once: by text for a whole label,
    // by text and index for a template one (`.kids[#]`: `kids[3]`).
    let mut whole: Vec<Option<(u64, u32)>> = Vec::new();
    let mut templates: Vec<Vec<Option<(u64, u32)>>> = Vec::new();
    let mut label = String::new();
    let mut name_of = |text: u32, index: u32, strings: &mut Strings| {
        graph.write_label(text, index, &mut label);
        match element_index(&label) {
            Some(index) => (EDGE_ELEMENT, index),
            None => (
                EDGE_PROPERTY,
                strings.intern(label.strip_prefix('.').unwrap_or(&label)),
            ),
        }
    };
    /// Indices up to this are cached per template.
    const CACHED_INDICES: u32 = 1 << 16;
    for n in 0..graph.len() {
        for (to, text, index) in graph.referent_codes(n) {
            let t = text as usize;
            let slot = if HeapGraph::label_is_whole(index) {
                if t >= whole.len() {
                    whole.resize(t + 1, None);
                }
                Some(&mut whole[t])
            } else if index < CACHED_INDICES {
                if t >= templates.len() {
                    templates.resize_with(t + 1, Vec::new);
                }
                let cache = &mut templates[t];
                if index as usize >= cache.len() {
                    cache.resize(index as usize + 1, None);
                }
                Some(&mut cache[index as usize])
            } else {
                None
            };
            let (kind, name) = match slot {
                Some(Some(known)) => *known,
                Some(slot) => *slot.insert(name_of(text, index, &mut strings)),
                None => name_of(text, index, &mut strings),
            };
            out.row(false, &[kind, u64::from(name), to_node(to)])?;
        }
    }

    match &traces {
        #[cfg(feature = "sites")]
        Some(t) => {
            let (infos, tree) = t.write_json(|s| strings.intern(s));
            out.bytes(b"],\n\"trace_function_infos\":[")?;
            out.bytes(infos.as_bytes())?;
            out.bytes(b"],\"trace_tree\":[")?;
            out.bytes(tree.as_bytes())?;
            out.bytes(b"],\"samples\":[],\"locations\":[],\n\"strings\":[")?;
        }
        _ => out.bytes(
            b"],\n\"trace_function_infos\":[],\"trace_tree\":[],\"samples\":[],\"locations\":[],\n\"strings\":[",
        )?,
    }
    let mut text = String::new();
    for (i, s) in strings.list.iter().enumerate() {
        text.clear();
        if i > 0 {
            text.push_str(",\n");
        }
        json_string(&mut text, s);
        out.bytes(text.as_bytes())?;
    }
    out.bytes(b"]}\n")?;
    out.out.flush()
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
    use super::{digits, element_index, json_string, MAX_DIGITS};

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut values = vec![0, 9, 10, 99, 100, 101, 999, 1000, u64::MAX];
        values.extend((0..64).map(|b| 1u64 << b));
        values.extend((1..20).map(|p| 10u64.pow(p) - 1));
        for n in values {
            let mut buf = [0u8; MAX_DIGITS];
            let at = digits(&mut buf, n);
            assert_eq!(std::str::from_utf8(&buf[at..]).unwrap(), n.to_string());
        }
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
