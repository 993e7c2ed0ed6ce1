//! `#[derive(Trace)]`: the derived impls report exactly the right edges.
//!
//! Each test builds cycles through one kind of type and checks the exact
//! number of objects `collect()` frees. Every test thread has its own heap,
//! and each test starts with a `collect()` so that it counts only its own
//! objects.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use rcycle::{collect, Finalize, Gc, Trace, WeakGc};

/// A mutable, optional strong edge: what most cycles below go through.
type Slot<T> = RefCell<Option<Gc<T>>>;

/// Links `a -> b -> a` through `slot`; both handles are dropped on return.
fn close_two_cycle<T>(a: Gc<T>, b: Gc<T>, slot: impl Fn(&T) -> &Slot<T>) {
    *slot(&a).borrow_mut() = Some(b.clone());
    *slot(&b).borrow_mut() = Some(a.clone());
}

// ---------------------------------------------------------------- structs

#[derive(Trace)]
struct Named {
    id: u32,
    next: RefCell<Option<Gc<Named>>>,
}

impl Named {
    fn new(id: u32) -> Gc<Named> {
        Gc::new(Named {
            id,
            next: RefCell::new(None),
        })
    }
}

#[test]
fn named_struct_two_cycle() {
    collect();
    let a = Named::new(1);
    let b = Named::new(2);
    close_two_cycle(a.clone(), b.clone(), |n| &n.next);
    assert_eq!(collect(), 0, "both still held from the stack");
    assert_eq!(a.id + b.id, 3);
    drop(a);
    assert_eq!(collect(), 0, "`b` still holds the cycle");
    drop(b);
    assert_eq!(collect(), 2);
    assert_eq!(collect(), 0);
}

#[test]
fn named_struct_self_cycle_and_ring() {
    collect();
    let a = Named::new(0);
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(collect(), 1);

    let first = Named::new(0);
    let mut last = first.clone();
    for id in 1..10 {
        let n = Named::new(id);
        *last.next.borrow_mut() = Some(n.clone());
        last = n;
    }
    *last.next.borrow_mut() = Some(first.clone());
    drop((first, last));
    assert_eq!(collect(), 10);
}

#[derive(Trace)]
struct Tuple(u64, RefCell<Option<Gc<Tuple>>>, String);

#[test]
fn tuple_struct_cycle() {
    collect();
    let a = Gc::new(Tuple(1, RefCell::new(None), "a".into()));
    let b = Gc::new(Tuple(2, RefCell::new(None), "b".into()));
    let c = Gc::new(Tuple(3, RefCell::new(None), "c".into()));
    *a.1.borrow_mut() = Some(b.clone());
    *b.1.borrow_mut() = Some(c.clone());
    *c.1.borrow_mut() = Some(a.clone());
    assert_eq!(a.0 + b.0 + c.0, 6);
    assert_eq!(a.2, "a");
    drop((a, b, c));
    assert_eq!(collect(), 3);
}

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
struct EmptyBraces {}

#[derive(Trace)]
struct EmptyParens();

#[test]
fn unit_structs_can_be_stored() {
    collect();
    let a = Gc::new(Unit);
    let b = Gc::new(EmptyBraces {});
    let c = Gc::new(EmptyParens());
    drop((a, b, c));
    assert_eq!(collect(), 0);
}

// ---------------------------------------------------------------- enums

#[derive(Trace)]
enum Shape {
    Leaf,
    Branch {
        id: u32,
        next: RefCell<Option<Gc<Shape>>>,
    },
    Pair(u32, RefCell<Option<Gc<Shape>>>),
}

impl Shape {
    fn slot(&self) -> &RefCell<Option<Gc<Shape>>> {
        match self {
            Shape::Branch { next, .. } => next,
            Shape::Pair(_, next) => next,
            Shape::Leaf => panic!("a leaf has no slot"),
        }
    }
}

#[test]
fn enum_struct_variant_cycle() {
    collect();
    let a = Gc::new(Shape::Branch {
        id: 1,
        next: RefCell::new(None),
    });
    let b = Gc::new(Shape::Branch {
        id: 2,
        next: RefCell::new(None),
    });
    close_two_cycle(a, b, Shape::slot);
    assert_eq!(collect(), 2);
}

