//! The workspace's shape, checked: the production binary carries no simulator and no test kit,
//! every crate depends only on the layers below it (`docs/architecture.md`), and no two modules
//! of a crate import each other, directly or through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace crates each crate may depend on (normal dependencies), as in
/// `docs/architecture.md`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("openclaws-model", &[]),
    ("openclaws-fly", &["openclaws-model"]),
    ("openclaws-dns", &["openclaws-model"]),
    ("openclaws-gateway", &["openclaws-model"]),
    ("openclaws-store", &["openclaws-model"]),
    (
        "openclaws-engine",
        &[
            "openclaws-model",
            "openclaws-fly",
            "openclaws-dns",
            "openclaws-gateway",
            "openclaws-store",
        ],
    ),
    (
        "openclaws-telemetry",
        &[
            "openclaws-model",
            "openclaws-fly",
            "openclaws-store",
            "openclaws-engine",
        ],
    ),
    (
        "openclaws-api",
        &[
            "openclaws-model",
            "openclaws-gateway",
            "openclaws-store",
            "openclaws-engine",
            "openclaws-telemetry",
        ],
    ),
    (
        "openclaws-server",
        &[
            "openclaws-model",
            "openclaws-fly",
            "openclaws-dns",
            "openclaws-gateway",
            "openclaws-store",
            "openclaws-engine",
            "openclaws-telemetry",
            "openclaws-api",
        ],
    ),
    (
        "openclaws-controller",
        &[
            "openclaws-model",
            "openclaws-gateway",
            "openclaws-store",
            "openclaws-telemetry",
            "openclaws-api",
            "openclaws-server",
        ],
    ),
    ("fly-sim", &[]),
    (
        "openclaws-testkit",
        &[
            "openclaws-model",
            "openclaws-fly",
            "openclaws-dns",
            "openclaws-gateway",
            "openclaws-store",
            "openclaws-engine",
            "openclaws-telemetry",
            "openclaws-api",
            "openclaws-server",
            "fly-sim",
        ],
    ),
];

/// Crates that exist for tests and development only.
const TEST_DOUBLES: &[&str] = &["fly-sim", "openclaws-testkit"];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo metadata` of the workspace: package names by id, and each package's normal
/// dependencies (by id).
struct Graph {
    names: BTreeMap<String, String>,
    normal: BTreeMap<String, Vec<String>>,
    members: BTreeSet<String>,
}

fn graph() -> Graph {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let members = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    let normal = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap().to_owned())
                .collect();
            (node["id"].as_str().unwrap().to_owned(), deps)
        })
        .collect();
    Graph {
        names,
        normal,
        members,
    }
}

impl Graph {
    fn id_of(&self, name: &str) -> &str {
        self.names
            .iter()
            .find(|(id, n)| n.as_str() == name && self.members.contains(*id))
            .map(|(id, _)| id.as_str())
            .unwrap_or_else(|| panic!("no workspace crate {name}"))
    }

    /// Every package the given one links, by name.
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.id_of(name).to_owned()];
        while let Some(id) = todo.pop() {
            if seen.insert(id.clone()) {
                todo.extend(self.normal.get(&id).cloned().unwrap_or_default());
            }
        }
        seen.iter().map(|id| self.names[id].clone()).collect()
    }
}

#[test]
fn the_production_binary_links_no_simulator_and_no_test_kit() {
    let linked = graph().closure("openclaws-controller");
    for double in TEST_DOUBLES {
        assert!(
            !linked.contains(*double),
            "openclaws-controller links {double}"
        );
    }
    assert!(
        linked.contains("openclaws-server"),
        "the closure is the production binary's: {linked:?}"
    );
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let graph = graph();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut members: Vec<&str> = graph
        .members
        .iter()
        .map(|id| graph.names[id].as_str())
        .collect();
    members.sort();
    for name in &members {
        let Some(may) = allowed.get(name) else {
            panic!("{name} is not in the architecture's table (tests/architecture, docs/architecture.md)");
        };
        let id = graph.id_of(name);
        for dep in &graph.normal[id] {
            if !graph.members.contains(dep) {
                continue;
            }
            let dep = graph.names[dep].as_str();
            assert!(
                may.contains(&dep),
                "{name} depends on {dep}, which its layer may not (allowed: {may:?})"
            );
        }
    }
}

/// Every `.rs` file of a crate's `src/` (binaries under `src/bin` excepted) by module path.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path != src.join("bin") {
                    dirs.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("lib" | "main" | "mod")
            ) {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The module paths a file names through `crate::…` and `super::…` (including grouped
/// imports), outside comments and test modules.
fn references(module: &[String], text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let path = regex::Regex::new(
        r"\b(crate|(?:super::)+)((?:::)?(?:[a-z_][a-z0-9_]*::)*)(?:\{([^}]*)\}|([a-z_][a-z0-9_]*))",
    )
    .unwrap();
    let name = regex::Regex::new(r"\b[a-z_][a-z0-9_]*\b").unwrap();
    let mut out = Vec::new();
    for c in path.captures_iter(&code) {
        let head = &c[1];
        let mut base: Vec<String> = if head == "crate" {
            Vec::new()
        } else {
            let ups = head.matches("super").count();
            module[..module.len().saturating_sub(ups)].to_vec()
        };
        base.extend(
            c[2].split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        match (c.get(3), c.get(4)) {
            (Some(group), _) => {
                // `use super::state::{AppRef, World}` names the module `state` itself.
                out.push(base.clone());
                for n in name.find_iter(group.as_str()) {
                    let mut p = base.clone();
                    p.push(n.as_str().to_owned());
                    out.push(p);
                }
            }
            (None, Some(single)) => {
                base.push(single.as_str().to_owned());
                out.push(base);
            }
            _ => {}
        }
    }
    out
}

/// Sibling-module edges of one crate: `a → b` when something in `a` names something in `b`,
/// both children of their closest common parent.
fn sibling_edges(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = modules(src);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, path) in &mods {
        let text = std::fs::read_to_string(path).unwrap();
        for reference in references(module, &text) {
            let Some(target) = (1..=reference.len())
                .rev()
                .map(|k| reference[..k].to_vec())
                .find(|p| mods.contains_key(p))
            else {
                continue;
            };
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common >= module.len() || common >= target.len() {
                continue;
            }
            edges
                .entry(module[..=common].to_vec())
                .or_default()
                .insert(target[..=common].to_vec());
        }
    }
    edges
}

/// A cycle in `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            return Some(path[at..].iter().map(|p| p.join("::")).collect());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let root = workspace_root();
    let mut sources = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        sources.push(entry.path().join("src"));
    }
    let mut cycles = Vec::new();
    for src in sources {
        if let Some(cycle) = find_cycle(&sibling_edges(&src)) {
            cycles.push(format!("{}: {}", src.display(), cycle.join(" → ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let a = vec!["a".to_owned()];
    let b = vec!["b".to_owned()];
    let module = vec!["a".to_owned()];
    let refs = references(&module, "use super::{b, c};\nuse crate::b::Thing;\n");
    assert!(refs.contains(&vec!["b".to_owned()]), "{refs:?}");
    let grouped = references(&module, "use crate::d::{Thing, Other};\n");
    assert!(grouped.contains(&vec!["d".to_owned()]), "{grouped:?}");
    let edges = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone()])),
    ]);
    assert!(find_cycle(&edges).is_some());
    let one_way = BTreeMap::from([(a, BTreeSet::from([b]))]);
    assert_eq!(find_cycle(&one_way), None);
}
