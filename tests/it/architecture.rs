//! The floors of `src/` (DESIGN.md's room table), checked by reading the source:
//!
//!     cargo test --test it architecture
//!
//! Each file of `src/` belongs to a room: the top-level folder or file it sits in (`src/oidc/…`
//! is `oidc`, `src/pipeline.rs` is `pipeline`). A room names another through `crate::x`,
//! `use crate::{x, …}`, `super::` climbing out of the room, or `passerelle::x` (in `main.rs`).
//! Comments and string literals are skipped. The rules:
//! - no cycle between rooms;
//! - only `app` (and `main.rs`) import `app`, and no file below `app` names `AppState`;
//! - `web` and `store` import `config` only; `config` imports no room;
//! - `oidc` and `saml` never import each other.
//!
//! On failure the test prints every broken rule and the whole room graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Exceptions a test may grant the rules (the real tree gets none).
struct Allowances {
    /// `(from, to)` room edges tolerated by every rule (and left out of the cycle search).
    edges: &'static [(&'static str, &'static str)],
    /// Rooms below `app` that may still name `AppState`.
    app_state_in: &'static [&'static str],
}

impl Allowances {
    const NONE: Allowances = Allowances {
        edges: &[],
        app_state_in: &[],
    };
}

/// Rooms a room may import at most (`None`: no limit beyond the other rules).
fn allowed_imports(room: &str) -> Option<&'static [&'static str]> {
    match room {
        "web" | "store" => Some(&["config"]),
        "config" => Some(&[]),
        _ => None,
    }
}

/// Rooms that are above `app` and may import it.
const ABOVE_APP: [&str; 2] = ["app", "main"];

#[test]
fn the_rooms_of_src_keep_their_floors() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    assert!(files.len() > 20, "found only {} files in src/", files.len());
    let rooms: BTreeSet<String> = files.iter().map(|(room, _, _)| room.clone()).collect();
    let mut graph = Graph::default();
    for (room, module, path) in &files {
        let text = std::fs::read_to_string(path).expect("readable source");
        let scan = scan(&text, module, &rooms);
        let at = path
            .strip_prefix(&src)
            .unwrap_or(path)
            .display()
            .to_string();
        for to in scan.rooms {
            if &to != room {
                graph.add(room, &to, &at);
            }
        }
        if scan.names_app_state {
            graph.app_state.insert(room.clone(), at);
        }
    }
    let problems = check(&graph, &Allowances::NONE);
    assert!(
        problems.is_empty(),
        "the rooms of src/ break their floors:\n  {}\n\nthe room graph (room -> rooms it names, with one file that does):\n{}",
        problems.join("\n  "),
        graph.render()
    );
}

