//! DOT export (objgraph's `show_backrefs` / `show_refs`): exact nodes and
//! edges for known graphs. Every test runs on its own thread, with its own
//! heap, so the pictures hold only what the test built.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::ErrorKind;

use rcycle::report::dot::{self, DotOptions, Summary};
use rcycle::report::{HeapGraph, ObjectId, ObjectInfo};
use rcycle::{collect, Gc, Trace};

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
            } else if !matches!(head, "graph" | "node" | "edge") {
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
            "  n1 [label=\"Node\\n{root_id} {} B\\nstrong 4\", fillcolor=\"#9ec9ff\"];",
            r.size
        )
    );
    let k = info(ids[0]);
    assert_eq!(
        pic.nodes["n0"],
        format!(
            "  n0 [label=\"Node\\n{} {} B\\nstrong 2\", penwidth=2];",
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
    assert!(pic.nodes["n1"].contains("[label=\"Iq\\n"));

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
    // Each holder is held by the Vec on this stack; `iq` by `iq`. (More
    // than 8 objects held: a `<held outside>` node for each.)
    let outside: Vec<_> = pic
        .edges
        .iter()
        .filter(|e| e.0.starts_with("outside"))
        .collect();
    assert_eq!(outside.len(), 11);
    assert!(outside
        .iter()
        .enumerate()
        .all(|(i, e)| e.0 == format!("outside{i}") && e.1 == format!("n{i}")));
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
        "digraph rcycle {\n  graph [size=\"300,300\"];\n  node [shape=box, style=filled, fillcolor=white, fontsize=10];\n  edge [fontsize=9];\n}\n"
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

#[derive(Trace, Debug)]
struct Req {
    id: u64,
    body: String,
}

#[derive(Trace)]
struct Table {
    pending: RefCell<HashMap<u64, Gc<Req>>>,
}

#[test]
fn exact_text_with_short_names_and_a_summary_cut_at_40() {
    collect();
    let req = Gc::new(Req {
        id: 1,
        body: "<iq type='get' id='1'><ping/></iq>".into(),
    });
    let table = Gc::new(Table {
        pending: RefCell::new(HashMap::from([(1, req.clone())])),
    });
    let options = DotOptions {
        summaries: vec![Summary::debug::<Req>()],
        ..DotOptions::default()
    };
    let (r, t) = (info(ObjectId::of(&req)), info(ObjectId::of(&table)));
    let source = dot::backrefs(&[r.id], &options);
    let expected = format!(
        r#"digraph rcycle {{
  graph [size="300,300"];
  node [shape=box, style=filled, fillcolor=white, fontsize=10];
  edge [fontsize=9];
  n0 [label="Req\nReq {{ id: 1, body: \"<iq type='get' id='…\n{} {} B\nstrong 2", penwidth=2];
  n1 [label="Table\n{} {} B\nstrong 1"];
  outside [label="<held outside>", shape=ellipse, style=dashed];
  outside -> n0 [label="1 handle", style=dashed];
  outside -> n1 [label="1 handle", style=dashed];
  n1 -> n0 [label=".pending[1]"];
}}
"#,
        r.id, r.size, t.id, t.size
    );
    assert_eq!(source, expected);
    // A graph kept from earlier holds no values: no summary.
    let kept = HeapGraph::capture().backrefs_dot(&[r.id], &options);
    assert_eq!(
        kept,
        expected.replace("\\nReq { id: 1, body: \\\"<iq type='get' id='…", "")
    );
    drop((req, table));
}

