//! Black-box tests of `labelSelector` and `fieldSelector` on `GET /v1/instances` over a real
//! PostgreSQL: each kind of requirement selects exactly the right instances, filtering happens
//! before paging, unparseable selectors are 400s that name the parameter and the offset, and
//! the SQL filter agrees with the in-memory one (`openclaws_model::selector`) on random
//! selectors. The support console's search, which shares the rewritten list query, still works.

use openclaws_model::selector::{
    FieldOp, FieldRequirement, FieldSelector, LabelRequirement, LabelSelector, Selection,
};
use openclaws_model::{OpenClawInstance, Phase};
use openclaws_testkit::api::{spawn_api, TestApi, READER};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Creates `name` for `customer` with `labels`.
async fn create(api: &TestApi, name: &str, customer: &str, labels: &[(&str, &str)]) {
    let labels: Map<String, Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let body =
        json!({"metadata": {"labels": labels}, "spec": {"customerId": customer, "region": "iad"}});
    let reply = api.put(name, &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.text);
}

/// Sets the phase as the controller's status write does: the column the list filters on and
/// `status.phase` that reads show.
async fn set_phase(api: &TestApi, name: &str, phase: Phase) {
    sqlx::query(
        "UPDATE instances SET phase = $2, status = status || jsonb_build_object('phase', $2::text) \
         WHERE name = $1",
    )
        .bind(name)
        .bind(phase.as_str())
        .execute(&api.pool)
        .await
        .unwrap();
}

/// Query parameters as name and value.
type Params<'a> = &'a [(&'a str, &'a str)];

/// `/v1/instances` with these query parameters, encoded.
fn list_path(params: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    format!("/v1/instances?{}", query.finish())
}

/// Every page of the list with these parameters and page size `limit`, as names in order. Each
/// page but the last must be full: the filter runs before the page is cut.
async fn all_pages(api: &TestApi, params: &[(&str, &str)], limit: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let limit_text = limit.to_string();
    loop {
        let mut query = params.to_vec();
        query.push(("limit", &limit_text));
        if let Some(c) = &cursor {
            query.push(("continue", c));
        }
        let page = api.get(&list_path(&query)).await;
        assert_eq!(page.status, StatusCode::OK, "{params:?}: {}", page.text);
        let items = page.json["items"].as_array().unwrap();
        names.extend(items.iter().map(|i| name_of(i).to_owned()));
        match page.json["metadata"]["continue"].as_str() {
            Some(c) => {
                assert_eq!(
                    items.len(),
                    limit,
                    "{params:?}: a page before the last is full"
                );
                cursor = Some(c.to_owned());
            }
            None => return names,
        }
    }
}

fn name_of(item: &Value) -> &str {
    item["metadata"]["name"].as_str().unwrap()
}

/// The names one unpaged list returns for a label selector.
async fn select(api: &TestApi, selector: &str) -> Vec<String> {
    all_pages(api, &[("labelSelector", selector)], 1000).await
}

#[tokio::test]
async fn each_kind_of_label_requirement_selects_exactly_the_matching_instances() {
    each_kind_of_label_requirement_selects_exactly_the_matching_instances_on(&spawn_api().await)
        .await;
}

/// [`each_kind_of_label_requirement_selects_exactly_the_matching_instances`] on a given API (also run through a transaction pooler).
pub(crate) async fn each_kind_of_label_requirement_selects_exactly_the_matching_instances_on(
    api: &TestApi,
) {
    create(api, "alpha", "c1", &[("env", "prod"), ("tier", "web")]).await;
    create(api, "bravo", "c1", &[("env", "prod"), ("tier", "api")]).await;
    create(
        api,
        "charlie",
        "c2",
        &[("env", "dev"), ("tier", "web"), ("legacy", "")],
    )
    .await;
    create(api, "delta", "c2", &[("env", "staging")]).await;
    create(api, "echo", "c3", &[]).await;
    create(
        api,
        "foxtrot",
        "c3",
        &[("example.com/team", "core"), ("env", "prod")],
    )
    .await;

    let cases: &[(&str, &[&str])] = &[
        (
            "",
            &["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"],
        ),
        ("env=prod", &["alpha", "bravo", "foxtrot"]),
        ("env==prod", &["alpha", "bravo", "foxtrot"]),
        ("env!=prod", &["charlie", "delta", "echo"]),
        ("tier in (web, api)", &["alpha", "bravo", "charlie"]),
        ("tier notin (web)", &["bravo", "delta", "echo", "foxtrot"]),
        ("legacy", &["charlie"]),
        ("legacy=", &["charlie"]),
        ("!legacy", &["alpha", "bravo", "delta", "echo", "foxtrot"]),
        ("env=prod,tier=web", &["alpha"]),
        ("tier,!legacy", &["alpha", "bravo"]),
        ("example.com/team=core", &["foxtrot"]),
        ("example.com/team", &["foxtrot"]),
        ("env in (qa)", &[]),
        ("env=prod,env=dev", &[]),
    ];
    for (selector, expected) in cases {
        assert_eq!(select(api, selector).await, *expected, "{selector}");
    }
    let as_reader = api
        .send(
            Method::GET,
            &list_path(&[("labelSelector", "env=prod")]),
            Some(READER),
            None,
            &[],
        )
        .await;
    assert_eq!(as_reader.status, StatusCode::OK);
}

