//! The reporter over a large heap: `live_report()` must stay well under a
//! second for 1,000,000 live objects (target: 50 ms), and a full
//! `HeapGraph::capture()` (every edge with its label) must be usable too.

use std::cell::RefCell;

use criterion::{criterion_group, criterion_main, Criterion};
use rcycle::report::HeapGraph;
use rcycle::{Gc, Trace};

#[derive(Trace)]
struct Node {
    name: String,
    children: RefCell<Vec<Gc<Node>>>,
}

/// A tree of `n` nodes: each node has up to 8 children.
fn tree(n: usize) -> Gc<Node> {
    let nodes: Vec<Gc<Node>> = (0..n)
        .map(|i| {
            Gc::new(Node {
                name: format!("n{i}"),
                children: RefCell::new(Vec::new()),
            })
        })
        .collect();
    for (i, node) in nodes.iter().enumerate().skip(1) {
        nodes[(i - 1) / 8].children.borrow_mut().push(node.clone());
    }
    nodes[0].clone()
}

fn bench_report(c: &mut Criterion) {
    let n = std::env::var("RCYCLE_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let root = tree(n);
    let mut group = c.benchmark_group(format!("report/{n}_objects"));
    group.sample_size(10);
    group.bench_function("live_report", |b| {
        b.iter(|| {
            let report = rcycle::live_report();
            assert_eq!(report.count(), n);
            report
        })
    });
    group.bench_function("heap_graph_capture", |b| {
        b.iter(|| {
            let graph = HeapGraph::capture();
            assert_eq!(graph.len(), n);
            graph
        })
    });
    group.finish();
    drop(root);
}

criterion_group!(benches, bench_report);
criterion_main!(benches);