#[test]
fn full_type_names_on_request_and_the_cut_is_configurable() {
    collect();
    let list = Gc::new(vec![Gc::new(Iq { id: 7 })]);
    let full = std::any::type_name::<Vec<Gc<Iq>>>();
    assert!(full.starts_with("alloc::vec::Vec<rcycle::"), "{full}");
    assert!(full.chars().count() > 40);
    let id = ObjectId::of(&list);
    let label = |options: &DotOptions| {
        label_of(Picture::parse(&dot::refs(&[id], options)).nodes["n0"].as_str())
    };
    let short = label(&DotOptions::default());
    assert!(short.starts_with("Vec<Gc<Iq>>\\n0x"), "{short}");
    let cut = label(&DotOptions {
        full_type_names: true,
        ..DotOptions::default()
    });
    let first: String = full.chars().take(39).collect();
    assert!(cut.starts_with(&format!("{first}…\\n0x")), "{cut}");
    let whole = label(&DotOptions {
        full_type_names: true,
        label_width: 0,
        ..DotOptions::default()
    });
    assert!(whole.starts_with(&format!("{full}\\n0x")), "{whole}");
    let narrow = label(&DotOptions {
        label_width: 5,
        ..DotOptions::default()
    });
    assert!(narrow.starts_with("Vec<…\\n0x"), "{narrow}");
}

#[derive(Trace, Debug)]
struct Keys {
    entries: RefCell<HashMap<String, Gc<u8>>>,
}

fn keyed(keys: &[String]) -> Gc<Keys> {
    Gc::new(Keys {
        entries: RefCell::new(keys.iter().map(|k| (k.clone(), Gc::new(0u8))).collect()),
    })
}

#[test]
fn long_keys_are_cut_and_controls_and_bidi_characters_escaped() {
    collect();
    let long = keyed(&["k".repeat(5000)]);
    let source = dot::refs(&[ObjectId::of(&long)], &DotOptions::default());
    assert!(
        source.contains(&format!(
            "  n0 -> n1 [label=\".entries[\\\"{}…\"];\n",
            "k".repeat(29)
        )),
        "{source}"
    );
    let nasty = keyed(&["a\rb\tc\u{202e}d\u{2066}e\u{200e}f\u{61c}g\nh\0i\u{1b}j".to_string()]);
    let wide = DotOptions {
        label_width: 0,
        ..DotOptions::default()
    };
    let source = dot::refs(&[ObjectId::of(&nasty)], &wide);
    // The key's `Debug` text (`"a\rb\tc\u{202e}d..."`: Rust escapes all
    // but U+202E, U+2066 and U+200E there), then the label escaping.
    let expected = r#"  n0 -> n1 [label=".entries[\"a\\rb\\tc\\u{202e}d\\u{2066}e\\u{200e}f\\u{61c}g\\nh\\0i\\u{1b}j\"]"];"#;
    assert!(source.contains(expected), "{source}");
    assert!(!source.contains(['\r', '\t', '\u{202e}', '\u{2066}', '\u{200e}', '\u{61c}']));
    drop((long, nasty));
}

#[test]
fn summaries_escape_their_text_and_a_debug_is_formatted_only_to_the_cut() {
    collect();
    #[derive(Trace)]
    struct Endless;
    thread_local! {
        static WRITES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    impl std::fmt::Debug for Endless {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            for i in 0..1_000_000 {
                WRITES.with(|w| w.set(w.get() + 1));
                write!(f, "{i},")?;
            }
            Ok(())
        }
    }
    let e = Gc::new(Endless);
    let s = Gc::new(String::from("x\u{202e}y\n"));
    let options = DotOptions {
        summaries: vec![
            Summary::debug::<Endless>(),
            Summary::of(|v: &String| v.clone()),
        ],
        ..DotOptions::default()
    };
    let source = dot::refs(&[ObjectId::of(&e), ObjectId::of(&s)], &options);
    let pic = Picture::parse(&source);
    assert!(
        label_of(&pic.nodes["n0"])
            .starts_with("Endless\\n0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,1…\\n0x"),
        "{source}"
    );
    assert!(WRITES.with(|w| w.get()) < 30, "stopped at the cut");
    assert!(
        label_of(&pic.nodes["n1"]).starts_with("String\\nx\\\\u{202e}y\\\\n\\n0x"),
        "{source}"
    );
}

#[derive(Trace)]
struct Slot {
    held: RefCell<Option<Gc<u16>>>,
}

