//! The DevTools export over a large heap (issue 20): a fan-out-8 tree of
//! `struct Node { id: u64, kids: RefCell<Vec<Gc<Node>>> }`, 1M objects by
//! default (`RCYCLE_BENCH_OBJECTS`). Target: `devtools::write_heap_snapshot`
//! no slower than Python's `gc.collect()` on the same tree (~190 ms).
//!
//! `RCYCLE_BENCH_ONCE=1` skips criterion and prints one run of each step
//! (the capture, the export of a captured graph, the whole export) with the
//! file's bytes per object.

use std::cell::RefCell;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use rcycle::report::{devtools, HeapGraph};
use rcycle::{Gc, Trace};

#[derive(Trace)]
struct Node {
    id: u64,
    kids: RefCell<Vec<Gc<Node>>>,
}

/// A tree of `n` nodes: each node has up to 8 children.
fn tree(n: usize) -> Gc<Node> {
    let nodes: Vec<Gc<Node>> = (0..n)
        .map(|i| {
            Gc::new(Node {
                id: i as u64,
                kids: RefCell::new(Vec::new()),
            })
        })
        .collect();
    for (i, node) in nodes.iter().enumerate().skip(1) {
        nodes[(i - 1) / 8].kids.borrow_mut().push(node.clone());
    }
    nodes[0].clone()
}

fn objects() -> usize {
    std::env::var("RCYCLE_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn once(n: usize) {
    let path =
        std::env::temp_dir().join(format!("rcycle-bench-{}.heapsnapshot", std::process::id()));
    for round in 0..3 {
        let t = Instant::now();
        let graph = HeapGraph::capture();
        let capture = t.elapsed();
        let t = Instant::now();
        graph.write_heap_snapshot(std::io::sink()).unwrap();
        let write = t.elapsed();
        drop(graph);
        let t = Instant::now();
        devtools::write_heap_snapshot(&path).unwrap();
        let whole = t.elapsed();
        let bytes = std::fs::metadata(&path).unwrap().len();
        println!(
            "round {round}: {n} objects: capture {capture:.1?}, write a captured graph {write:.1?}, \
             write_heap_snapshot (file) {whole:.1?}, {bytes} bytes ({:.1} B/object)",
            bytes as f64 / n as f64
        );
    }
    std::fs::remove_file(&path).unwrap();
}

fn bench_devtools(c: &mut Criterion) {
    let n = objects();
    let root = tree(n);
    assert_eq!(root.id, 0);
    if std::env::var_os("RCYCLE_BENCH_ONCE").is_some() {
        once(n);
        return;
    }
    let mut group = c.benchmark_group(format!("devtools/{n}_objects"));
    group.sample_size(10);
    group.bench_function("write_heap_snapshot_to_sink", |b| {
        b.iter(|| devtools::write_heap_snapshot_to(std::io::sink()).unwrap())
    });
    group.finish();
    drop(root);
}

criterion_group!(benches, bench_devtools);
criterion_main!(benches);
