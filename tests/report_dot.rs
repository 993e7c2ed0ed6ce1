//! DOT export (objgraph's `show_backrefs` / `show_refs`): exact nodes and
//! edges for known graphs. Every test runs on its own thread, with its own
//! heap, so the pictures hold only what the test built.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::ErrorKind;

use rcycle::dot::{self, DotOptions};
use rcycle::{collect, Gc, HeapGraph, ObjectId, ObjectInfo, Trace};

#[derive(Trace)]
struct Node {
    name: String,
    parent: RefCell<Option<Gc<Node>>>,
    children: RefCell<Vec<Gc<Node>>>,
}

fn node(name: &str, parent: Option<&Gc<Node>>) -> Gc<Node> {
    Gc::new(Node {
        name: name.to_string(),
        parent: RefCell::new(parent.cloned()),
        children: RefCell::new(Vec::new()),
    })
}

#[derive(Trace)]
struct Iq {
    id: u64,
}

#[derive(Trace)]
struct Dispatcher {
    expected: RefCell<HashMap<u64, Gc<Iq>>>,
}

#[derive(Trace)]
struct Link {
    next: RefCell<Option<Gc<Link>>>,
}

/// A parsed DOT picture: node lines by id, and edges `(from, to, label)`.
struct Picture {
    nodes: HashMap<String, String>,
    edges: Vec<(String, String, String)>,
}

impl Picture {
    fn parse(source: &str) -> Picture {
        assert!(source.starts_with("digraph rcycle {\n"), "{source}");
        assert!(source.ends_with("\n}\n"), "{source}");
        let mut nodes = HashMap::new();
        let mut edges = Vec::new();
        for line in source.lines() {
            if line == "digraph rcycle {" || line == "}" {
                continue;
            }
            assert!(line.starts_with("  ") && line.ends_with("];"), "{line}");
            assert_eq!(unescaped_quotes(line) % 2, 0, "unbalanced quotes: {line}");
            let (head, _) = line[2..].split_once(" [").unwrap();
            if let Some((from, to)) = head.split_once(" -> ") {
                edges.push((from.to_string(), to.to_string(), label_of(line)));
            } else if head != "node" && head != "edge" {
                assert!(nodes.insert(head.to_string(), line.to_string()).is_none());
            }
        }
        Picture { nodes, edges }
    }

    /// The drawing id of the object `id` (its address is on its label).
    fn id_of(&self, id: ObjectId) -> &str {
        let needle = format!("\\n{id} ");
        let found: Vec<_> = self
            .nodes
            .iter()
            .filter(|(_, line)| line.contains(&needle))
            .collect();
        assert_eq!(found.len(), 1, "{id} drawn once");
        found[0].0
    }

    fn object_nodes(&self) -> usize {
        self.nodes.keys().filter(|k| k.starts_with('n')).count()
    }

    fn edge_set(&self) -> BTreeSet<(String, String, String)> {
        self.edges.iter().cloned().collect()
    }
}

fn unescaped_quotes(line: &str) -> usize {
    let (mut count, mut escaped) = (0, false);
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => count += 1,
            _ => escaped = false,
        }
    }
    count
}

/// The raw (still escaped) text of `label="..."` (empty when there is none).
fn label_of(line: &str) -> String {
    let Some(start) = line.find("label=\"") else {
        return String::new();
    };
    let rest = &line[start + 7..];
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return rest[..i].to_string(),
            _ => escaped = false,
        }
    }
    panic!("unterminated label: {line}")
}

fn info(id: ObjectId) -> ObjectInfo {
    let graph = HeapGraph::capture();
    graph.objects()[graph.find(id).unwrap()].clone()
}

fn edge(from: &str, to: &str, label: &str) -> (String, String, String) {
    (from.to_string(), to.to_string(), label.to_string())
}

