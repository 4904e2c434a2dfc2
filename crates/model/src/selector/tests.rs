//! Parsing, printing and matching of selectors: examples, error positions, and properties over
//! arbitrary input.

use super::*;
use crate::Phase;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn label(input: &str) -> Vec<LabelRequirement> {
    LabelSelector::parse(input)
        .unwrap_or_else(|e| panic!("{input:?}: {e}"))
        .requirements()
        .to_vec()
}

fn label_error(input: &str) -> SelectorError {
    LabelSelector::parse(input).expect_err(input)
}

fn field_error(input: &str) -> SelectorError {
    FieldSelector::parse(input).expect_err(input)
}

fn eq(key: &str, value: &str) -> LabelRequirement {
    LabelRequirement::Equals {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

#[test]
fn every_kind_of_label_requirement_parses() {
    assert_eq!(label("a=b"), [eq("a", "b")]);
    assert_eq!(label("a==b"), [eq("a", "b")]);
    assert_eq!(
        label("a!=b"),
        [LabelRequirement::NotEquals {
            key: "a".to_owned(),
            value: "b".to_owned()
        }]
    );
    assert_eq!(
        label("tier in (web, api)"),
        [LabelRequirement::In {
            key: "tier".to_owned(),
            values: set(&["api", "web"])
        }]
    );
    assert_eq!(
        label("tier notin (db)"),
        [LabelRequirement::NotIn {
            key: "tier".to_owned(),
            values: set(&["db"])
        }]
    );
    assert_eq!(
        label("example.com/team"),
        [LabelRequirement::Exists {
            key: "example.com/team".to_owned()
        }]
    );
    assert_eq!(
        label("!legacy"),
        [LabelRequirement::DoesNotExist {
            key: "legacy".to_owned()
        }]
    );
}

#[test]
fn requirements_are_joined_by_commas_and_spaces_are_ignored() {
    assert_eq!(
        label(" env = prod ,tier in(web),  !legacy\t"),
        [
            eq("env", "prod"),
            LabelRequirement::In {
                key: "tier".to_owned(),
                values: set(&["web"])
            },
            LabelRequirement::DoesNotExist {
                key: "legacy".to_owned()
            },
        ]
    );
    assert!(LabelSelector::parse("").unwrap().is_empty());
    assert!(LabelSelector::parse(" \t ").unwrap().is_empty());
}

#[test]
fn empty_values_are_kubernetes_empty_values() {
    assert_eq!(label("a="), [eq("a", "")]);
    assert_eq!(
        label("a=,b"),
        [
            eq("a", ""),
            LabelRequirement::Exists {
                key: "b".to_owned()
            }
        ]
    );
    assert_eq!(
        label("a in (x,)"),
        [LabelRequirement::In {
            key: "a".to_owned(),
            values: set(&["", "x"])
        }]
    );
    assert_eq!(
        label("a in ()"),
        [LabelRequirement::In {
            key: "a".to_owned(),
            values: set(&[""])
        }]
    );
}

#[test]
fn in_and_notin_are_words_where_a_key_or_value_is_expected() {
    assert_eq!(label("in=notin"), [eq("in", "notin")]);
    assert_eq!(
        label("in in (in)"),
        [LabelRequirement::In {
            key: "in".to_owned(),
            values: set(&["in"])
        }]
    );
}

#[test]
fn label_matching_follows_kubernetes() {
    let l = labels(&[("env", "prod"), ("tier", "web")]);
    let matches = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
    assert!(matches(""));
    assert!(matches("env=prod,tier"));
    assert!(!matches("env=dev"));
    assert!(matches("env!=dev"));
    assert!(matches("absent!=x"), "!= holds for an absent label");
    assert!(
        matches("absent notin (x)"),
        "notin holds for an absent label"
    );
    assert!(!matches("absent in (x)"));
    assert!(!matches("absent="), "= needs the label present");
    assert!(matches("tier in (api,web)"));
    assert!(!matches("tier notin (api,web)"));
    assert!(matches("!absent"));
    assert!(!matches("!env"));
    assert!(!matches("env=prod,env=dev"));
}

#[test]
fn errors_name_the_offset_and_what_was_expected() {
    let e = label_error("a=b,,c");
    assert_eq!(e.offset(), Some(4));
    assert_eq!(
        e.to_string(),
        "at offset 4: expected a label key or '!', found ','"
    );
    assert_eq!(
        label_error("a=b,").to_string(),
        "at offset 4: expected a label key or '!', found the end"
    );
    assert_eq!(
        label_error("a in x").to_string(),
        "at offset 5: expected '(' and a list of values, found a word"
    );
    assert_eq!(
        label_error("a in (x").to_string(),
        "at offset 7: expected ',' or ')', found the end"
    );
    assert_eq!(
        label_error("a=b c").to_string(),
        "at offset 4: expected ',' or the end, found a word"
    );
    assert_eq!(
        label_error("a (b)").to_string(),
        "at offset 2: expected an operator (=, ==, !=, in, notin), ',' or the end, found '('"
    );
    assert_eq!(label_error("a=(").offset(), Some(2));
    assert_eq!(label_error("!").offset(), Some(1));
    assert_eq!(label_error("a in (x y)").offset(), Some(8));
    assert!(label_error("replicas > 1")
        .to_string()
        .contains("'>' and '<' are not supported"));
}

#[test]
fn keys_and_values_follow_kubernetes_rules() {
    for ok in [
        "a",
        "A.b_c-9",
        "example.com/name",
        "a.b-c.d/x",
        &"k".repeat(63),
        &format!("{}/k", "p".repeat(253)),
    ] {
        assert!(LabelSelector::parse(ok).is_ok(), "{ok}");
    }
    for (bad, at) in [
        ("-a", 0),
        ("a-", 0),
        ("Example.com/a", 0),
        ("a/b/c", 0),
        ("/a", 0),
        ("a/", 0),
        ("x.-y/a", 0),
        ("a_b/c", 0),
        ("b=c,a..b/c", 4),
        (&"k".repeat(64), 0),
        (&format!("{}/k", "p".repeat(254)), 0),
    ] {
        let e = label_error(bad);
        assert!(matches!(e, SelectorError::InvalidKey { .. }), "{bad}: {e}");
        assert_eq!(e.offset(), Some(at), "{bad}");
    }
    for (bad, at) in [
        ("a=-b", 2),
        ("a=b_", 2),
        ("a!=x/y", 3),
        ("a in (ok,-no)", 9),
        (&format!("a={}", "v".repeat(64)), 2),
    ] {
        let e = label_error(bad);
        assert!(
            matches!(e, SelectorError::InvalidValue { .. }),
            "{bad}: {e}"
        );
        assert_eq!(e.offset(), Some(at), "{bad}");
    }
}

#[test]
fn offsets_count_characters_not_bytes() {
    assert_eq!(label_error("a=b,ключ=c").offset(), Some(4));
    assert_eq!(label_error("é=x").offset(), Some(0));
    assert_eq!(label_error("ключ=x,,").offset(), Some(0));
    assert_eq!(label_error("a=ü").offset(), Some(2));
    assert_eq!(label_error("a=\u{0}").offset(), Some(2));
    assert_eq!(field_error("spec.customerId=ü,x=1").offset(), Some(18));
}

#[test]
fn errors_never_carry_the_input() {
    let secret = "sk-ant-api03-abcdef";
    for input in [
        format!("{secret} {secret}"),
        format!("a={secret}_"),
        format!("a in ({secret}"),
        format!("{secret}(x)"),
    ] {
        let message = label_error(&input).to_string();
        assert!(!message.contains("sk-ant"), "{message}");
    }
    for input in [
        format!("{secret}=x"),
        format!("spec.customerId={secret}\u{200B}"),
        format!("status.phase={secret}"),
        format!("spec.customerId={secret}\\q"),
    ] {
        let message = field_error(&input).to_string();
        assert!(!message.contains("sk-ant"), "{message}");
    }
}

#[test]
fn overlong_input_is_refused_before_parsing() {
    let long = "a,".repeat(MAX_SELECTOR_CHARS);
    assert_eq!(
        label_error(&long),
        SelectorError::TooLong {
            max: MAX_SELECTOR_CHARS
        }
    );
    assert_eq!(field_error(&long).offset(), None);
    let at_limit = format!("a{}", ",a".repeat((MAX_SELECTOR_CHARS - 1) / 2));
    assert!(LabelSelector::parse(&at_limit).is_ok());
}

#[test]
fn field_selectors_parse_both_fields_and_escapes() {
    let s = FieldSelector::parse("status.phase=Ready, spec.customerId!=a\\,b\\=c\\\\d").unwrap();
    assert_eq!(
        s.requirements(),
        [
            FieldRequirement::Phase {
                op: FieldOp::Equals,
                phase: Phase::Ready
            },
            FieldRequirement::CustomerId {
                op: FieldOp::NotEquals,
                value: "a,b=c\\d".to_owned()
            },
        ]
    );
    assert_eq!(
        FieldSelector::parse("status.phase==Failed")
            .unwrap()
            .requirements(),
        [FieldRequirement::Phase {
            op: FieldOp::Equals,
            phase: Phase::Failed
        }]
    );
    assert!(FieldSelector::parse("").unwrap().is_empty());
    assert!(FieldSelector::parse("  ").unwrap().is_empty());
}

#[test]
fn field_matching() {
    let fields = FieldSet {
        phase: Phase::Ready,
        customer_id: "cust-1",
    };
    let matches = |s: &str| FieldSelector::parse(s).unwrap().matches(&fields);
    assert!(matches(""));
    assert!(matches("status.phase=Ready"));
    assert!(!matches("status.phase!=Ready"));
    assert!(matches("status.phase!=Failed,spec.customerId=cust-1"));
    assert!(!matches("spec.customerId=cust-2"));
    assert!(matches("spec.customerId!=cust-2"));
}

#[test]
fn field_errors_name_the_offset_and_the_supported_fields() {
    let e = field_error("status.phase=Ready,metadata.name=x");
    assert_eq!(e.offset(), Some(19));
    assert_eq!(
        e.to_string(),
        "at offset 19: unknown field; the supported fields are status.phase, spec.customerId"
    );
    assert_eq!(
        field_error("status.phase=Sleeping").to_string(),
        "at offset 13: invalid value for status.phase: must be one of Pending, Provisioning, \
         Ready, Degraded, Stopped, Deleting, Failed"
    );
    assert_eq!(
        field_error("status.phase").to_string(),
        "at offset 12: expected an operator (=, ==, !=) after a field name, found ',' or the end"
    );
    assert_eq!(field_error("status.phase=Ready,").offset(), Some(19));
    assert_eq!(field_error("=x").offset(), Some(0));
    assert_eq!(
        field_error("spec.customerId=a\\b"),
        SelectorError::InvalidEscape { at: 17 }
    );
    assert_eq!(
        field_error("spec.customerId=ab\\"),
        SelectorError::InvalidEscape { at: 18 }
    );
    assert_eq!(
        field_error("spec.customerId=a=b"),
        SelectorError::UnescapedEquals { at: 17 }
    );
    assert_eq!(field_error("spec.customerId=a\u{0}").offset(), Some(16));
    assert_eq!(field_error("spec.customerId=a\u{202E}").offset(), Some(16));
    assert_eq!(
        field_error(&format!("spec.customerId={}", "c".repeat(129))).offset(),
        Some(16)
    );
    assert!(matches!(
        field_error("unknown=a\\q"),
        SelectorError::UnknownField { at: 0 }
    ));
}

#[test]
fn a_selection_matches_an_instance_by_labels_and_fields() {
    let mut instance: crate::OpenClawInstance = serde_json::from_value(serde_json::json!({
        "apiVersion": crate::API_VERSION, "kind": crate::KIND,
        "metadata": {"name": "acme", "uid": "00000000-0000-0000-0000-000000000001",
            "generation": 1, "resourceVersion": "1", "labels": {"env": "prod"},
            "creationTimestamp": "2026-11-22T00:00:00Z"},
        "spec": {"customerId": "cust-1", "region": "iad"},
        "status": {"phase": "Ready"}
    }))
    .unwrap();
    let selection = Selection {
        labels: LabelSelector::parse("env=prod").unwrap(),
        fields: FieldSelector::parse("status.phase=Ready").unwrap(),
    };
    assert!(selection.matches(&instance));
    instance.status.phase = Phase::Failed;
    assert!(!selection.matches(&instance));
    assert!(Selection::default().matches(&instance));
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?",
        Just("in".to_owned()),
        Just("notin".to_owned()),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-z0-9]([a-z0-9-]{0,4}[a-z0-9])?(\\.[a-z0-9]{1,4}){0,2}"),
        arb_name(),
    )
        .prop_map(|(prefix, name)| match prefix {
            Some(p) => format!("{p}/{name}"),
            None => name,
        })
}

