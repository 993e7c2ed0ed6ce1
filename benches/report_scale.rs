//! The reporter on a big heap (issue 20): a fan-out-8 tree of N live `Gc`
//! nodes, each query run a few times, one JSON line per query on stdout.
//!
//! ```text
//! cargo bench --bench report_scale                      # N = 1,000,000, 3 rounds
//! RCYCLE_REPORT_N=10000000 RCYCLE_REPORT_ROUNDS=1 cargo bench --bench report_scale
//! benches/report_scale.sh                               # with Python's tools beside it
//! ```
//!
//! The binary runs only when given `--bench` (as `cargo bench` does), so
//! `cargo test --benches` does not run it.
//!
//! Environment:
//! - `RCYCLE_REPORT_N`: live nodes (default 1,000,000);
//! - `RCYCLE_REPORT_ROUNDS`: rounds per query (default 3);
//! - `RCYCLE_REPORT_ONLY`: a comma-separated list of query names to run
//!   (default all; `build` always runs).
//!
//! The tree: `struct Node { id: u64, kids: RefCell<Vec<Gc<Node>>> }`, node
//! `i > 0` is the child of node `(i - 1) / 8`, made in order of `i`. The
//! bench keeps two handles: the root (node 0) and the leaf (node N - 1, the
//! last made); everything else is held through the tree only.
//!
//! Each line: `{"impl":"rcycle","query":..,"n":..,"rounds":..,"median_ms":..,
//! "min_ms":..,"ms":[..],"peak_bytes":..}` and query-specific fields.
//! `peak_bytes` is the most memory (through the global allocator, which a
//! counting allocator in this binary watches) the query had allocated on
//! top of what was live before it, over its rounds. `HeapGraph::capture`
//! adds `held_bytes` / `held_bytes_per_object` (live bytes while the capture
//! is alive, minus before); the DevTools export adds `bytes_written` /
//! `bytes_per_object` (written to `io::sink()` through a counting writer).
//!
//! Every result is checked once, outside the timed region, so that a broken
//! query cannot be timed silently: the bench panics instead.
//!
//! Queries (the name in the JSON line, then the call):
//! `build` (the tree, then dropping the builder's `Vec` of handles; one
//! round), `collect_after_build` (the first `rcycle::collect()`, which
//! scans what the build left in the candidate buffer; one round), `collect`
//! (`rcycle::collect()` on the idle heap), `live_report`, `count`
//! (`count::<Node>()`), `referrers` (of the leaf), `why_alive` (of the
//! leaf), `retained_size` (of the root), `dot_backrefs` (`dot::backrefs` of
//! the leaf, default options), `capture` (`HeapGraph::capture()`),
//! `devtools` (`devtools::write_heap_snapshot_to`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::hint::black_box;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use rcycle::report::dot::DotOptions;
use rcycle::report::{HeapGraph, ObjectId};
use rcycle::{Gc, Trace};

/// The system allocator, counting the bytes live and the peak since the
/// last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are
// updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_bytes() -> usize {
    LIVE.load(Relaxed)
}

/// Starts watching the peak: returns the live bytes now.
fn reset_peak() -> usize {
    let now = LIVE.load(Relaxed);
    PEAK.store(now, Relaxed);
    now
}