#[test]
fn enum_tuple_variant_cycle() {
    collect();
    let a = Gc::new(Shape::Pair(1, RefCell::new(None)));
    let b = Gc::new(Shape::Pair(2, RefCell::new(None)));
    close_two_cycle(a, b, Shape::slot);
    assert_eq!(collect(), 2);
}

#[test]
fn enum_mixed_variant_cycle_with_leaf() {
    collect();
    let a = Gc::new(Shape::Branch {
        id: 1,
        next: RefCell::new(None),
    });
    let b = Gc::new(Shape::Pair(2, RefCell::new(None)));
    let leaf = Gc::new(Shape::Leaf);
    assert!(matches!(*a, Shape::Branch { id: 1, .. }));
    assert!(matches!(*b, Shape::Pair(2, _)));
    assert!(matches!(*leaf, Shape::Leaf));
    close_two_cycle(a, b, Shape::slot);
    drop(leaf);
    assert_eq!(collect(), 2);
}

#[derive(Trace)]
enum Never {}

#[derive(Trace)]
enum Fieldless {
    A,
    B,
}

#[test]
fn fieldless_enums() {
    collect();
    assert!(!<Never as Trace>::may_contain_gc());
    assert!(!<Fieldless as Trace>::may_contain_gc());
    let a = Gc::new(Fieldless::A);
    let b = Gc::new(Fieldless::B);
    assert!(matches!(*a, Fieldless::A) && matches!(*b, Fieldless::B));
    drop((a, b));
    assert_eq!(collect(), 0);
}

// ---------------------------------------------------------------- generics

#[derive(Trace)]
struct Wrapper<T: Trace> {
    label: &'static str,
    inner: T,
}

/// Closes the recursion `Gc<Wrapper<RefCell<Option<Gc<...>>>>>`.
#[derive(Trace)]
struct Link(RefCell<Option<Gc<Wrapper<Link>>>>);

#[test]
fn generic_struct_cycle_through_type_parameter() {
    collect();
    let a = Gc::new(Wrapper {
        label: "a",
        inner: Link(RefCell::new(None)),
    });
    let b = Gc::new(Wrapper {
        label: "b",
        inner: Link(RefCell::new(None)),
    });
    assert_eq!(a.label, "a");
    close_two_cycle(a, b, |w| &w.inner.0);
    assert_eq!(collect(), 2);
}

/// Points back at a `Wrapper` whose parameter is the cell itself.
#[derive(Trace)]
struct Back {
    to: Slot<Wrapper<Slot<Back>>>,
}

#[test]
fn generic_struct_with_refcell_parameter() {
    collect();
    // `Gc<Wrapper<RefCell<Option<Gc<Back>>>>>` -> `Gc<Back>` -> the wrapper.
    let w = Gc::new(Wrapper {
        label: "w",
        inner: RefCell::new(None),
    });
    let back = Gc::new(Back {
        to: RefCell::new(Some(w.clone())),
    });
    *w.inner.borrow_mut() = Some(back);
    assert_eq!(collect(), 0);
    drop(w);
    assert_eq!(collect(), 2);
}

/// No bound on `T` in the declaration: the derive adds `T: Trace`.
#[derive(Trace)]
struct Unbounded<T> {
    value: T,
}