fn arb_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), arb_name()]
}

fn arb_requirement() -> impl Strategy<Value = LabelRequirement> {
    let values = || prop::collection::btree_set(arb_value(), 1..4);
    prop_oneof![
        (arb_key(), arb_value()).prop_map(|(key, value)| LabelRequirement::Equals { key, value }),
        (arb_key(), arb_value())
            .prop_map(|(key, value)| LabelRequirement::NotEquals { key, value }),
        (arb_key(), values()).prop_map(|(key, values)| LabelRequirement::In { key, values }),
        (arb_key(), values()).prop_map(|(key, values)| LabelRequirement::NotIn { key, values }),
        arb_key().prop_map(|key| LabelRequirement::Exists { key }),
        arb_key().prop_map(|key| LabelRequirement::DoesNotExist { key }),
    ]
}

fn arb_field_requirement() -> impl Strategy<Value = FieldRequirement> {
    let op = prop_oneof![Just(FieldOp::Equals), Just(FieldOp::NotEquals)];
    prop_oneof![
        (op.clone(), prop::sample::select(Phase::ALL.to_vec()))
            .prop_map(|(op, phase)| FieldRequirement::Phase { op, phase }),
        (op, "[a-zA-Z0-9 ,=!\\\\()é日_-]{0,20}")
            .prop_map(|(op, value)| FieldRequirement::CustomerId { op, value }),
    ]
}