#[derive(Trace)]
struct Node {
    id: u64,
    kids: RefCell<Vec<Gc<Node>>>,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.replace('_', ""))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The depth of node `i` (the root's is 0).
fn depth(mut i: usize) -> usize {
    let mut d = 0;
    while i > 0 {
        i = (i - 1) / 8;
        d += 1;
    }
    d
}

/// A writer that counts what it is given and keeps the last bytes.
struct CountingWriter {
    bytes: u64,
    tail: Vec<u8>,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.tail
            .extend_from_slice(&buf[buf.len().saturating_sub(16)..]);
        let excess = self.tail.len().saturating_sub(16);
        self.tail.drain(..excess);
        io::sink().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Bench {
    n: usize,
    rounds: usize,
    only: Option<Vec<String>>,
}

impl Bench {
    fn wanted(&self, query: &str) -> bool {
        query == "build"
            || self
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|q| q == query))
    }

    /// Runs `query` `rounds` times; `check` sees the first round's result
    /// (outside the timed region) and returns extra JSON fields. With more
    /// than one round, one more round runs first, untimed (checked): a
    /// warm-up, as criterion's. On this project's virtual machine the first
    /// rounds after a process frees a lot of memory can take two to four
    /// times longer in the kernel (fresh pages the host has taken back, see
    /// benches/notes.md), and a median of five rounds could land on them.
    fn run<R>(
        &self,
        name: &str,
        rounds: usize,
        mut query: impl FnMut() -> R,
        mut check: impl FnMut(&R) -> serde_json::Map<String, serde_json::Value>,
    ) {
        if !self.wanted(name) {
            return;
        }
        let mut ms = Vec::with_capacity(rounds);
        let mut peak = 0;
        let mut extra = serde_json::Map::new();
        if rounds > 1 {
            let result = black_box(query());
            extra = check(&result);
            drop(result);
        }
        for round in 0..rounds {
            let before = reset_peak();
            let start = Instant::now();
            let result = black_box(query());
            let elapsed = start.elapsed();
            peak = peak.max(PEAK.load(Relaxed) - before);
            ms.push(elapsed.as_secs_f64() * 1e3);
            if round == 0 && rounds == 1 {
                extra = check(&result);
            }
            drop(result);
        }
        let mut sorted = ms.clone();
        sorted.sort_by(f64::total_cmp);
        let median = if sorted.len() % 2 == 1 {
            sorted[sorted.len() / 2]
        } else {
            (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
        };
        let mut line = serde_json::Map::new();
        line.insert("impl".into(), "rcycle".into());
        line.insert("query".into(), name.into());
        line.insert("n".into(), self.n.into());
        line.insert("rounds".into(), rounds.into());
        line.insert("median_ms".into(), round3(median).into());
        line.insert("min_ms".into(), round3(sorted[0]).into());
        line.insert(
            "ms".into(),
            ms.iter().map(|&m| round3(m)).collect::<Vec<_>>().into(),
        );
        line.insert("peak_bytes".into(), peak.into());
        line.extend(extra);
        println!("{}", serde_json::Value::Object(line));
        eprintln!("  {name}: median {median:.1} ms");
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn fields(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: run
    // only when asked to bench (by hand: `report_scale-<hash> --bench`).
    if !std::env::args().skip(1).any(|a| a == "--bench") {
        eprintln!("report_scale: not run (use `cargo bench --bench report_scale`)");
        return;
    }
    let bench = Bench {
        n: env_usize("RCYCLE_REPORT_N", 1_000_000).max(2),
        rounds: env_usize("RCYCLE_REPORT_ROUNDS", 3).max(1),
        only: std::env::var("RCYCLE_REPORT_ONLY")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| v.split(',').map(|q| q.trim().to_string()).collect()),
    };
    let (n, rounds) = (bench.n, bench.rounds);
    eprintln!("report_scale: {n} nodes, {rounds} rounds");

    // The tree. One round: it is what every other query measures.
    let mut tree = None;
    bench.run(
        "build",
        1,
        || {
            let nodes: Vec<Gc<Node>> = (0..n as u64)
                .map(|id| {
                    Gc::new(Node {
                        id,
                        kids: RefCell::new(Vec::new()),
                    })
                })
                .collect();
            for (i, node) in nodes.iter().enumerate().skip(1) {
                nodes[(i - 1) / 8].kids.borrow_mut().push(node.clone());
            }
            let root = nodes[0].clone();
            let leaf = nodes[n - 1].clone();
            drop(nodes);
            tree = Some((root, leaf));
        },
        |_| fields(&[("live_bytes", live_bytes().into())]),
    );
    let (root, leaf) = tree.expect("the tree was built");
    assert_eq!((root.id, leaf.id), (0, n as u64 - 1));
    let leaf_depth = depth(n - 1);

    bench.run("collect_after_build", 1, rcycle::collect, |&freed| {
        fields(&[("freed", freed.into())])
    });
    bench.run("collect", rounds, rcycle::collect, |&freed| {
        assert_eq!(freed, 0, "collect: the tree is alive");
        fields(&[("freed", freed.into())])
    });

    // The live report's total: what `retained_size(&root)` is checked against.
    let report = rcycle::live_report();
    let total_size = report.size();
    drop(report);
    bench.run("live_report", rounds, rcycle::live_report, |r| {
        assert_eq!(r.count(), n, "live_report: every node and nothing else");
        fields(&[("size", r.size().into())])
    });
    bench.run("count", rounds, rcycle::report::count::<Node>, |&c| {
        assert_eq!(c, n, "count::<Node>()");
        fields(&[])
    });
    // Reference for `count`: the memory floor of any walk over the slots.
    // `count` reads one header per slot of the heap's chunks; this reads
    // the same bytes in a plain array (a slot: the 16-byte header and the
    // node, 8-aligned), two words per slot, so its growth from 1M to 10M is
    // what the memory system alone gives such a walk. Not run on a huge
    // heap (the array would double it).
    if n <= 20_000_000 && bench.wanted("slot_floor") {
        let slot = (16 + std::mem::size_of::<Node>()).next_multiple_of(8);
        let words: Vec<u32> = (0..n * slot / 4).map(|i| i as u32 | 1).collect();
        let per_slot = slot / 4;
        bench.run(
            "slot_floor",
            rounds,
            || {
                let mut hits = 0usize;
                for s in words.chunks_exact(per_slot) {
                    hits += usize::from(s[3] != 0 && s[2] == 0);
                }
                hits
            },
            |&hits| {
                assert_eq!(hits, 0, "slot_floor: the pattern matches no slot");
                fields(&[("slot_bytes", slot.into())])
            },
        );
    }
    bench.run(
        "referrers",
        rounds,
        || rcycle::report::referrers(&leaf),
        |r| {
            assert_eq!(r.len(), 1, "referrers(&leaf): its parent only");
            let parent = &r[0];
            assert!(parent.object.type_name.ends_with("Node"));
            let slot = (n - 2) % 8;
            assert!(
                parent.label.ends_with(&format!("[{slot}]")),
                "referrers(&leaf): label {:?}",
                parent.label
            );
            fields(&[("label", parent.label.clone().into())])
        },
    );
    bench.run(
        "why_alive",
        rounds,
        || rcycle::why_alive(&leaf),
        |chain| {
            let chain = chain.as_ref().expect("why_alive(&leaf): a chain");
            assert_eq!(
                chain.links.len(),
                leaf_depth + 1,
                "why_alive(&leaf): root to leaf, one link per level"
            );
            assert_eq!(chain.links[0].object.id, ObjectId::of(&root));
            assert_eq!(chain.links[leaf_depth].object.id, ObjectId::of(&leaf));
            fields(&[("links", chain.links.len().into())])
        },
    );
    // The root retains every node but the leaf, which this bench holds too.
    let leaf_size = {
        let graph = HeapGraph::capture();
        let node = graph.find(ObjectId::of(&leaf)).expect("the leaf is live");
        graph.objects()[node].size
    };
    bench.run(
        "retained_size",
        rounds,
        || rcycle::report::retained_size(&root),
        |&size| {
            assert_eq!(
                size,
                total_size - leaf_size,
                "retained_size(&root): the live report's total but the leaf"
            );
            fields(&[
                ("bytes", size.into()),
                ("live_report_size", total_size.into()),
            ])
        },
    );
    // No Python counterpart (Eclipse MAT's report): timed for the record.
    bench.run(
        "leak_suspects",
        rounds,
        rcycle::report::leak_suspects,
        |s| {
            let first = &s.suspects()[0];
            assert_eq!(
                first.object.id,
                ObjectId::of(&root),
                "leak_suspects: the root"
            );
            fields(&[("suspects", s.suspects().len().into())])
        },
    );
    let leaf_id = ObjectId::of(&leaf);
    bench.run(
        "dot_backrefs",
        rounds,
        || rcycle::report::dot::backrefs(&[leaf_id], &DotOptions::default()),
        |dot| {
            assert!(dot.starts_with("digraph rcycle {"));
            // Three levels of parents, and the bench's handle on the leaf.
            let edges = dot.lines().filter(|l| l.contains(" -> ")).count();
            assert!(
                edges == DotOptions::default().max_depth.min(leaf_depth) + 1,
                "dot::backrefs: {edges} edges"
            );
            fields(&[("edges", edges.into()), ("bytes", dot.len().into())])
        },
    );
    // The capture is held while the live bytes are read.
    bench.run(
        "capture",
        rounds,
        || {
            let before = live_bytes();
            let graph = HeapGraph::capture();
            let held = live_bytes() - before;
            (graph, held)
        },
        |(graph, held)| {
            assert_eq!(graph.len(), n, "HeapGraph::capture: every node");
            assert_eq!(graph.edges().count(), n - 1, "HeapGraph::capture: edges");
            fields(&[
                ("held_bytes", (*held).into()),
                (
                    "held_bytes_per_object",
                    round3(*held as f64 / n as f64).into(),
                ),
            ])
        },
    );
    bench.run(
        "devtools",
        rounds,
        || {
            let mut out = CountingWriter {
                bytes: 0,
                tail: Vec::new(),
            };
            let result = rcycle::report::devtools::write_heap_snapshot_to(&mut out);
            (result, out)
        },
        |(result, out)| {
            result.as_ref().expect("write_heap_snapshot_to(sink)");
            assert!(out.tail.ends_with(b"]}\n"), "devtools: a whole snapshot");
            assert!(out.bytes > 10 * n as u64, "devtools: {} bytes", out.bytes);
            fields(&[
                ("bytes_written", out.bytes.into()),
                (
                    "bytes_per_object",
                    round3(out.bytes as f64 / n as f64).into(),
                ),
            ])
        },
    );
    drop((root, leaf));
}