#[test]
fn backrefs_draw_the_parent_cycle_with_labels_holders_and_highlight() {
    collect();
    let root = node("root", None);
    let kids: Vec<Gc<Node>> = (0..3)
        .map(|i| {
            let kid = node(&format!("kid{i}"), Some(&root));
            root.children.borrow_mut().push(kid.clone());
            kid
        })
        .collect();
    let ids: Vec<ObjectId> = kids.iter().map(ObjectId::of).collect();
    let kid = kids[0].clone();
    drop(kids);
    let root_id = ObjectId::of(&root);
    let options = DotOptions {
        highlight: vec![root_id],
        ..DotOptions::default()
    };
    let source = dot::backrefs(&[ids[0]], &options);
    let pic = Picture::parse(&source);

    assert_eq!(pic.object_nodes(), 4);
    assert_eq!(pic.nodes.len(), 5, "four objects and <held outside>");
    assert_eq!(pic.id_of(ids[0]), "n0", "the target comes first");
    assert_eq!(pic.id_of(root_id), "n1");
    let (k1, k2) = (pic.id_of(ids[1]), pic.id_of(ids[2]));
    assert_eq!(
        BTreeSet::from([k1, k2]),
        BTreeSet::from(["n2", "n3"]),
        "{source}"
    );

    let expected = BTreeSet::from([
        edge("n1", "n0", ".children[0]"),
        edge("n0", "n1", ".parent"),
        edge(k1, "n1", ".parent"),
        edge(k2, "n1", ".parent"),
        edge("n1", k1, ".children[1]"),
        edge("n1", k2, ".children[2]"),
        edge("outside", "n0", "1 handle"),
        edge("outside", "n1", "1 handle"),
    ]);
    assert_eq!(pic.edge_set(), expected, "{source}");
    assert_eq!(source.matches(" -> ").count(), 8);
    assert_eq!(source.matches("label=\".parent\"").count(), 3);
    assert!(source.contains("  outside [label=\"<held outside>\", shape=ellipse, style=dashed];\n"));

    let r = info(root_id);
    assert_eq!(r.type_name, "report_dot::Node");
    assert_eq!(
        pic.nodes["n1"],
        format!(
            "  n1 [label=\"report_dot::Node\\n{root_id} {} B\\nstrong 4\", fillcolor=\"#9ec9ff\"];",
            r.size
        )
    );
    let k = info(ids[0]);
    assert_eq!(
        pic.nodes["n0"],
        format!(
            "  n0 [label=\"report_dot::Node\\n{} {} B\\nstrong 2\", penwidth=2];",
            ids[0], k.size
        )
    );
    assert!(!pic.nodes[k1].contains("penwidth") && !pic.nodes[k1].contains("fillcolor"));
    assert_eq!(root.name, "root");
    drop((kid, root));
    assert_eq!(collect(), 4);
}