/// Label sets over a few keys and values, so requirements often meet the labels they name.
fn arb_labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["a", "b", "in"]).prop_map(str::to_owned),
        prop::sample::select(vec!["", "x", "y"]).prop_map(str::to_owned),
        0..3,
    )
}

/// Text made mostly of the selector grammar's own characters, so that many inputs parse.
fn arb_selector_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[ab=!(),\\\\ ]".prop_map(|s| s),
            Just(" in ".to_owned()),
            Just(" notin ".to_owned()),
            Just("status.phase".to_owned()),
            Just("Ready".to_owned()),
            any::<char>().prop_map(String::from),
        ],
        0..16,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn printing_a_label_selector_parses_back_to_it(
        requirements in prop::collection::vec(arb_requirement(), 0..5)
    ) {
        let selector = LabelSelector::from_requirements(requirements);
        let printed = selector.to_string();
        prop_assert_eq!(LabelSelector::parse(&printed), Ok(selector), "{}", printed);
    }

    #[test]
    fn printing_a_field_selector_parses_back_to_it(
        requirements in prop::collection::vec(arb_field_requirement(), 0..4)
    ) {
        let selector = FieldSelector::from_requirements(requirements);
        let printed = selector.to_string();
        prop_assert_eq!(FieldSelector::parse(&printed), Ok(selector), "{}", printed);
    }

    #[test]
    fn negated_operators_select_the_complement(
        key in prop::sample::select(vec!["a", "b", "in"]),
        values in prop::collection::btree_set(prop::sample::select(vec!["", "x", "y"]).prop_map(str::to_owned), 1..3),
        labels in arb_labels(),
    ) {
        let value = values.iter().next().cloned().unwrap_or_default();
        let key = key.to_owned();
        let pairs = [
            (LabelRequirement::Equals { key: key.clone(), value: value.clone() },
             LabelRequirement::NotEquals { key: key.clone(), value }),
            (LabelRequirement::In { key: key.clone(), values: values.clone() },
             LabelRequirement::NotIn { key: key.clone(), values }),
            (LabelRequirement::Exists { key: key.clone() },
             LabelRequirement::DoesNotExist { key }),
        ];
        for (positive, negative) in pairs {
            prop_assert_ne!(positive.matches(&labels), negative.matches(&labels));
        }
    }

    #[test]
    fn parsing_never_panics_and_errors_point_inside_the_input(input in arb_selector_text()) {
        let length = input.chars().count();
        for result in [
            LabelSelector::parse(&input).map(|s| s.to_string()),
            FieldSelector::parse(&input).map(|s| s.to_string()),
        ] {
            if let Err(e) = result {
                prop_assert!(e.offset().is_some_and(|at| at <= length), "{}", e);
            }
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(input in any::<String>()) {
        let _ = LabelSelector::parse(&input);
        let _ = FieldSelector::parse(&input);
    }

    #[test]
    fn whatever_parses_prints_to_an_equivalent_selector(input in arb_selector_text(), labels in arb_labels()) {
        if let Ok(selector) = LabelSelector::parse(&input) {
            let again = LabelSelector::parse(&selector.to_string());
            prop_assert_eq!(again.as_ref(), Ok(&selector));
            prop_assert_eq!(selector.matches(&labels), again.map(|s| s.matches(&labels)).unwrap_or(false));
        }
        if let Ok(selector) = FieldSelector::parse(&input) {
            prop_assert_eq!(FieldSelector::parse(&selector.to_string()), Ok(selector));
        }
    }
}
