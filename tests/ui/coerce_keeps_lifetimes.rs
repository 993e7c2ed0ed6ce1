// `coerce_gc!` unsizes without shortening a lifetime on the way.
use rcycle::{coerce_gc, Gc};

fn shorten<'a>(g: Gc<[&'static str; 1]>) -> Gc<[&'a str]> {
    coerce_gc!(g => [&'a str])
}

fn main() {
    let _ = shorten(Gc::new(["x"]));
}
