//! The node types for crates without a derive we can use: the struct
//! definitions are the same for everybody (`crate::nodes!`), and the module
//! writes its `Trace` impls with `trace_fields!`.

/// Defines the node types over the module's `P`, `Cell` (and `W`, with
/// `weak`), each with the attributes in brackets (the crate's derive).
#[macro_export]
macro_rules! nodes {
    ([$($attr:tt)*] weak) => {
        $crate::nodes!([$($attr)*]);
        $crate::nodes!(@weak [$($attr)*]);
    };
    (@weak [$($attr:tt)*]) => {
        $($attr)*
        pub struct WTree {
            _c: $crate::common::Counted,
            parent: Cell<Option<W<WTree>>>,
            left: Option<P<WTree>>,
            right: Option<P<WTree>>,
        }
    };
    ([$($attr:tt)*]) => {
        $($attr)*
        pub struct Tree {
            _c: $crate::common::Counted,
            left: Option<P<Tree>>,
            right: Option<P<Tree>>,
        }

        $($attr)*
        pub struct PTree {
            _c: $crate::common::Counted,
            parent: Cell<Option<P<PTree>>>,
            left: Option<P<PTree>>,
            right: Option<P<PTree>>,
        }

        $($attr)*
        pub struct LNode {
            _c: $crate::common::Counted,
            next: Option<P<LNode>>,
            prev: Cell<Option<P<LNode>>>,
        }

        $($attr)*
        pub struct GNode {
            _c: $crate::common::Counted,
            label: String,
            edges: Vec<P<Cell<GNode>>>,
        }

        $($attr)*
        pub struct MNode {
            _c: $crate::common::Counted,
            refs: Cell<Vec<P<MNode>>>,
        }

        $($attr)*
        pub struct Val {
            _c: $crate::common::Counted,
            v: u64,
        }

        $($attr)*
        pub struct Pair {
            _c: $crate::common::Counted,
            other: Cell<Option<P<Pair>>>,
        }

        $($attr)*
        pub struct RNode {
            _c: $crate::common::Counted,
            next: Cell<Option<P<RNode>>>,
            prev: Cell<Option<P<RNode>>>,
        }
    };
}
