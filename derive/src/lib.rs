//! `#[derive(Trace)]` for [rcycle](https://docs.rs/rcycle), the `Rc` that
//! collects its own reference cycles.
//!
//! Do not depend on this crate directly: `rcycle` re-exports the derive under
//! the same name as the trait, so `use rcycle::Trace;` brings both into scope.
//!
//! ```ignore
//! use rcycle::{Gc, Trace};
//! use std::cell::RefCell;
//!
//! #[derive(Trace)]
//! struct Node {
//!     name: String,
//!     next: RefCell<Option<Gc<Node>>>,
//!     #[trace(skip)] // holds no `Gc`, and its type has no `Trace` impl
//!     file: std::fs::File,
//! }
//! ```
//!
//! The generated `unsafe impl rcycle::Trace` reports every field that is not
//! marked `#[trace(skip)]`, exactly once, labelled with the field's name (or
//! its position for tuple fields). That is what the trait's safety contract
//! asks for, so deriving is always sound; skipping a field that does hold a
//! `Gc` is safe too, it only means a cycle through that field is never
//! collected (it leaks, as it would with `Rc`).
//!
//! See [`macro@Trace`] for the attributes.

use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, parse_quote, Attribute, Data, DeriveInput, Fields, GenericParam, Index,
    LitStr,
};

/// Derives `rcycle::Trace`.
///
/// The generated impl:
///
/// * for a struct, reports each field with `tracer.field("name", &self.name)`
///   (tuple fields are named by their position: `"0"`, `"1"`, ...);
/// * for an enum, matches on `self` and reports the fields of the variant that
///   is present, in the same way;
/// * adds a `T: rcycle::Trace` bound to every type parameter (existing bounds,
///   `where` clauses, lifetimes and const parameters are kept as they are);
/// * overrides `may_contain_gc()` to return `false` when the type has no
///   traced field at all (a unit struct, a fieldless enum, or every field
///   skipped), so its objects are never considered as cycle candidates.
///
/// Unions are rejected: the active field cannot be known.
///
/// # Attributes
///
/// * `#[trace(skip)]` on a field (of a struct or of an enum variant): the
///   field is not reported, and its type does not need to implement `Trace`.
///   Use it for fields that hold no `Gc` (a file, a foreign type). Skipping a
///   field that *does* hold a `Gc` is safe but cycles through it leak.
/// * `#[trace(finalize)]` on the type: the type has a finalizer. It must
///   implement `rcycle::Finalize`; `Finalize::finalize` is then called once,
///   before the value is dropped, when the object is freed as part of a
///   garbage cycle (see `rcycle::Trace::finalize`).
///
/// Several keys may share one attribute (`#[trace(finalize)]` is the only
/// type-level key today). Any other key, a key in the wrong place, or a
/// repeated key is a compile error pointing at it.
///
/// ```ignore
/// use rcycle::{Finalize, Gc, Trace};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// #[trace(finalize)]
/// enum Shape<T> {
///     Point,
///     Group { members: RefCell<Vec<Gc<Shape<T>>>>, tag: T },
///     Handle(#[trace(skip)] std::fs::File, Gc<T>),
/// }
///
/// impl<T> Finalize for Shape<T> {
///     fn finalize(&self) { /* runs once, while the whole cycle is intact */ }
/// }
/// ```
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Collects several errors so that one expansion reports all of them.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Where a `#[trace(...)]` attribute was found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Container,
    Variant,
    Field,
}

/// The keys found in the `#[trace(...)]` attributes of one item.
#[derive(Default)]
struct Options {
    /// Span of the `skip` key, if present.
    skip: Option<Span>,
    /// Span of the `finalize` key, if present.
    finalize: Option<Span>,
}

