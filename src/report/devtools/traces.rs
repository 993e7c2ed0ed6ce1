//! Allocation stacks in the DevTools export (cargo feature `sites`): the
//! heap snapshot's `trace_function_infos` and `trace_tree`, and each node's
//! `trace_node_id`, as V8 writes them when allocations are tracked. DevTools
//! then shows an object's *Allocation stack*, and memlab its allocation
//! site.
//!
//! The trace tree is V8's: a root `(root)` node, then one path per
//! distinct allocation stack, outermost frame first, so that an object's
//! trace node is its innermost frame (what allocated it). A frame is a
//! function info named by the frame's text (`file:line`, or the function's
//! name without debug information), its script the file, its line the line.

use std::collections::HashMap;

use super::super::sites::FrameNames;
use super::super::HeapGraph;
use crate::runtime::query;

/// Fields of a function info, as written in `snapshot.meta`.
pub(super) const FUNCTION_INFO_FIELDS: &str =
    r#"["function_id","name","script_name","script_id","line","column"]"#;
/// Fields of a trace node, as written in `snapshot.meta`.
pub(super) const TRACE_NODE_FIELDS: &str =
    r#"["id","function_info_index","count","size","children"]"#;

/// One node of the trace tree.
struct TraceNode {
    id: u32,
    function: u32,
    count: u64,
    size: u64,
    children: Vec<usize>,
}

/// The allocation stacks of a graph's nodes, ready to write.
pub(super) struct Traces {
    /// Per graph node, its trace node id (0: no site recorded).
    node_trace: Vec<u32>,
    /// Function infos: (name, script name, script id, line); the first is
    /// `(root)`.
    functions: Vec<(String, String, u32, u32)>,
    /// The tree, node 0 its root.
    nodes: Vec<TraceNode>,
}

impl Traces {
    /// The stacks of `graph`'s nodes, from the heap's site table (the nodes
    /// are the objects at their addresses: nothing was freed since the
    /// capture, which the caller checked). Runs no user code.
    pub(super) fn of(graph: &HeapGraph) -> Traces {
        let rt = query();
        let heap = &rt.heap;
        let mut names = FrameNames::default();
        let mut functions = vec![("(root)".to_string(), String::new(), 0, 0)];
        let mut function_of: HashMap<String, u32> = HashMap::new();
        let mut scripts: HashMap<String, u32> = HashMap::new();
        let mut nodes = vec![TraceNode {
            id: 1,
            function: 0,
            count: 0,
            size: 0,
            children: Vec::new(),
        }];
        let mut child_of: HashMap<(usize, u32), usize> = HashMap::new();
        let mut node_trace = vec![0u32; graph.len()];
        for (n, trace) in node_trace.iter_mut().enumerate() {
            let Some(header) =
                std::ptr::NonNull::new(graph.id(n).addr() as *mut crate::header::Header)
            else {
                continue;
            };
            let Some(frames) = names.site_frames(heap, header) else {
                continue;
            };
            // From the root down: outermost frame first.
            let mut at = 0;
            for frame in frames.iter().rev() {
                let function = *function_of.entry(frame.clone()).or_insert_with(|| {
                    let (script, line) = split_frame(frame);
                    let next = scripts.len() as u32 + 1;
                    let script_id = *scripts.entry(script.to_string()).or_insert(next);
                    functions.push((frame.clone(), script.to_string(), script_id, line));
                    functions.len() as u32 - 1
                });
                at = *child_of.entry((at, function)).or_insert_with(|| {
                    nodes.push(TraceNode {
                        id: nodes.len() as u32 + 1,
                        function,
                        count: 0,
                        size: 0,
                        children: Vec::new(),
                    });
                    let child = nodes.len() - 1;
                    nodes[at].children.push(child);
                    child
                });
            }
            nodes[at].count += 1;
            nodes[at].size += graph.size(n) as u64;
            *trace = nodes[at].id;
        }
        Traces {
            node_trace,
            functions,
            nodes,
        }
    }

    /// Node `n`'s trace node id (0: no site recorded).
    pub(super) fn trace_of(&self, n: usize) -> u32 {
        self.node_trace[n]
    }

    /// Whether any node has a stack (else the snapshot says nothing of
    /// traces, as V8's does when allocations are not tracked).
    pub(super) fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The number of function infos (`snapshot.trace_function_count`).
    pub(super) fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// `trace_function_infos` and `trace_tree`, as JSON array bodies, with
    /// the names and script names interned by `intern`.
    pub(super) fn write_json(&self, mut intern: impl FnMut(&str) -> u32) -> (String, String) {
        use std::fmt::Write;
        let mut infos = String::new();
        for (i, (name, script, script_id, line)) in self.functions.iter().enumerate() {
            if i > 0 {
                infos.push(',');
            }
            let _ = write!(
                infos,
                "{},{},{},{},{},0",
                i,
                intern(name),
                intern(script),
                script_id,
                line
            );
        }
        // The tree, without recursion: each node is written when entered,
        // and its children's list closed when it is left.
        let mut tree = String::new();
        let mut stack = vec![(0usize, 0usize)];
        let write_node = |tree: &mut String, node: &TraceNode| {
            let _ = write!(
                tree,
                "{},{},{},{},[",
                node.id, node.function, node.count, node.size
            );
        };
        write_node(&mut tree, &self.nodes[0]);
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            match self.nodes[node].children.get(next) {
                Some(&child) => {
                    top.1 += 1;
                    if next > 0 {
                        tree.push(',');
                    }
                    write_node(&mut tree, &self.nodes[child]);
                    stack.push((child, 0));
                }
                None => {
                    tree.push(']');
                    stack.pop();
                }
            }
        }
        (infos, tree)
    }
}

/// A frame's file and line (`src/a.rs:12` -> (`src/a.rs`, 12)); a frame
/// without one (a function's name) is its own script, line 0.
fn split_frame(frame: &str) -> (&str, u32) {
    match frame.rsplit_once(':') {
        Some((file, line)) => match line.parse() {
            Ok(line) => (file, line),
            Err(_) => (frame, 0),
        },
        None => (frame, 0),
    }
}
