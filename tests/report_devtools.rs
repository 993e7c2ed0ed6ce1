//! Chrome DevTools heap snapshot export: the file parses as JSON and is a
//! consistent V8 `.heapsnapshot` of exactly what the test built. Every test
//! runs on its own thread, with its own heap, so all counts are exact.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

use rcycle::{collect, devtools, live_report, outside_holders, Gc, ObjectId, Trace};
use serde_json::Value;

#[derive(Trace)]
struct Node {
    parent: RefCell<Option<Gc<Node>>>,
    children: RefCell<Vec<Gc<Node>>>,
}

#[derive(Trace)]
struct Iq {
    id: u64,
}

#[derive(Trace)]
struct Dispatcher {
    expected: RefCell<HashMap<u64, Gc<Iq>>>,
    cache: HashMap<String, Gc<Iq>>,
}

const NODE_FIELDS: usize = 7;
const EDGE_FIELDS: usize = 3;

/// The id the snapshot gives an object (documented in `rcycle::devtools`).
fn snapshot_id(id: ObjectId) -> u64 {
    u64::from(((id.addr() >> 3) as u32) << 1 | 1)
}

/// A parsed snapshot, with the flat arrays as numbers.
struct Snapshot {
    json: Value,
    nodes: Vec<u64>,
    edges: Vec<u64>,
    strings: Vec<String>,
}