fn parse_options(attrs: &[Attribute], place: Place, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        if place == Place::Variant {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[trace(...)]` is not supported on enum variants; \
                 put `#[trace(skip)]` on the variant's fields instead",
            ));
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let (slot, name) = if meta.path.is_ident("skip") {
                if place != Place::Field {
                    return Err(meta.error(
                        "`#[trace(skip)]` goes on a field, not on a type; \
                         to skip every field, mark each of them",
                    ));
                }
                (&mut options.skip, "skip")
            } else if meta.path.is_ident("finalize") {
                if place != Place::Container {
                    return Err(meta.error(
                        "`#[trace(finalize)]` goes on the type (next to \
                         `#[derive(Trace)]`), not on a field",
                    ));
                }
                (&mut options.finalize, "finalize")
            } else {
                return Err(meta.error(format_args!(
                    "unknown trace attribute `{}`; expected `skip` (on a field) \
                     or `finalize` (on the type)",
                    path_to_string(&meta.path),
                )));
            };
            if !(meta.input.is_empty() || meta.input.peek(syn::Token![,])) {
                return Err(meta.error(format_args!("`{name}` takes no arguments")));
            }
            if slot.is_some() {
                return Err(meta.error(format_args!("duplicate trace attribute `{name}`")));
            }
            *slot = Some(meta.path.span());
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    options
}

fn path_to_string(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// Rejects `#[repr(packed)]`: fields of a packed type cannot be borrowed.
fn check_not_packed(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
        if let syn::Meta::List(list) = &attr.meta {
            let packed = list
                .tokens
                .clone()
                .into_iter()
                .any(|t| matches!(&t, TokenTree::Ident(i) if i == "packed"));
            if packed {
                errors.push(syn::Error::new_spanned(
                    attr,
                    "Trace cannot be derived for `#[repr(packed)]` types: \
                     their fields cannot be borrowed to be traced",
                ));
            }
        }
    }
}

/// The label of a field: its name without `r#`, or its position.
fn label(field: &syn::Field, index: usize) -> LitStr {
    match &field.ident {
        Some(ident) => LitStr::new(&ident.unraw().to_string(), ident.span()),
        None => LitStr::new(&index.to_string(), field.span()),
    }
}