#[tokio::test]
async fn paging_a_filtered_list_returns_every_match_exactly_once() {
    paging_a_filtered_list_returns_every_match_exactly_once_on(&spawn_api().await).await;
}

/// [`paging_a_filtered_list_returns_every_match_exactly_once`] on a given API (also run through a transaction pooler).
pub(crate) async fn paging_a_filtered_list_returns_every_match_exactly_once_on(api: &TestApi) {
    for i in 0..23 {
        let parity = if i % 2 == 0 { "even" } else { "odd" };
        let customer = if i % 3 == 0 { "c-three" } else { "c-other" };
        create(
            api,
            &format!("inst-{i:02}"),
            customer,
            &[("parity", parity)],
        )
        .await;
        if i % 4 == 0 {
            set_phase(api, &format!("inst-{i:02}"), Phase::Ready).await;
        }
    }
    let even: Vec<String> = (0..23).step_by(2).map(|i| format!("inst-{i:02}")).collect();
    for limit in [1, 2, 3, 5, 12, 1000] {
        assert_eq!(
            all_pages(api, &[("labelSelector", "parity=even")], limit).await,
            even,
            "limit {limit}"
        );
    }
    let not_ready: Vec<String> = (0..23)
        .filter(|i| i % 4 != 0)
        .map(|i| format!("inst-{i:02}"))
        .collect();
    assert_eq!(
        all_pages(api, &[("fieldSelector", "status.phase!=Ready")], 2).await,
        not_ready
    );
    let three_even: Vec<String> = (0..23)
        .filter(|i| i % 3 == 0 && i % 2 == 0)
        .map(|i| format!("inst-{i:02}"))
        .collect();
    assert_eq!(
        all_pages(
            api,
            &[
                ("labelSelector", "parity in (even)"),
                ("fieldSelector", "spec.customerId=c-three")
            ],
            1
        )
        .await,
        three_even
    );
}

#[tokio::test]
async fn field_selectors_filter_on_phase_and_customer_id_and_combine_with_the_other_filters() {
    field_selectors_filter_on_phase_and_customer_id_and_combine_with_the_other_filters_on(
        &spawn_api().await,
    )
    .await;
}

/// [`field_selectors_filter_on_phase_and_customer_id_and_combine_with_the_other_filters`] on a given API (also run through a transaction pooler).
pub(crate) async fn field_selectors_filter_on_phase_and_customer_id_and_combine_with_the_other_filters_on(
    api: &TestApi,
) {
    create(api, "one-a", "a,b=c", &[("env", "prod")]).await;
    create(api, "two-a", "a,b=c", &[("env", "dev")]).await;
    create(api, "three-b", "cust-b", &[("env", "prod")]).await;
    create(api, "four-b", "cust-b", &[]).await;
    set_phase(api, "one-a", Phase::Ready).await;
    set_phase(api, "three-b", Phase::Ready).await;
    set_phase(api, "four-b", Phase::Failed).await;

    let cases: &[(Params, &[&str])] = &[
        (
            &[("fieldSelector", "status.phase=Ready")],
            &["one-a", "three-b"],
        ),
        (&[("fieldSelector", "status.phase==Failed")], &["four-b"]),
        (
            &[("fieldSelector", "status.phase!=Ready")],
            &["four-b", "two-a"],
        ),
        (
            &[("fieldSelector", "spec.customerId=a\\,b\\=c")],
            &["one-a", "two-a"],
        ),
        (
            &[(
                "fieldSelector",
                "spec.customerId!=cust-b,status.phase!=Failed",
            )],
            &["one-a", "two-a"],
        ),
        (
            &[
                ("fieldSelector", "status.phase=Ready"),
                ("customerId", "cust-b"),
            ],
            &["three-b"],
        ),
        (
            &[("labelSelector", "env=prod"), ("customerId", "a,b=c")],
            &["one-a"],
        ),
        (
            &[
                ("labelSelector", "env"),
                ("fieldSelector", "spec.customerId=cust-b"),
                ("phase", "Ready"),
            ],
            &["three-b"],
        ),
        (
            &[
                ("fieldSelector", "spec.customerId=cust-b"),
                ("customerId", "a,b=c"),
            ],
            &[],
        ),
        (&[("fieldSelector", "spec.customerId=nobody")], &[]),
    ];
    for (params, expected) in cases {
        assert_eq!(all_pages(api, params, 1000).await, *expected, "{params:?}");
    }
}