impl Snapshot {
    fn parse(text: &str) -> Snapshot {
        let json: Value = serde_json::from_str(text).expect("valid JSON");
        let numbers = |key: &str| -> Vec<u64> {
            json[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        };
        let (nodes, edges) = (numbers("nodes"), numbers("edges"));
        let strings = json["strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        Snapshot {
            json,
            nodes,
            edges,
            strings,
        }
    }

    fn node_count(&self) -> usize {
        self.nodes.len() / NODE_FIELDS
    }

    fn field(&self, node: usize, field: usize) -> u64 {
        self.nodes[node * NODE_FIELDS + field]
    }

    fn name(&self, node: usize) -> &str {
        &self.strings[self.field(node, 1) as usize]
    }

    fn node_type(&self, node: usize) -> &str {
        let t = self.field(node, 0) as usize;
        self.json["snapshot"]["meta"]["node_types"][0][t]
            .as_str()
            .unwrap()
    }

    fn node_with_id(&self, id: u64) -> usize {
        (0..self.node_count())
            .find(|&n| self.field(n, 2) == id)
            .expect("a node with that id")
    }

    /// Every edge as `(from node, type, name, to node)`; element edges are
    /// named `[index]`.
    fn edge_list(&self) -> Vec<(usize, String, String, usize)> {
        let types = &self.json["snapshot"]["meta"]["edge_types"][0];
        let mut list = Vec::new();
        let mut e = 0;
        for n in 0..self.node_count() {
            for _ in 0..self.field(n, 4) {
                let kind = types[self.edges[e] as usize].as_str().unwrap().to_string();
                let name_or_index = self.edges[e + 1];
                let name = if kind == "element" {
                    format!("[{name_or_index}]")
                } else {
                    self.strings[name_or_index as usize].clone()
                };
                let to = self.edges[e + 2] as usize / NODE_FIELDS;
                list.push((n, kind, name, to));
                e += EDGE_FIELDS;
            }
        }
        assert_eq!(e, self.edges.len());
        list
    }
}

/// Builds a known graph; the returned handles are its outside holders.
#[allow(clippy::type_complexity)]
fn build() -> (Gc<Node>, Gc<Dispatcher>, Gc<Vec<Gc<u32>>>, Gc<String>) {
    let root = Gc::new(Node {
        parent: RefCell::new(None),
        children: RefCell::new(Vec::new()),
    });
    for _ in 0..3 {
        let kid = Gc::new(Node {
            parent: RefCell::new(Some(root.clone())),
            children: RefCell::new(Vec::new()),
        });
        root.children.borrow_mut().push(kid);
    }
    let dispatcher = Gc::new(Dispatcher {
        expected: RefCell::new((0..25).map(|id| (id, Gc::new(Iq { id }))).collect()),
        cache: HashMap::from([(r#"say "hi"\"#.to_string(), Gc::new(Iq { id: 99 }))]),
    });
    let list = Gc::new(vec![Gc::new(10u32), Gc::new(11u32)]);
    let name = Gc::new(String::from("loose"));
    (root, dispatcher, list, name)
}

/// The snapshot, written to a temporary file and read back (from memory
/// under Miri, whose isolation forbids the file system).
fn snapshot_text(test: &str) -> String {
    if cfg!(miri) {
        let mut bytes = Vec::new();
        devtools::write_heap_snapshot_to(&mut bytes).unwrap();
        return String::from_utf8(bytes).unwrap();
    }
    let path =
        std::env::temp_dir().join(format!("rcycle-{test}-{}.heapsnapshot", std::process::id()));
    devtools::write_heap_snapshot(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    text
}

#[test]
fn snapshot_file_is_a_consistent_v8_heap_snapshot() {
    collect();
    let (root, dispatcher, list, name) = build();
    let text = snapshot_text("report-devtools");
    let snap = Snapshot::parse(&text);
    let meta = &snap.json["snapshot"]["meta"];
    assert_eq!(meta["node_fields"].as_array().unwrap().len(), NODE_FIELDS);
    assert_eq!(meta["edge_fields"].as_array().unwrap().len(), EDGE_FIELDS);
    assert_eq!(meta["node_fields"][4], "edge_count");
    assert_eq!(meta["edge_fields"][2], "to_node");
    for key in ["trace_function_infos", "trace_tree", "samples", "locations"] {
        assert_eq!(snap.json[key], Value::Array(Vec::new()), "{key}");
    }

    // Counts: 4 nodes + dispatcher + 26 Iq + list + 2 u32 + String, and root.
    let node_count = snap.json["snapshot"]["node_count"].as_u64().unwrap() as usize;
    let edge_count = snap.json["snapshot"]["edge_count"].as_u64().unwrap() as usize;
    assert_eq!(snap.nodes.len() % NODE_FIELDS, 0);
    assert_eq!(snap.edges.len() % EDGE_FIELDS, 0);
    assert_eq!(node_count, snap.nodes.len() / NODE_FIELDS);
    assert_eq!(edge_count, snap.edges.len() / EDGE_FIELDS);
    assert_eq!(node_count, 1 + 4 + 1 + 26 + 1 + 2 + 1);
    let summed: u64 = (0..node_count).map(|n| snap.field(n, 4)).sum();
    assert_eq!(summed as usize, edge_count);
    // 6 parent/children + 26 dispatcher + 2 list edges, 4 root edges.
    assert_eq!(edge_count, 6 + 26 + 2 + 4);
    for e in snap.edges.chunks(EDGE_FIELDS) {
        assert_eq!(e[2] % NODE_FIELDS as u64, 0);
        assert!((e[2] as usize) < snap.nodes.len());
    }

    // The root: synthetic, id 1, no size.
    assert_eq!(snap.node_type(0), "synthetic");
    assert_eq!(snap.name(0), "(held outside)");
    assert_eq!((snap.field(0, 2), snap.field(0, 3)), (1, 0));

    // Objects: odd unique ids, per-type counts and sizes equal live_report's.
    let ids: Vec<u64> = (0..node_count).map(|n| snap.field(n, 2)).collect();
    assert!(ids.iter().all(|id| id % 2 == 1));
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), node_count);
    let mut by_type: HashMap<&str, (usize, u64)> = HashMap::new();
    for n in 1..node_count {
        assert_eq!(snap.node_type(n), "object");
        assert_eq!((snap.field(n, 5), snap.field(n, 6)), (0, 0));
        let slot = by_type.entry(snap.name(n)).or_default();
        slot.0 += 1;
        slot.1 += snap.field(n, 3);
    }
    let report = live_report();
    assert_eq!(by_type.len(), report.rows().len());
    for row in report.rows() {
        assert_eq!(
            by_type[row.kind.as_str()],
            (row.count, row.size as u64),
            "{}",
            row.kind
        );
    }
    assert_eq!(by_type["report_devtools::Iq"].0, 26);
    assert_eq!(by_type["report_devtools::Node"].0, 4);

    // The root's edges reach exactly the outside holders, named [0], [1], ...
    let edges = snap.edge_list();
    let from_root: Vec<_> = edges.iter().filter(|e| e.0 == 0).collect();
    let reached: BTreeSet<u64> = from_root.iter().map(|e| snap.field(e.3, 2)).collect();
    let holders: BTreeSet<u64> = outside_holders()
        .iter()
        .map(|h| snapshot_id(h.object.id))
        .collect();
    let ours: BTreeSet<u64> = [
        ObjectId::of(&root),
        ObjectId::of(&dispatcher),
        ObjectId::of(&list),
        ObjectId::of(&name),
    ]
    .into_iter()
    .map(snapshot_id)
    .collect();
    assert_eq!(reached, holders);
    assert_eq!(reached, ours);
    for (i, e) in from_root.iter().enumerate() {
        assert_eq!((e.1.as_str(), e.2.clone()), ("element", format!("[{i}]")));
    }

    // Edges are named by their field paths.
    let node_of = |gc_id: ObjectId| snap.node_with_id(snapshot_id(gc_id));
    let r = node_of(ObjectId::of(&root));
    let kid0 = node_of(ObjectId::of(&root.children.borrow()[0]));
    let named = |from: usize, to: usize| -> Vec<(String, String)> {
        edges
            .iter()
            .filter(|e| e.0 == from && e.3 == to)
            .map(|e| (e.1.clone(), e.2.clone()))
            .collect()
    };
    let prop = |s: &str| ("property".to_string(), s.to_string());
    assert_eq!(named(r, kid0), [prop("children[0]")]);
    assert_eq!(named(kid0, r), [prop("parent")]);
    let iq7 = node_of(ObjectId::of(&dispatcher.expected.borrow()[&7]));
    assert_eq!(
        named(node_of(ObjectId::of(&dispatcher)), iq7),
        [prop("expected[7]")]
    );
    let iq99 = node_of(ObjectId::of(&dispatcher.cache[r#"say "hi"\"#]));
    assert_eq!(
        named(node_of(ObjectId::of(&dispatcher)), iq99),
        [prop(r#"cache["say \"hi\"\\"]"#)]
    );
    let l = node_of(ObjectId::of(&list));
    let second = node_of(ObjectId::of(&list[1]));
    assert_eq!(
        named(l, second),
        [("element".to_string(), "[1]".to_string())]
    );
    assert_eq!(snap.name(second), "u32");
    let graph = rcycle::HeapGraph::capture();
    let info = &graph.objects()[graph.find(ObjectId::of(&list[1])).unwrap()];
    assert_eq!(snap.field(second, 3), info.size as u64);

    // The strings table is deduplicated.
    let distinct: HashSet<&String> = snap.strings.iter().collect();
    assert_eq!(distinct.len(), snap.strings.len());
    assert_eq!(
        snap.strings.iter().filter(|s| *s == "parent").count(),
        1,
        "three parent edges share one string"
    );

    // The same heap gives the same text, by every entry point.
    assert_eq!(devtools::heap_snapshot_json(), text);
    let mut bytes = Vec::new();
    devtools::write_heap_snapshot_to(&mut bytes).unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), text);
    assert_eq!(rcycle::HeapGraph::capture().heap_snapshot_json(), text);

    drop((root, dispatcher, list, name));
    assert_eq!(collect(), 4);
    assert_eq!(
        Snapshot::parse(&devtools::heap_snapshot_json()).node_count(),
        1
    );
}

#[test]
fn garbage_is_in_the_snapshot_but_unreachable_from_the_root() {
    collect();
    let a = Gc::new(Node {
        parent: RefCell::new(None),
        children: RefCell::new(Vec::new()),
    });
    let b = Gc::new(Node {
        parent: RefCell::new(Some(a.clone())),
        children: RefCell::new(Vec::new()),
    });
    a.children.borrow_mut().push(b);
    drop(a);
    let kept = Gc::new(Iq { id: 1 });

    let snap = Snapshot::parse(&devtools::heap_snapshot_json());
    assert_eq!(snap.node_count(), 4);
    let edges = snap.edge_list();
    let from_root: Vec<_> = edges.iter().filter(|e| e.0 == 0).collect();
    assert_eq!(from_root.len(), 1);
    assert_eq!(
        snap.field(from_root[0].3, 2),
        snapshot_id(ObjectId::of(&kept))
    );
    let names: BTreeSet<&str> = edges.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["[0]", "children[0]", "parent"]));

    assert_eq!(collect(), 2);
    let snap = Snapshot::parse(&devtools::heap_snapshot_json());
    assert_eq!(snap.node_count(), 2);
    assert_eq!(snap.name(1), "report_devtools::Iq");
    assert_eq!(kept.id, 1);
}

#[test]
fn an_empty_heap_is_just_the_root() {
    collect();
    let text = devtools::heap_snapshot_json();
    let snap = Snapshot::parse(&text);
    assert_eq!(snap.nodes, [9, 0, 1, 0, 0, 0, 0]);
    assert!(snap.edges.is_empty());
    assert_eq!(snap.strings, ["(held outside)"]);
    assert_eq!(snap.json["snapshot"]["edge_count"], 0);
}