/// The checker itself, on planted sources: each forbidden way of naming a room is seen, and
/// what is not an import (a comment, a string, `pub(super)`) is not.
#[test]
fn the_checker_sees_a_planted_forbidden_import() {
    let rooms: BTreeSet<String> = ["app", "config", "oidc", "saml", "web", "store", "login"]
        .map(String::from)
        .into();
    let module = |m: &str| m.split('/').map(String::from).collect::<Vec<_>>();
    let seen = |text: &str, m: &str| scan(text, &module(m), &rooms).rooms;

    assert_eq!(
        seen("use crate::saml::SamlIdp;", "oidc/token"),
        set(["saml"])
    );
    assert_eq!(
        seen(
            "use crate::{config::Config, web::{PageError}, store};",
            "login"
        ),
        set(["config", "web", "store"])
    );
    assert_eq!(seen("let x = crate::app::build();", "web"), set(["app"]));
    // `super::` that climbs out of the room names the room after it.
    assert_eq!(seen("use super::super::oidc::X;", "saml/http/sso"), set([]));
    assert_eq!(
        seen("use super::super::oidc::X;", "saml/sso"),
        set(["oidc"])
    );
    assert_eq!(seen("use super::app::AppState;", "web"), set(["app"]));
    // An inline `mod tests` is one level deeper: its `super::` stays in the room.
    assert_eq!(
        seen(
            "mod tests { use super::*; fn f() { super::helper(); } }",
            "web"
        ),
        set([])
    );
    // Not imports.
    assert_eq!(
        seen(
            "// crate::app::x\n/* crate::saml /* nested */ crate::app */ pub(super) fn f() { \"crate::app\"; r#\"crate::app\"#; let c = '\"'; }",
            "web"
        ),
        set([])
    );
    assert!(scan("fn f(s: AppState) {}", &module("oidc"), &rooms).names_app_state);
    assert!(!scan("// AppState\nfn f() {}", &module("oidc"), &rooms).names_app_state);

    let mut graph = Graph::default();
    graph.add("web", "oidc", "web/mod.rs");
    graph.add("oidc", "web", "oidc/mod.rs");
    graph.add("config", "login", "config/validate.rs");
    graph.add("store", "web", "store/mod.rs");
    graph.add("saml", "oidc", "saml/web.rs");
    graph.add("login", "app", "login/page.rs");
    graph
        .app_state
        .insert("oidc".into(), "oidc/token.rs".into());
    let problems = check(&graph, &Allowances::NONE).join("\n");
    for expected in [
        "cycle between rooms: oidc -> web -> oidc",
        "`web` may import only [config] but names `oidc` (web/mod.rs)",
        "`config` may import only [] but names `login` (config/validate.rs)",
        "`store` may import only [config] but names `web` (store/mod.rs)",
        "`saml` and `oidc` never import each other, but saml names oidc (saml/web.rs)",
        "only app and main.rs import `app`, but login does (login/page.rs)",
        "`AppState` is named below app, in oidc (oidc/token.rs)",
    ] {
        assert!(
            problems.contains(expected),
            "missing «{expected}» in:\n{problems}"
        );
    }
    let allowed = Allowances {
        edges: &[("web", "oidc")],
        app_state_in: &["oidc"],
    };
    let problems = check(&graph, &allowed).join("\n");
    assert!(!problems.contains("cycle"), "{problems}");
    assert!(!problems.contains("names `oidc`"), "{problems}");
    assert!(!problems.contains("AppState"), "{problems}");
}

fn set<const N: usize>(names: [&str; N]) -> BTreeSet<String> {
    names.into_iter().map(String::from).collect()
}

#[derive(Default)]
struct Graph {
    /// room -> room it names -> one file that does.
    edges: BTreeMap<String, BTreeMap<String, String>>,
    /// room -> one of its files that names `AppState`.
    app_state: BTreeMap<String, String>,
}

impl Graph {
    fn add(&mut self, from: &str, to: &str, file: &str) {
        self.edges
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_insert_with(|| file.to_string());
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (from, tos) in &self.edges {
            let list: Vec<String> = tos.iter().map(|(to, f)| format!("{to} ({f})")).collect();
            out.push_str(&format!("  {from} -> {}\n", list.join(", ")));
        }
        out
    }
}

fn check(graph: &Graph, allow: &Allowances) -> Vec<String> {
    let allowed = |from: &str, to: &str| allow.edges.iter().any(|&(f, t)| f == from && t == to);
    let mut problems = Vec::new();
    for (from, tos) in &graph.edges {
        for (to, file) in tos {
            if allowed(from, to) {
                continue;
            }
            if let Some(may) = allowed_imports(from) {
                if !may.contains(&to.as_str()) {
                    problems.push(format!(
                        "`{from}` may import only [{}] but names `{to}` ({file})",
                        may.join(", ")
                    ));
                }
            }
            if to == "app" && !ABOVE_APP.contains(&from.as_str()) {
                problems.push(format!(
                    "only app and main.rs import `app`, but {from} does ({file})"
                ));
            }
            let protocols = ["oidc", "saml"];
            if protocols.contains(&from.as_str()) && protocols.contains(&to.as_str()) {
                problems.push(format!(
                    "`saml` and `oidc` never import each other, but {from} names {to} ({file})"
                ));
            }
        }
    }
    for (room, file) in &graph.app_state {
        if !ABOVE_APP.contains(&room.as_str()) && !allow.app_state_in.contains(&room.as_str()) {
            problems.push(format!("`AppState` is named below app, in {room} ({file})"));
        }
    }
    let kept: BTreeMap<&str, Vec<&str>> = graph
        .edges
        .iter()
        .map(|(from, tos)| {
            let tos = tos
                .keys()
                .filter(|to| !allowed(from, to) && to.as_str() != "main")
                .map(String::as_str)
                .collect();
            (from.as_str(), tos)
        })
        .filter(|(from, _)| *from != "main")
        .collect();
    for cycle in cycles(&kept) {
        problems.push(format!("cycle between rooms: {}", cycle.join(" -> ")));
    }
    for &(from, to) in allow.edges {
        if !graph.edges.get(from).is_some_and(|t| t.contains_key(to)) {
            eprintln!("architecture: the allowance {from} -> {to} is no longer needed");
        }
    }
    problems
}