#[test]
fn too_many_referents_become_one_more_node() {
    collect();
    let d = Gc::new(Dispatcher {
        expected: RefCell::new((0..25).map(|id| (id, Gc::new(Iq { id }))).collect()),
    });
    let source = dot::refs(&[ObjectId::of(&d)], &DotOptions::default());
    let pic = Picture::parse(&source);
    assert_eq!(
        pic.object_nodes(),
        11,
        "the dispatcher and 10 of its 25 items"
    );
    assert!(source.contains("  more0 [label=\"15 more\", shape=plaintext, style=\"\"];\n"));
    assert!(source.contains("  n0 -> more0 [style=dotted];\n"));
    let item_edges: Vec<_> = pic
        .edges
        .iter()
        .filter(|e| e.0 == "n0" && e.1.starts_with('n'))
        .collect();
    assert_eq!(item_edges.len(), 10);
    let keys: BTreeSet<u64> = item_edges
        .iter()
        .map(|e| {
            e.2.strip_prefix(".expected[")
                .unwrap()
                .strip_suffix(']')
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(keys.len(), 10);
    assert!(keys.iter().all(|&k| k < 25));
    let targets: BTreeSet<String> = item_edges.iter().map(|e| e.1.clone()).collect();
    assert_eq!(targets, (1..=10).map(|i| format!("n{i}")).collect());
    assert_eq!(
        source.matches(" -> ").count(),
        12,
        "10 items, more, outside"
    );
    assert!(pic.nodes["n1"].contains("report_dot::Iq\\n"));

    let all = DotOptions {
        too_many: 30,
        ..DotOptions::default()
    };
    let source = dot::refs(&[ObjectId::of(&d)], &all);
    assert_eq!(Picture::parse(&source).object_nodes(), 26);
    assert!(!source.contains("more"));

    let none = DotOptions {
        too_many: 0,
        ..DotOptions::default()
    };
    let source = dot::refs(&[ObjectId::of(&d)], &none);
    assert_eq!(Picture::parse(&source).object_nodes(), 1);
    assert!(source.contains("  more0 [label=\"25 more\""));
    assert_eq!(d.expected.borrow()[&3].id, 3);
}

#[test]
fn too_many_referrers_become_one_more_node() {
    collect();
    #[derive(Trace)]
    struct Holder {
        held: Gc<Iq>,
    }
    let iq = Gc::new(Iq { id: 1 });
    let holders: Vec<Gc<Holder>> = (0..25)
        .map(|_| Gc::new(Holder { held: iq.clone() }))
        .collect();
    let source = dot::backrefs(&[ObjectId::of(&iq)], &DotOptions::default());
    let pic = Picture::parse(&source);
    assert_eq!(pic.object_nodes(), 11);
    assert!(source.contains("  more0 [label=\"15 more\", shape=plaintext, style=\"\"];\n"));
    assert!(source.contains("  more0 -> n0 [style=dotted];\n"));
    let held: Vec<_> = pic
        .edges
        .iter()
        .filter(|e| e.1 == "n0" && e.0.starts_with('n'))
        .collect();
    assert_eq!(held.len(), 10);
    assert!(held.iter().all(|e| e.2 == ".held"));
    // Each holder is held by the Vec on this stack; `iq` by `iq`.
    let outside: Vec<_> = pic.edges.iter().filter(|e| e.0 == "outside").collect();
    assert_eq!(outside.len(), 11);
    assert!(outside.iter().all(|e| e.2 == "1 handle"));
    assert_eq!(holders.len(), 25);
}

#[test]
fn max_depth_truncates_a_chain() {
    collect();
    let links: Vec<Gc<Link>> = (0..10)
        .map(|_| {
            Gc::new(Link {
                next: RefCell::new(None),
            })
        })
        .collect();
    for w in links.windows(2) {
        *w[0].next.borrow_mut() = Some(w[1].clone());
    }
    let ids: Vec<ObjectId> = links.iter().map(ObjectId::of).collect();
    let (head, tail) = (links[0].clone(), links[9].clone());
    drop(links);

    let source = dot::refs(&[ids[0]], &DotOptions::default());
    let pic = Picture::parse(&source);
    assert_eq!(pic.object_nodes(), 4, "{source}");
    for (i, &id) in ids.iter().enumerate().take(4) {
        assert_eq!(pic.id_of(id), format!("n{i}"));
    }
    let expected = BTreeSet::from([
        edge("n0", "n1", ".next"),
        edge("n1", "n2", ".next"),
        edge("n2", "n3", ".next"),
        edge("outside", "n0", "1 handle"),
    ]);
    assert_eq!(pic.edge_set(), expected, "{source}");

    let source = dot::backrefs(&[ids[9]], &DotOptions::default());
    let pic = Picture::parse(&source);
    assert_eq!(pic.object_nodes(), 4);
    for (i, &id) in ids.iter().rev().enumerate().take(4) {
        assert_eq!(pic.id_of(id), format!("n{i}"));
    }
    assert_eq!(pic.edges.len(), 4);

    let shallow = DotOptions {
        max_depth: 0,
        ..DotOptions::default()
    };
    let pic = Picture::parse(&dot::refs(&[ids[0]], &shallow));
    assert_eq!(pic.object_nodes(), 1);
    assert_eq!(
        pic.edge_set(),
        BTreeSet::from([edge("outside", "n0", "1 handle")])
    );

    let deep = DotOptions {
        max_depth: 100,
        ..DotOptions::default()
    };
    let pic = Picture::parse(&dot::refs(&[ids[0]], &deep));
    assert_eq!(pic.object_nodes(), 10);
    assert_eq!(
        pic.edges.len(),
        9 + 2,
        "nine links, head and tail held outside"
    );
    drop((head, tail));
}

#[test]
fn filter_hides_neighbours_and_does_not_count_them() {
    collect();
    #[derive(Trace)]
    struct Mixed {
        small: Vec<Gc<u32>>,
        large: Vec<Gc<u64>>,
    }
    let m = Gc::new(Mixed {
        small: (0..3).map(Gc::new).collect(),
        large: (0..3).map(Gc::new).collect(),
    });
    let options = DotOptions {
        too_many: 1,
        filter: Some(|o: &ObjectInfo| o.type_name != "u32"),
        ..DotOptions::default()
    };
    let source = dot::refs(&[ObjectId::of(&m)], &options);
    let pic = Picture::parse(&source);
    assert_eq!(pic.object_nodes(), 2);
    assert!(pic.nodes["n1"].contains("[label=\"u64\\n"));
    assert!(source.contains("  more0 [label=\"2 more\""));
    assert!(source.contains("  n0 -> n1 [label=\".large[0]\"];\n"));
    assert_eq!(m.small.len(), 3);
}

#[test]
fn labels_are_escaped_and_untraceable_objects_marked() {
    collect();
    #[derive(Trace)]
    struct Cache {
        entries: RefCell<HashMap<String, Gc<u8>>>,
    }
    let cache = Gc::new(Cache {
        entries: RefCell::new(HashMap::from([(
            r#"say "hi" \o/"#.to_string(),
            Gc::new(1u8),
        )])),
    });
    let id = ObjectId::of(&cache);
    let source = dot::refs(&[id], &DotOptions::default());
    assert!(
        source.contains(r#"  n0 -> n1 [label=".entries[\"say \\\"hi\\\" \\\\o/\"]"];"#),
        "{source}"
    );
    Picture::parse(&source);

    let borrowed = cache.entries.borrow_mut();
    let source = dot::refs(&[id], &DotOptions::default());
    let pic = Picture::parse(&source);
    assert_eq!(pic.object_nodes(), 1, "its edges are unknown");
    assert!(pic.nodes["n0"].contains("\\nuntraceable\""));
    assert!(pic.nodes["n0"].ends_with(", penwidth=2, style=\"filled,dashed\"];"));
    drop(borrowed);
}

#[test]
fn output_is_deterministic_and_the_same_from_a_snapshot() {
    collect();
    let root = node("root", None);
    for i in 0..5 {
        let kid = node(&format!("kid{i}"), Some(&root));
        root.children.borrow_mut().push(kid);
    }
    let targets = [ObjectId::of(&root), ObjectId::of(&root)];
    let a = dot::refs(&targets, &DotOptions::default());
    let b = dot::refs(&targets, &DotOptions::default());
    assert_eq!(a, b);
    let graph = HeapGraph::capture();
    assert_eq!(graph.refs_dot(&targets, &DotOptions::default()), a);
    assert_eq!(
        graph.backrefs_dot(&targets, &DotOptions::default()),
        dot::backrefs(&targets, &DotOptions::default())
    );
    assert_eq!(
        Picture::parse(&a).object_nodes(),
        6,
        "a target listed twice is drawn once"
    );

    // Unknown ids are ignored: an empty picture.
    let gone = {
        let g = Gc::new(0u8);
        ObjectId::of(&g)
    };
    let empty = dot::refs(&[gone], &DotOptions::default());
    assert_eq!(
        empty,
        "digraph rcycle {\n  node [shape=box, style=filled, fillcolor=white, fontsize=10];\n  edge [fontsize=9];\n}\n"
    );
    drop(root);
    assert_eq!(collect(), 6);
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot start processes")]
fn render_runs_graphviz_or_reports_it_missing() {
    collect();
    let x = Gc::new(1u8);
    let source = dot::refs(&[ObjectId::of(&x)], &DotOptions::default());
    let dir = std::env::temp_dir();
    let path = dir.join(format!("rcycle-report-dot-{}.svg", std::process::id()));
    let graphviz = std::process::Command::new("dot").arg("-V").output().is_ok();
    match dot::render(&source, &path) {
        Ok(()) => {
            assert!(graphviz);
            let svg = std::fs::read_to_string(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert!(svg.contains("<svg"));
        }
        Err(e) => {
            assert!(!graphviz, "dot is installed but failed: {e}");
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
            assert!(!path.exists());
        }
    }
    let err = dot::render(&source, dir.join("no-extension")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let bad = dir.join(format!("rcycle-report-dot-{}.bad", std::process::id()));
    let err = dot::render(&source, &bad).unwrap_err();
    if graphviz {
        assert!(err.to_string().starts_with("dot failed"), "{err}");
    } else {
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