#[test]
fn a_summary_that_frees_an_object_ends_the_summaries() {
    collect();
    // n0: a slot holding the only handle to a u16; the summary of a slot
    // empties it, which frees the u16. Boxes drawn after it get no summary.
    let slot = Gc::new(Slot {
        held: RefCell::new(Some(Gc::new(5u16))),
    });
    let other = Gc::new(Slot {
        held: RefCell::new(None),
    });
    let options = DotOptions {
        summaries: vec![Summary::of(|s: &Slot| {
            let freed = s.held.borrow_mut().take().is_some();
            format!("freed: {freed}")
        })],
        ..DotOptions::default()
    };
    let source = dot::refs(&[ObjectId::of(&slot), ObjectId::of(&other)], &options);
    let pic = Picture::parse(&source);
    assert!(
        label_of(&pic.nodes["n0"]).starts_with("Slot\\nfreed: true\\n0x"),
        "{source}"
    );
    // n1 is `other` or the freed u16 (order of targets first): no summary.
    assert!(
        label_of(&pic.nodes["n1"]).starts_with("Slot\\n0x"),
        "{source}"
    );
    assert!(slot.held.borrow().is_none());
}

thread_local! {
    static STASH: RefCell<Vec<Gc<Stasher>>> = const { RefCell::new(Vec::new()) };
}

#[derive(Trace)]
struct Stasher {
    other: RefCell<Option<Gc<Stasher>>>,
}

impl Drop for Stasher {
    fn drop(&mut self) {
        if let Some(o) = self.other.borrow_mut().take() {
            STASH.with(|s| s.borrow_mut().push(o));
        }
    }
}