/// Builds the bodies of `trace`, `heap_size` and `__inert_heap_size`;
/// also says how many fields they report.
fn trace_body(input: &DeriveInput, errors: &mut Errors) -> Bodies {
    match &input.data {
        Data::Struct(data) => struct_body(&data.fields, errors),
        Data::Enum(data) => {
            let arms: Vec<Bodies> = data
                .variants
                .iter()
                .map(|variant| variant_arm(variant, errors))
                .collect();
            let traced = arms.iter().map(|a| a.traced).sum();
            if data.variants.is_empty() {
                // An empty enum has no values: `trace` can never be called.
                let never = quote!(match *self {});
                Bodies {
                    traced,
                    trace: never.clone(),
                    size: never.clone(),
                    inert_size: never,
                }
            } else if traced == 0 {
                // No variant has a traced field: nothing to match on.
                Bodies {
                    traced,
                    trace: quote!(),
                    size: quote!(),
                    inert_size: quote!(),
                }
            } else {
                let (trace, size, inert) = (
                    arms.iter().map(|a| &a.trace),
                    arms.iter().map(|a| &a.size),
                    arms.iter().map(|a| &a.inert_size),
                );
                Bodies {
                    traced,
                    trace: quote!(match self { #(#trace)* }),
                    size: quote!(match self { #(#size)* }),
                    inert_size: quote!(match self { #(#inert)* }),
                }
            }
        }
        Data::Union(data) => {
            errors.push(syn::Error::new(
                data.union_token.span,
                "Trace cannot be derived for unions",
            ));
            Bodies {
                traced: 0,
                trace: quote!(),
                size: quote!(),
                inert_size: quote!(),
            }
        }
    }
}

/// The span of the code generated for `field`: it resolves names at the call
/// site, like the rest of the impl (so that `self`, `tracer` and the bindings
/// still refer to each other when the type comes out of a `macro_rules!`),
/// but points at the field's type, so that a missing `Trace` impl is
/// reported there.
fn field_span(field: &syn::Field) -> Span {
    Span::call_site().located_at(field.ty.span())
}

/// Whether `field` is marked `#[trace(skip)]` (reporting misplaced keys).
fn is_skipped(field: &syn::Field, errors: &mut Errors) -> bool {
    parse_options(&field.attrs, Place::Field, errors)
        .skip
        .is_some()
}

/// `tracer.field("name", &self.name);` for each traced field of a struct,
/// and the matching `__size += heap_size(&self.name);` lines.
fn struct_body(fields: &Fields, errors: &mut Errors) -> Bodies {
    let mut calls = Vec::new();
    let mut sizes = Vec::new();
    let mut inerts = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        if is_skipped(field, errors) {
            continue;
        }
        let label = label(field, i);
        let span = field_span(field);
        let member = if let Some(ident) = &field.ident {
            quote!(#ident)
        } else {
            let mut index = Index::from(i);
            index.span = span;
            quote!(#index)
        };
        calls.push(quote_spanned! {span=>
            tracer.field(#label, &self.#member);
        });
        sizes.push(quote_spanned! {span=>
            __size += ::rcycle::Trace::heap_size(&self.#member);
        });
        inerts.push(quote_spanned! {span=>
            __size += ::rcycle::Trace::__inert_heap_size(&self.#member, __depth)?;
        });
    }
    Bodies {
        traced: calls.len(),
        trace: quote!(#(#calls)*),
        size: quote!(#(#sizes)*),
        inert_size: quote!(#(#inerts)*),
    }
}

/// One `match` arm: `Self::Variant { a: __field_0, .. } => { ... }`, for
/// `trace` and for `heap_size`.
///
/// Bindings get generated names so that a field called `tracer` cannot
/// shadow the tracer.
fn variant_arm(variant: &syn::Variant, errors: &mut Errors) -> Bodies {
    parse_options(&variant.attrs, Place::Variant, errors);
    let name = &variant.ident;
    let mut calls = Vec::new();
    let mut sizes = Vec::new();
    let mut inerts = Vec::new();
    let mut bindings = Vec::new();
    let mut skipped_any = false;
    for (i, field) in variant.fields.iter().enumerate() {
        if is_skipped(field, errors) {
            skipped_any = true;
            if field.ident.is_none() {
                bindings.push(quote!(_));
            }
            continue;
        }
        let span = field_span(field);
        let binding = format_ident!("__field_{}", i, span = span);
        let label = label(field, i);
        if let Some(ident) = &field.ident {
            bindings.push(quote!(#ident: #binding));
        } else {
            bindings.push(quote!(#binding));
        }
        calls.push(quote_spanned! {span=>
            tracer.field(#label, #binding);
        });
        sizes.push(quote_spanned! {span=>
            __size += ::rcycle::Trace::heap_size(#binding);
        });
        inerts.push(quote_spanned! {span=>
            __size += ::rcycle::Trace::__inert_heap_size(#binding, __depth)?;
        });
    }
    let pattern = match &variant.fields {
        Fields::Named(_) => {
            let rest = if skipped_any { quote!(..) } else { quote!() };
            quote!(Self::#name { #(#bindings,)* #rest })
        }
        Fields::Unnamed(_) => quote!(Self::#name(#(#bindings),*)),
        Fields::Unit => quote!(Self::#name),
    };
    Bodies {
        traced: calls.len(),
        trace: quote!(#pattern => { #(#calls)* }),
        size: quote!(#pattern => { #(#sizes)* }),
        inert_size: quote!(#pattern => { #(#inerts)* }),
    }
}

/// The generated bodies of `trace`, `heap_size` and `__inert_heap_size`
/// (for a struct; one `match` arm each for a variant), and how many fields
/// they report.
struct Bodies {
    traced: usize,
    trace: TokenStream2,
    size: TokenStream2,
    inert_size: TokenStream2,
}

fn expand(mut input: DeriveInput) -> syn::Result<TokenStream2> {
    let mut errors = Errors::default();
    let container = parse_options(&input.attrs, Place::Container, &mut errors);
    check_not_packed(&input.attrs, &mut errors);
    let Bodies {
        traced,
        trace: body,
        size: size_body,
        inert_size: inert_body,
    } = trace_body(&input, &mut errors);
    errors.finish()?;

    for param in &mut input.generics.params {
        if let GenericParam::Type(param) = param {
            param.bounds.push(parse_quote!(::rcycle::Trace));
        }
    }
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    // With no traced field, `tracer` is never used: name it `_tracer`.
    let tracer_param = if traced == 0 {
        format_ident!("_tracer")
    } else {
        format_ident!("tracer")
    };

    let may_contain_gc = if traced == 0 {
        quote! {
            #[inline]
            fn may_contain_gc() -> bool {
                false
            }
            #[inline(always)]
            fn __owns_no_gc(&self) -> bool {
                true
            }
        }
    } else {
        // The default (`true`) is kept: computing it from the field types
        // would recurse forever for recursive types.
        quote!()
    };

    // The sum of the traced fields' `heap_size`, as the default computes it
    // through `trace`, but without a `Tracer` per level: a deep structure
    // (a `Box` list) recurses through this one small frame (issue 19).
    let heap_size = if traced == 0 {
        quote! {
            fn heap_size(&self) -> usize {
                0
            }
            #[inline(always)]
            fn __inert_heap_size(&self, _: u32) -> ::core::option::Option<usize> {
                ::core::option::Option::Some(0)
            }
        }
    } else {
        quote! {
            #[allow(deprecated)]
            fn heap_size(&self) -> usize {
                let mut __size = 0usize;
                #size_body
                __size
            }
            // The same sum, where every field answers without user code
            // (each asked one level deeper: a recursive type bottoms out).
            #[allow(deprecated)]
            #[inline]
            fn __inert_heap_size(&self, __depth: u32) -> ::core::option::Option<usize> {
                let __depth = __depth.checked_sub(1)?;
                let mut __size = 0usize;
                #inert_body
                ::core::option::Option::Some(__size)
            }
        }
    };

    // Located at the `finalize` key, so that a missing `Finalize` impl is
    // reported there.
    let finalize = match container.finalize {
        Some(key) => quote_spanned! {Span::call_site().located_at(key)=>
            #[inline]
            fn has_finalizer() -> bool {
                true
            }
            #[inline]
            fn finalize(&self) {
                <Self as ::rcycle::Finalize>::finalize(self)
            }
        },
        None => quote!(),
    };

    Ok(quote! {
        #[automatically_derived]
        // `T: Trace` may already be in the user's bounds.
        #[allow(clippy::trait_duplication_in_bounds)]
        unsafe impl #impl_generics ::rcycle::Trace for #name #ty_generics #where_clause {
            #[inline]
            #[allow(deprecated)]
            fn trace(&self, #tracer_param: &mut ::rcycle::Tracer<'_>) {
                #body
            }
            #heap_size
            #may_contain_gc
            #finalize
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(input: DeriveInput) -> String {
        match expand(input) {
            Ok(tokens) => panic!("expected an error, got {tokens}"),
            Err(e) => e
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn expansion_of(input: DeriveInput) -> String {
        expand(input).expect("expands").to_string()
    }

    #[test]
    fn named_struct() {
        let out = expansion_of(parse_quote! {
            struct S { a: u8, #[trace(skip)] b: File, r#type: u8 }
        });
        assert!(
            out.contains(r#"tracer . field ("a" , & self . a)"#),
            "{out}"
        );
        assert!(
            out.contains(r#"tracer . field ("type" , & self . r#type)"#),
            "{out}"
        );
        assert!(!out.contains("self . b"), "{out}");
        assert!(!out.contains("may_contain_gc"), "{out}");
        assert!(!out.contains("finalize"), "{out}");
        assert!(out.contains("automatically_derived"), "{out}");
    }

    #[test]
    fn tuple_struct() {
        let out = expansion_of(parse_quote! { struct S(u8, #[trace(skip)] File, u8); });
        assert!(
            out.contains(r#"tracer . field ("0" , & self . 0)"#),
            "{out}"
        );
        assert!(
            out.contains(r#"tracer . field ("2" , & self . 2)"#),
            "{out}"
        );
        assert!(!out.contains("self . 1"), "{out}");
    }

    #[test]
    fn no_traced_fields() {
        for input in [
            parse_quote! { struct S; },
            parse_quote! { struct S {} },
            parse_quote! { struct S(#[trace(skip)] u8); },
            parse_quote! { enum E {} },
            parse_quote! { enum E { A, B(#[trace(skip)] u8), C { #[trace(skip)] x: u8 } } },
        ] {
            let out = expansion_of(input);
            assert!(out.contains("_tracer"), "{out}");
            assert!(
                out.contains("fn may_contain_gc () -> bool { false }"),
                "{out}"
            );
        }
    }

    #[test]
    fn enum_patterns() {
        let out = expansion_of(parse_quote! {
            enum E { A, B { x: u8, #[trace(skip)] y: u8 }, C(#[trace(skip)] u8, u8), D { tracer: u8 } }
        });
        assert!(out.contains("Self :: A => { }"), "{out}");
        assert!(out.contains("Self :: B { x : __field_0 , .. }"), "{out}");
        assert!(out.contains("Self :: C (_ , __field_1)"), "{out}");
        assert!(out.contains("Self :: D { tracer : __field_0 , }"), "{out}");
        assert!(
            out.contains(r#"tracer . field ("tracer" , __field_0)"#),
            "{out}"
        );
    }

    #[test]
    fn generics_get_bounds() {
        let out = expansion_of(parse_quote! {
            struct S<'a, T: Clone, U, const N: usize> where U: Copy { t: T, u: &'a U }
        });
        assert!(
            out.contains("impl < 'a , T : Clone + :: rcycle :: Trace , U : :: rcycle :: Trace , const N : usize >"),
            "{out}"
        );
        assert!(
            out.contains("for S < 'a , T , U , N > where U : Copy"),
            "{out}"
        );
    }

    #[test]
    fn finalize() {
        let out = expansion_of(parse_quote! { #[trace(finalize)] struct S { a: u8 } });
        assert!(
            out.contains("fn has_finalizer () -> bool { true }"),
            "{out}"
        );
        assert!(
            out.contains("< Self as :: rcycle :: Finalize > :: finalize (self)"),
            "{out}"
        );
    }

    #[test]
    fn errors() {
        let e = error_of(parse_quote! { union U { a: u8 } });
        assert_eq!(e, "Trace cannot be derived for unions");
        let e = error_of(parse_quote! { struct S { #[trace(foo)] a: u8 } });
        assert!(e.starts_with("unknown trace attribute `foo`"), "{e}");
        let e = error_of(parse_quote! { #[trace(bar::baz)] struct S; });
        assert!(e.starts_with("unknown trace attribute `bar::baz`"), "{e}");
        let e = error_of(parse_quote! { #[trace(skip)] struct S; });
        assert!(e.starts_with("`#[trace(skip)]` goes on a field"), "{e}");
        let e = error_of(parse_quote! { struct S { #[trace(finalize)] a: u8 } });
        assert!(
            e.starts_with("`#[trace(finalize)]` goes on the type"),
            "{e}"
        );
        let e = error_of(parse_quote! { enum E { #[trace(skip)] A } });
        assert!(e.contains("not supported on enum variants"), "{e}");
        let e = error_of(parse_quote! { struct S { #[trace(skip, skip)] a: u8 } });
        assert_eq!(e, "duplicate trace attribute `skip`");
        let e = error_of(parse_quote! { struct S { #[trace(skip = true)] a: u8 } });
        assert_eq!(e, "`skip` takes no arguments");
        let e = error_of(parse_quote! { struct S { #[trace] a: u8 } });
        assert!(!e.is_empty());
        let e = error_of(parse_quote! { #[repr(C, packed)] struct S { a: u8 } });
        assert!(e.contains("repr(packed)"), "{e}");
        // All errors of one item are reported together.
        let e = error_of(parse_quote! {
            #[trace(skip)] struct S { #[trace(foo)] a: u8, #[trace(finalize)] b: u8 }
        });
        assert_eq!(e.lines().count(), 3, "{e}");
    }
}