/// Lifetimes, const generics, `where` clauses and defaults pass through.
#[derive(Trace)]
struct Everything<'a, T, U: ?Sized = str, const N: usize = 2>
where
    T: Clone,
{
    items: [T; N],
    #[trace(skip)]
    borrowed: &'a U,
    marker: PhantomData<fn(&'a ())>,
}

/// A generic enum, recursive through its own type parameter.
#[derive(Trace)]
enum Either<L, R> {
    Left(L),
    Right { value: R },
}

type EitherNode = Either<RefCell<Option<Gc<EitherLink>>>, u8>;

#[derive(Trace)]
struct EitherLink {
    node: EitherNode,
}

fn assert_trace<T: Trace + ?Sized>() {}

#[test]
fn generics_get_trace_bounds() {
    collect();
    assert_trace::<Unbounded<u8>>();
    assert_trace::<Unbounded<Gc<Unbounded<u8>>>>();
    assert_trace::<Everything<'static, u8>>();
    assert_trace::<Everything<'static, String, [u8], 4>>();
    assert_trace::<Either<u8, String>>();

    let e = Everything::<u8, str, 3> {
        items: [1, 2, 3],
        borrowed: "hi",
        marker: PhantomData,
    };
    assert_eq!(e.items.len() + e.borrowed.len(), 5);
    let u = Unbounded { value: 3u8 };
    assert_eq!(u.value, 3);

    let a = Gc::new(EitherLink {
        node: Either::Left(RefCell::new(None)),
    });
    let b = Gc::new(EitherLink {
        node: Either::Left(RefCell::new(None)),
    });
    let c = Gc::new(EitherLink {
        node: Either::Right { value: 9 },
    });
    if let Either::Right { value } = &c.node {
        assert_eq!(*value, 9);
    }
    close_two_cycle(a, b, |l| match &l.node {
        Either::Left(slot) => slot,
        Either::Right { .. } => unreachable!(),
    });
    drop(c);
    assert_eq!(collect(), 2);
}

// ---------------------------------------------------------------- skip

/// A type with no `Trace` impl: only usable in skipped fields.
struct NotTrace(#[allow(dead_code)] u8);

#[derive(Trace)]
struct Half {
    seen: RefCell<Option<Gc<Half>>>,
    #[trace(skip)]
    hidden: RefCell<Option<Gc<Half>>>,
    #[trace(skip)]
    _foreign: NotTrace,
}

impl Half {
    fn new() -> Gc<Half> {
        Gc::new(Half {
            seen: RefCell::new(None),
            hidden: RefCell::new(None),
            _foreign: NotTrace(0),
        })
    }
}

#[test]
fn skipped_field_closing_a_cycle_is_not_collected() {
    collect();
    let a = Half::new();
    let b = Half::new();
    *a.seen.borrow_mut() = Some(b.clone());
    *b.hidden.borrow_mut() = Some(a.clone()); // this edge is not reported
    let weak: WeakGc<Half> = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(collect(), 0, "under-reporting leaks the cycle");
    assert_eq!(collect(), 0);

    // Break the cycle by hand so the test does not leak.
    let a = weak.upgrade().expect("still alive");
    let b = a.seen.borrow_mut().take().expect("a.seen");
    b.hidden.borrow_mut().take().expect("b.hidden");
    drop((a, b));
    assert_eq!(collect(), 0, "freed by counting, not by the collector");
    assert!(weak.upgrade().is_none());
}

#[test]
fn traced_field_of_the_same_type_is_collected() {
    collect();
    let a = Half::new();
    let b = Half::new();
    close_two_cycle(a, b, |h| &h.seen);
    assert_eq!(collect(), 2);
}

#[derive(Trace)]
enum HalfEnum {
    Named {
        #[trace(skip)]
        hidden: RefCell<Option<Gc<HalfEnum>>>,
        seen: RefCell<Option<Gc<HalfEnum>>>,
    },
    Tuple(
        #[trace(skip)] RefCell<Option<Gc<HalfEnum>>>,
        RefCell<Option<Gc<HalfEnum>>>,
    ),
}

impl HalfEnum {
    fn slots(&self) -> (&Slot<HalfEnum>, &Slot<HalfEnum>) {
        match self {
            HalfEnum::Named { hidden, seen } => (hidden, seen),
            HalfEnum::Tuple(hidden, seen) => (hidden, seen),
        }
    }
}

#[test]
fn skipped_enum_fields() {
    collect();
    let named = || {
        Gc::new(HalfEnum::Named {
            hidden: RefCell::new(None),
            seen: RefCell::new(None),
        })
    };
    let tuple = || Gc::new(HalfEnum::Tuple(RefCell::new(None), RefCell::new(None)));

    // Through the traced fields: collected.
    close_two_cycle(named(), tuple(), |e| e.slots().1);
    assert_eq!(collect(), 2);

    // Closed through a skipped field (of each variant): leaked.
    for (a, b) in [(named(), tuple()), (tuple(), named())] {
        *a.slots().1.borrow_mut() = Some(b.clone());
        *b.slots().0.borrow_mut() = Some(a.clone());
        let weak = Gc::downgrade(&a);
        drop((a, b));
        assert_eq!(collect(), 0);
        let a = weak.upgrade().expect("leaked on purpose");
        let b = a.slots().1.borrow_mut().take().expect("a -> b");
        b.slots().0.borrow_mut().take().expect("b -> a");
        drop((a, b));
        assert!(weak.upgrade().is_none());
    }
    assert_eq!(collect(), 0);
}

// ---------------------------------------------------------------- may_contain_gc

#[derive(Trace)]
struct AllSkipped {
    #[trace(skip)]
    _a: NotTrace,
    #[trace(skip)]
    _b: RefCell<Option<Gc<u8>>>,
}

#[derive(Trace)]
#[allow(dead_code)] // skipped fields are never read
struct TupleAllSkipped(#[trace(skip)] NotTrace);

#[derive(Trace)]
#[allow(dead_code)]
enum EnumAllSkipped {
    A(#[trace(skip)] NotTrace),
    B {
        #[trace(skip)]
        _x: NotTrace,
    },
    C,
}

#[derive(Trace)]
struct OnlyPlainData {
    a: u32,
    b: String,
}

#[test]
fn may_contain_gc() {
    collect();
    assert!(!<Unit as Trace>::may_contain_gc());
    assert!(!<EmptyBraces as Trace>::may_contain_gc());
    assert!(!<EmptyParens as Trace>::may_contain_gc());
    assert!(!<AllSkipped as Trace>::may_contain_gc());
    assert!(!<TupleAllSkipped as Trace>::may_contain_gc());
    assert!(!<EnumAllSkipped as Trace>::may_contain_gc());
    assert!(!<Never as Trace>::may_contain_gc());
    assert!(!<Fieldless as Trace>::may_contain_gc());

    // Any traced field keeps the default `true`, even a plain-data one (the
    // derive does not look at field types).
    assert!(<OnlyPlainData as Trace>::may_contain_gc());
    assert!(<Named as Trace>::may_contain_gc());
    assert!(<Tuple as Trace>::may_contain_gc());
    assert!(<Shape as Trace>::may_contain_gc());
    assert!(<Half as Trace>::may_contain_gc());
    assert!(<Wrapper<u8> as Trace>::may_contain_gc());

    let x = Gc::new(OnlyPlainData {
        a: 1,
        b: "b".into(),
    });
    assert_eq!(x.a as usize + x.b.len(), 2);
    let y = Gc::new(AllSkipped {
        _a: NotTrace(1),
        _b: RefCell::new(None),
    });
    let z = Gc::new(EnumAllSkipped::C);
    let v = [
        Gc::new(EnumAllSkipped::A(NotTrace(0))),
        Gc::new(EnumAllSkipped::B { _x: NotTrace(0) }),
    ];
    drop((x, y, z, v));
    assert_eq!(collect(), 0);
}

#[test]
fn no_finalizer_by_default() {
    assert!(!<Named as Trace>::has_finalizer());
    assert!(!<Shape as Trace>::has_finalizer());
    assert!(!<Unit as Trace>::has_finalizer());
    assert!(!<Wrapper<u8> as Trace>::has_finalizer());
}

// ---------------------------------------------------------------- finalize

thread_local! {
    static FINALIZED: Cell<usize> = const { Cell::new(0) };
}

fn finalized() -> usize {
    FINALIZED.with(Cell::get)
}

#[derive(Trace)]
#[trace(finalize)]
struct Fin {
    next: RefCell<Option<Gc<Fin>>>,
}

impl Finalize for Fin {
    fn finalize(&self) {
        FINALIZED.with(|c| c.set(c.get() + 1));
    }
}

impl Fin {
    fn new() -> Gc<Fin> {
        Gc::new(Fin {
            next: RefCell::new(None),
        })
    }
}

#[derive(Trace)]
#[trace(finalize)]
enum FinEnum<T> {
    Node(RefCell<Option<Gc<FinEnum<T>>>>, T),
    #[allow(dead_code)]
    Empty,
}

impl<T> Finalize for FinEnum<T> {
    fn finalize(&self) {
        FINALIZED.with(|c| c.set(c.get() + 10));
    }
}

#[test]
fn finalize_runs_once_per_object_in_a_collected_cycle() {
    collect();
    FINALIZED.with(|c| c.set(0));
    assert!(<Fin as Trace>::has_finalizer());
    assert!(<Fin as Trace>::may_contain_gc());

    // Freed by counting: no finalizer (that is what `Drop` is for).
    drop(Fin::new());
    assert_eq!(finalized(), 0);

    let first = Fin::new();
    let mut last = first.clone();
    for _ in 1..3 {
        let n = Fin::new();
        *last.next.borrow_mut() = Some(n.clone());
        last = n;
    }
    *last.next.borrow_mut() = Some(first.clone());
    assert_eq!(collect(), 0);
    assert_eq!(finalized(), 0, "a live cycle is not finalized");
    drop((first, last));
    assert_eq!(collect(), 3);
    assert_eq!(finalized(), 3);
    assert_eq!(collect(), 0);
    assert_eq!(finalized(), 3, "never twice");

    // The derived `Trace::finalize` forwards to `Finalize::finalize`.
    Trace::finalize(&Fin {
        next: RefCell::new(None),
    });
    assert_eq!(finalized(), 4);
}

#[test]
fn finalize_on_a_generic_enum() {
    collect();
    FINALIZED.with(|c| c.set(0));
    assert!(<FinEnum<u8> as Trace>::has_finalizer());
    let a = Gc::new(FinEnum::Node(RefCell::new(None), 1u8));
    let b = Gc::new(FinEnum::Node(RefCell::new(None), 2u8));
    close_two_cycle(a, b, |e| match e {
        FinEnum::Node(slot, _) => slot,
        FinEnum::Empty => unreachable!(),
    });
    assert_eq!(collect(), 2);
    assert_eq!(finalized(), 20);
}

// ---------------------------------------------------------------- naming

/// Field names that could clash with the generated code.
#[derive(Trace)]
#[allow(non_snake_case)]
struct Clashes {
    tracer: RefCell<Option<Gc<Clashes>>>,
    r#type: u8,
    __field_0: u8,
    Self_: u8,
}

#[derive(Trace)]
enum ClashEnum {
    V {
        tracer: RefCell<Option<Gc<ClashEnum>>>,
        __field_0: u8,
    },
    W(u8, RefCell<Option<Gc<ClashEnum>>>),
}

#[test]
fn field_names_do_not_clash_with_generated_names() {
    collect();
    let new = || {
        Gc::new(Clashes {
            tracer: RefCell::new(None),
            r#type: 1,
            __field_0: 2,
            Self_: 3,
        })
    };
    let a = new();
    assert_eq!(a.r#type + a.__field_0 + a.Self_, 6);
    close_two_cycle(a, new(), |c| &c.tracer);
    assert_eq!(collect(), 2);

    let a = Gc::new(ClashEnum::V {
        tracer: RefCell::new(None),
        __field_0: 0,
    });
    let b = Gc::new(ClashEnum::W(0, RefCell::new(None)));
    close_two_cycle(a, b, |e| match e {
        ClashEnum::V { tracer, __field_0 } => {
            assert_eq!(*__field_0, 0);
            tracer
        }
        ClashEnum::W(_, slot) => slot,
    });
    assert_eq!(collect(), 2);
}

/// Types defined by a `macro_rules!` macro (hygiene of the generated code):
/// some names and types come from the invocation, some from the macro.
macro_rules! define_nodes {
    ($name:ident, $field:ident, $slot:ty, $enum_name:ident) => {
        #[derive(Trace)]
        struct $name {
            $field: $slot,
            own: RefCell<Option<Gc<$name>>>,
        }

        #[derive(Trace)]
        #[allow(dead_code)]
        enum $enum_name {
            A {
                own: RefCell<Option<Gc<$enum_name>>>,
                $field: u8,
            },
            B(RefCell<Option<Gc<$enum_name>>>, $slot),
        }

        #[derive(Trace)]
        struct MacroTuple($slot, RefCell<Option<Gc<MacroTuple>>>);
    };
}

define_nodes!(MacroNode, next, Slot<MacroNode>, MacroEnum);

#[test]
fn types_from_macro_rules() {
    collect();
    let new = || {
        Gc::new(MacroNode {
            next: RefCell::new(None),
            own: RefCell::new(None),
        })
    };
    close_two_cycle(new(), new(), |n| &n.next);
    close_two_cycle(new(), new(), |n| &n.own);
    assert_eq!(collect(), 4);

    let a = Gc::new(MacroEnum::B(RefCell::new(None), RefCell::new(None)));
    if let MacroEnum::B(slot, _) = &*a {
        *slot.borrow_mut() = Some(a.clone());
    }
    drop(a);
    assert_eq!(collect(), 1);

    let node = new();
    let t = Gc::new(MacroTuple(
        RefCell::new(Some(node.clone())),
        RefCell::new(None),
    ));
    *t.1.borrow_mut() = Some(t.clone());
    drop((node, t));
    assert_eq!(
        collect(),
        2,
        "the tuple's self-cycle and the node only it holds"
    );
}