#[tokio::test]
async fn unparseable_selectors_are_400_naming_the_parameter_and_the_offset() {
    let api = spawn_api().await;
    create(&api, "alpha", "c1", &[("env", "prod")]).await;
    let secret = "sk-ant-api03-secret";
    let long_key = "k".repeat(5000);
    let cases: &[(&str, &str, &str)] = &[
        (
            "labelSelector",
            "a=b,,c",
            "invalid labelSelector: at offset 4: expected a label key or '!', found ','",
        ),
        (
            "labelSelector",
            "env in prod",
            "invalid labelSelector: at offset 7: expected '(' and a list of values, found a word",
        ),
        (
            "labelSelector",
            "a=\u{0}",
            "invalid labelSelector: at offset 2: invalid label value",
        ),
        (
            "labelSelector",
            "ключ=x",
            "invalid labelSelector: at offset 0: invalid label key",
        ),
        (
            "labelSelector",
            "\u{202E}x",
            "invalid labelSelector: at offset 0: invalid label key",
        ),
        (
            "labelSelector",
            &long_key,
            "invalid labelSelector: is longer than 4096 characters",
        ),
        (
            "labelSelector",
            &format!("{secret} {secret}"),
            "invalid labelSelector: at offset 20: expected an operator",
        ),
        (
            "labelSelector",
            &format!("env={secret}_"),
            "invalid labelSelector: at offset 4: invalid label value",
        ),
        (
            "fieldSelector",
            "metadata.name=alpha",
            "invalid fieldSelector: at offset 0: unknown field; the supported fields are \
             status.phase, spec.customerId",
        ),
        (
            "fieldSelector",
            "status.phase=Ready,status.phase=Asleep",
            "invalid fieldSelector: at offset 32: invalid value for status.phase: must be one of",
        ),
        (
            "fieldSelector",
            "spec.customerId=c\u{0}",
            "invalid fieldSelector: at offset 16: invalid value for spec.customerId",
        ),
        (
            "fieldSelector",
            &format!("spec.customerId={secret}=x"),
            "invalid fieldSelector: at offset 35: an '=' in a value must be escaped",
        ),
        (
            "fieldSelector",
            "status.phase",
            "invalid fieldSelector: at offset 12: expected an operator",
        ),
    ];
    for (parameter, value, message) in cases {
        let reply = api.get(&list_path(&[(parameter, value)])).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{value:?}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"]["code"], "bad_request", "{}", reply.text);
        let text = reply.json["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{value:?}: {text}");
        assert!(!text.contains("sk-ant") && !text.contains("kkkk"), "{text}");
    }
    for raw in [
        "/v1/instances?labelSelector=%FF",
        "/v1/instances?labelSelector=a&labelSelector=b",
        "/v1/instances?fieldSelector=a&fieldSelector=b",
    ] {
        let reply = api.get(raw).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{raw}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"]["code"], "bad_request");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_both_selectors_and_the_400() {
    let api = spawn_api().await;
    let doc = api
        .send(Method::GET, "/openapi.json", None, None, &[])
        .await
        .json;
    let list = &doc["paths"]["/v1/instances"]["get"];
    for name in ["labelSelector", "fieldSelector"] {
        let parameter = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} undocumented"));
        assert_eq!(parameter["in"], "query");
        assert_eq!(parameter["schema"]["type"], "string");
        assert_eq!(parameter["schema"]["maxLength"], 4096);
        assert!(parameter["schema"].get("pattern").is_none());
        assert!(parameter["description"].as_str().unwrap().contains("!="));
    }
    let bad_request = list["responses"]["400"]["description"].as_str().unwrap();
    assert!(bad_request.contains("labelSelector"), "{bad_request}");
}