/// Every kind of DOT file rcycle writes, through Graphviz's `dot` to SVG and
/// PNG: none may make it warn (the PNG renderer warns about a picture over
/// 32,767 pixels). Skipped, with a note, where Graphviz is not installed.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start processes")]
fn every_kind_of_picture_renders_without_a_warning() {
    if std::process::Command::new("dot")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("note: Graphviz `dot` is not installed; the rendering check was skipped");
        return;
    }
    collect();
    let mut pictures: Vec<(&str, String)> = Vec::new();
    let ids = |gcs: &[ObjectId]| gcs.to_vec();

    // Long keys, 1,000 and 5,000 characters (5,000 made `dot -Tpng` warn).
    let long = keyed(&["k".repeat(5000), "m".repeat(1000)]);
    pictures.push((
        "long keys",
        dot::refs(&ids(&[ObjectId::of(&long)]), &DotOptions::default()),
    ));
    // Control, bidirectional and invisible characters, in keys and summaries.
    let nasty = keyed(&[
        "a\rb\tc\u{202e}d\u{2066}e\u{2069}f\u{200f}g\u{61c}h\nk\0l\u{1b}m\u{feff}".to_string(),
    ]);
    let all = DotOptions {
        summaries: vec![Summary::debug::<Keys>()],
        ..DotOptions::default()
    };
    pictures.push((
        "control characters",
        dot::refs(&[ObjectId::of(&nasty)], &all),
    ));
    // Summaries, full names, no cut.
    let req = Gc::new(Req {
        id: 1,
        body: "<iq\r\n\u{202e}>".repeat(50),
    });
    let table = Gc::new(Table {
        pending: RefCell::new(HashMap::from([(1, req.clone())])),
    });
    let options = DotOptions {
        summaries: vec![Summary::debug::<Req>()],
        ..DotOptions::default()
    };
    pictures.push(("summary", dot::backrefs(&[ObjectId::of(&req)], &options)));
    let whole = DotOptions {
        full_type_names: true,
        label_width: 0,
        summaries: vec![Summary::debug::<Req>()],
        ..DotOptions::default()
    };
    pictures.push((
        "full names, no cut",
        dot::backrefs(&[ObjectId::of(&req)], &whole),
    ));
    // `N more`, back and forward, and depth 3 of a fan-out-10 tree.
    let fan = Gc::new(Dispatcher {
        expected: RefCell::new((0..25).map(|id| (id, Gc::new(Iq { id }))).collect()),
    });
    pictures.push((
        "more",
        dot::refs(&[ObjectId::of(&fan)], &DotOptions::default()),
    ));
    let tree = Gc::new(
        (0..12)
            .map(|_| {
                Gc::new(
                    (0..12)
                        .map(|_| Gc::new((0..12).map(|_| Gc::new(1u8)).collect::<Vec<_>>()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    );
    pictures.push((
        "tree",
        dot::refs(&[ObjectId::of(&tree)], &DotOptions::default()),
    ));
    // 1,500 boxes side by side, and a chain of 400: scaled to fit.
    let wide = Gc::new((0..1500).map(|i| Gc::new(i as u64)).collect::<Vec<_>>());
    let everything = DotOptions {
        too_many: 2000,
        ..DotOptions::default()
    };
    pictures.push(("wide", dot::refs(&[ObjectId::of(&wide)], &everything)));
    let links: Vec<Gc<Link>> = (0..400)
        .map(|_| {
            Gc::new(Link {
                next: RefCell::new(None),
            })
        })
        .collect();
    for w in links.windows(2) {
        *w[0].next.borrow_mut() = Some(w[1].clone());
    }
    let deep = DotOptions {
        max_depth: 1000,
        ..DotOptions::default()
    };
    // Every link held from outside too: one `<held outside>` node with an
    // edge into each of 400 ranks took `dot` minutes to lay out; past 8
    // objects held, each has its own. (The last 100 links are drawn: the
    // layout of 400 such ranks takes `dot` about 25 s.)
    let all_held = dot::refs(&[ObjectId::of(&links[0])], &deep);
    assert_eq!(all_held.matches("[label=\"<held outside>\"").count(), 400);
    let last_hundred = dot::refs(&[ObjectId::of(&links[300])], &deep);
    assert_eq!(
        last_hundred.matches("[label=\"<held outside>\"").count(),
        100
    );
    pictures.push(("deep, every link held", last_hundred));
    let head = links[0].clone();
    drop(links);
    pictures.push(("deep", dot::refs(&[ObjectId::of(&head)], &deep)));
    // Dead boxes (a value dropped with its cycle while a `Drop` kept a
    // handle) and untraceable objects (a mutably borrowed `RefCell`).
    let (a, b) = (
        Gc::new(Stasher {
            other: RefCell::new(None),
        }),
        Gc::new(Stasher {
            other: RefCell::new(None),
        }),
    );
    *a.other.borrow_mut() = Some(b.clone());
    *b.other.borrow_mut() = Some(a.clone());
    drop((a, b));
    collect();
    let stashed: Vec<ObjectId> = STASH.with(|s| s.borrow().iter().map(ObjectId::of).collect());
    assert!(!stashed.is_empty());
    let dead = dot::refs(&stashed, &DotOptions::default());
    assert!(dead.contains("<dead> Stasher"), "{dead}");
    pictures.push(("dead boxes", dead));
    let borrowed = long.entries.borrow_mut();
    pictures.push((
        "untraceable",
        dot::backrefs(&[ObjectId::of(&long)], &DotOptions::default()),
    ));
    drop(borrowed);
    pictures.push(("empty", dot::refs(&[], &DotOptions::default())));

    let dir = std::env::temp_dir();
    for (name, source) in &pictures {
        let path = dir.join(format!("rcycle-render-{}.dot", std::process::id()));
        std::fs::write(&path, source).unwrap();
        for format in ["-Tsvg", "-Tpng"] {
            let out = std::process::Command::new("dot")
                .args([format, "-o", "/dev/null"])
                .arg(&path)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.is_empty(),
                "{name} ({format}): {stderr}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
    STASH.with(|s| s.borrow_mut().clear());
    drop((long, nasty, req, table, fan, tree, wide, head));
}