/// One cycle per strongly connected component of more than one room (Tarjan), written as a
/// closed path through it.
fn cycles<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    struct Tarjan<'g, 'a> {
        graph: &'g BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'_, 'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for &w in self.graph.get(v).map(Vec::as_slice).unwrap_or(&[]) {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.components.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for &v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    // A readable cycle inside each component: walk from its first room until one repeats.
    t.components
        .into_iter()
        .map(|component| {
            let inside: BTreeSet<&str> = component.iter().copied().collect();
            let start = *inside.iter().next().unwrap_or(&"");
            let mut path = vec![start];
            let mut at = start;
            loop {
                let next = graph[at]
                    .iter()
                    .copied()
                    .find(|w| inside.contains(w))
                    .unwrap_or(start);
                if let Some(i) = path.iter().position(|&p| p == next) {
                    let mut cycle = path[i..].to_vec();
                    cycle.push(next);
                    return cycle;
                }
                path.push(next);
                at = next;
            }
        })
        .collect()
}

/// Every `.rs` file under `src/` as (room, module path, file). `src/a/b.rs` and `src/a/b/mod.rs`
/// are module `a::b` of room `a`; `main.rs` is room `main`; `lib.rs` (the declarations) is left
/// out.
fn rust_files(src: &Path) -> Vec<(String, Vec<String>, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("readable src/")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(src, &mut paths);
    paths
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(src).ok()?.with_extension("");
            let mut module: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            match module.as_slice() {
                [only] if only == "lib" => None,
                [only] if only == "main" => Some(("main".to_string(), Vec::new(), path)),
                [room, ..] => Some((room.clone(), module, path)),
                [] => None,
            }
        })
        .collect()
}

struct Scan {
    rooms: BTreeSet<String>,
    names_app_state: bool,
}

/// The rooms `text` (the file of `module`) names, and whether it names `AppState`.
fn scan(text: &str, module: &[String], rooms: &BTreeSet<String>) -> Scan {
    let tokens = tokens(text);
    let mut found = BTreeSet::new();
    let mut names_app_state = false;
    // Inline `mod x { … }` blocks open at this point, with the brace depth they close at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let is = |i: usize, s: &str| tokens.get(i).is_some_and(|t| t == s);
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if is(i + 2, "{") => {
                inline.push((tokens[i + 1].clone(), depth));
            }
            "AppState" => names_app_state = true,
            "crate" | "passerelle" if is(i + 1, "::") => {
                if is(i + 2, "{") {
                    // `crate::{a, b::c, d}`: the first name of each item at depth one.
                    let mut j = i + 3;
                    let mut level = 1;
                    let mut expect_name = true;
                    while j < tokens.len() && level > 0 {
                        match tokens[j].as_str() {
                            "{" => level += 1,
                            "}" => level -= 1,
                            "," if level == 1 => expect_name = true,
                            name if level == 1 && expect_name => {
                                found.insert(name.to_string());
                                expect_name = false;
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                } else if let Some(name) = tokens.get(i + 2) {
                    found.insert(name.clone());
                }
            }
            "super" if is(i + 1, "::") && !is(i.wrapping_sub(1), "::") => {
                let mut here: Vec<String> = module.to_vec();
                here.extend(inline.iter().map(|(name, _)| name.clone()));
                let mut j = i;
                while is(j, "super") && is(j + 1, "::") {
                    here.pop();
                    j += 2;
                }
                if here.is_empty() {
                    if let Some(name) = tokens.get(j) {
                        found.insert(name.clone());
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Scan {
        rooms: found.into_iter().filter(|r| rooms.contains(r)).collect(),
        names_app_state,
    }
}

/// Identifiers, `::`, and single punctuation characters; comments, strings and character
/// literals dropped (lifetimes kept apart from character literals).
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut level = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    level += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    level -= 1;
                    i += 2;
                    if level == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, body) = raw_string_start(&chars, i).unwrap_or((0, i));
            i = body;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1; // a lifetime: its name follows as an identifier
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && at(i + 1) == ':' {
            out.push("::".to_string());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// At `r"`, `r#"`, `br"`, `br#"`: the number of `#` and where the body starts.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    // Only at the start of a token, not inside an identifier such as `bar`.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j + 1))
}