/// A random label selector over a few keys and values, so that requirements often meet the
/// labels they name.
fn random_selector(rng: &mut StdRng) -> LabelSelector {
    let keys = ["a", "b", "example.com/c"];
    let values = ["", "x", "y", "z"];
    let count = rng.gen_range(0..=3);
    let requirements = (0..count)
        .map(|_| {
            let key = (*keys.choose(rng).unwrap()).to_owned();
            let value = (*values.choose(rng).unwrap()).to_owned();
            let size = rng.gen_range(1..=3);
            let set: BTreeSet<String> = values
                .choose_multiple(rng, size)
                .map(|v| (*v).to_owned())
                .collect();
            match rng.gen_range(0..6) {
                0 => LabelRequirement::Equals { key, value },
                1 => LabelRequirement::NotEquals { key, value },
                2 => LabelRequirement::In { key, values: set },
                3 => LabelRequirement::NotIn { key, values: set },
                4 => LabelRequirement::Exists { key },
                _ => LabelRequirement::DoesNotExist { key },
            }
        })
        .collect();
    LabelSelector::from_requirements(requirements)
}

fn random_field_selector(rng: &mut StdRng) -> FieldSelector {
    let op = |rng: &mut StdRng| {
        if rng.gen_bool(0.5) {
            FieldOp::Equals
        } else {
            FieldOp::NotEquals
        }
    };
    let mut requirements = Vec::new();
    if rng.gen_bool(0.3) {
        let phase = *[Phase::Pending, Phase::Ready].choose(rng).unwrap();
        requirements.push(FieldRequirement::Phase { op: op(rng), phase });
    }
    if rng.gen_bool(0.3) {
        let value = ["c1", "c2"].choose(rng).unwrap().to_string();
        requirements.push(FieldRequirement::CustomerId { op: op(rng), value });
    }
    FieldSelector::from_requirements(requirements)
}

#[tokio::test]
async fn the_sql_filter_agrees_with_the_in_memory_one_on_random_selectors() {
    let api = spawn_api().await;
    let mut rng = StdRng::seed_from_u64(12);
    for i in 0..30 {
        let mut labels = BTreeMap::new();
        for key in ["a", "b", "example.com/c"] {
            if rng.gen_bool(0.6) {
                let value = *["", "x", "y", "z"].choose(&mut rng).unwrap();
                labels.insert(key, value);
            }
        }
        let pairs: Vec<(&str, &str)> = labels.into_iter().collect();
        let name = format!("rand-{i:02}");
        create(&api, &name, ["c1", "c2"][i % 2], &pairs).await;
        if rng.gen_bool(0.4) {
            set_phase(&api, &name, Phase::Ready).await;
        }
    }
    let everything = api.get("/v1/instances?limit=1000").await;
    let instances: Vec<OpenClawInstance> =
        serde_json::from_value(everything.json["items"].clone()).unwrap();
    assert_eq!(instances.len(), 30);
    for round in 0..120 {
        let selection = Selection {
            labels: random_selector(&mut rng),
            fields: random_field_selector(&mut rng),
        };
        let expected: Vec<String> = instances
            .iter()
            .filter(|i| selection.matches(i))
            .map(|i| i.metadata.name.clone())
            .collect();
        let labels = selection.labels.to_string();
        let fields = selection.fields.to_string();
        let limit = rng.gen_range(1..=8);
        let found = all_pages(
            &api,
            &[("labelSelector", &labels), ("fieldSelector", &fields)],
            limit,
        )
        .await;
        assert_eq!(found, expected, "round {round}: {labels:?} {fields:?}");
    }
}

/// The support console's search goes through the same query as the selectors: an exact
/// customer id or the start of a name.
#[tokio::test]
async fn the_support_consoles_search_still_finds_customers_and_name_prefixes() {
    let api = spawn_api().await;
    create(&api, "alpha-one", "cust-a", &[]).await;
    create(&api, "alpha-two", "cust-b", &[]).await;
    create(&api, "bravo", "cust-a", &[]).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .post(format!("{}/support/login", api.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={READER}"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    for (search, shown, hidden) in [
        ("cust-a", &["alpha-one", "bravo"][..], &["alpha-two"][..]),
        ("alpha", &["alpha-one", "alpha-two"][..], &["bravo"][..]),
    ] {
        let page = api
            .send(
                Method::GET,
                &format!("/support/instances?q={search}"),
                None,
                None,
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{search}");
        for name in shown {
            let link = format!("/support/instances/{name}\"");
            assert!(page.text.contains(&link), "{search}: {name} missing");
        }
        for name in hidden {
            let link = format!("/support/instances/{name}\"");
            assert!(!page.text.contains(&link), "{search}: {name} shown");
        }
    }
}
