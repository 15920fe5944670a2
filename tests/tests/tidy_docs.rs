//! Tidy check of the contract index: every contract `docs/README.md` lists
//! has the same version in three places: the index's `version` column, the
//! heading of the contract's own page, and the version constant the index
//! names (read from its owner crate's source, so crates the tests do not link,
//! such as the hypervisor, are covered too). A contract bumped in code but
//! not in its docs, or the other way round, fails here.
//!
//! Also: `CONTRIBUTING.md` names, for each rule, the test or file that
//! enforces it; every path it names must exist and every test it names must
//! be defined in the file it gives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Contracts the index may list without a version constant, and why.
const WITHOUT_CONSTANT: &[(&str, &str)] = &[(
    "Console markers",
    "abi::console has no version constant yet; the page heading is the only record",
)];

/// One row of the contract table in `docs/README.md`.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    /// The contract's name (first column).
    contract: String,
    /// Its page, relative to `docs/`.
    page: String,
    /// The version the index states.
    version: u64,
    /// The constant named beside the version (`abi::boot::BOOT_PROTOCOL_VERSION`
    /// or, relative to the owner, `FORMAT_VERSION`).
    constant: Option<String>,
    /// The owner's module path (`partition-config::manifest`).
    owner: String,
}

/// The text between the first pair of backticks in `cell`.
fn backticked(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let len = cell[start..].find('`')?;
    Some(&cell[start..start + len])
}

/// The leading decimal number of `s` (after whitespace).
fn leading_number(s: &str) -> Option<u64> {
    let s = s.trim_start();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

/// The rows of the contract table: the first Markdown table whose header
/// starts `| contract | page | version | owner`.
fn parse_index(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().skip_while(|l| {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        cells.get(1..5) != Some(&["contract", "page", "version", "owner (code)"][..])
    });
    lines
        .next()
        .ok_or("no `| contract | page | version | owner (code) |` table")?;
    let mut rows = Vec::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, contract, page, version, owner, ..] = cells[..] else {
            return Err(format!("row with too few cells: {line}"));
        };
        let page = page
            .split_once("](")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(target, _)| target.to_owned())
            .ok_or_else(|| format!("{contract}: page cell `{page}` is not a link"))?;
        let number = leading_number(version)
            .ok_or_else(|| format!("{contract}: no version in `{version}`"))?;
        let owner = backticked(owner)
            .ok_or_else(|| format!("{contract}: owner cell `{owner}` names no module"))?;
        rows.push(Row {
            contract: contract.to_owned(),
            page,
            version: number,
            constant: backticked(version).map(str::to_owned),
            owner: owner.to_owned(),
        });
    }
    if rows.is_empty() {
        return Err("the contract table has no rows".into());
    }
    Ok(rows)
}

/// The version a page's `#` heading states: the number after `version ` or
/// a word `vN` ("# Run report — version 2", "# Channels — channel layout v3").
fn page_version(page: &str) -> Option<u64> {
    let heading = page.lines().find(|l| l.starts_with("# "))?;
    let lower = heading.to_lowercase();
    if let Some(i) = lower.find("version ") {
        return leading_number(&lower[i + "version ".len()..]);
    }
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|w| w.strip_prefix('v').and_then(|n| n.parse().ok()))
}

/// Parses an integer literal as Rust writes it (`2`, `0x10`, `1_000`).
fn int_literal(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic() && c != 'x');
    match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => digits.parse().ok(),
    }
}

/// The values of every `const NAME: T = V;` in `source` (one-line items).
fn const_values(source: &str, name: &str) -> Vec<u64> {
    let needle = format!("const {name}:");
    source
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with(&needle) || l.starts_with("pub") && l.contains(&format!(" {needle}"))
        })
        .filter_map(|l| {
            let value = l.split_once('=')?.1.split_once(';')?.0;
            int_literal(value)
        })
        .collect()
}

/// The value of the constant a row names, looked up in `sources` (path
/// relative to the workspace root → text). `abi::bundle::VERSION` is
/// searched in `abi/src/bundle.rs` or `abi/src/bundle/`; a bare name in the
/// owner's module.
fn constant_value(row: &Row, sources: &BTreeMap<String, String>) -> Result<u64, String> {
    let constant = row
        .constant
        .as_deref()
        .ok_or_else(|| format!("{}: the index names no version constant", row.contract))?;
    let path = if constant.contains("::") {
        constant.to_owned()
    } else {
        format!("{}::{constant}", row.owner)
    };
    let mut segments: Vec<&str> = path.split("::").collect();
    let name = segments.pop().unwrap_or_default();
    let (krate, modules) = segments
        .split_first()
        .ok_or_else(|| format!("{}: `{path}` names no crate", row.contract))?;
    let base = format!("{}/src/{}", krate.replace('_', "-"), modules.join("/"));
    let base = base.trim_end_matches('/');
    let values: Vec<u64> = sources
        .iter()
        .filter(|(file, _)| {
            modules.is_empty() && file.starts_with(&format!("{base}/"))
                || !modules.is_empty()
                    && (**file == format!("{base}.rs") || file.starts_with(&format!("{base}/")))
        })
        .flat_map(|(_, text)| const_values(text, name))
        .collect();
    match values[..] {
        [v] => Ok(v),
        [] => Err(format!("{}: no `const {name}` under {base}", row.contract)),
        _ => Err(format!(
            "{}: `const {name}` defined {} times under {base}",
            row.contract,
            values.len()
        )),
    }
}

/// Every disagreement between the index, the pages and the constants.
/// `files` maps paths relative to the workspace root to their text.
fn mismatches(files: &BTreeMap<String, String>) -> Vec<String> {
    let Some(index) = files.get("docs/README.md") else {
        return vec!["docs/README.md is missing".into()];
    };
    let rows = match parse_index(index) {
        Ok(rows) => rows,
        Err(e) => return vec![format!("docs/README.md: {e}")],
    };
    let mut out = Vec::new();
    for row in &rows {
        let page = format!("docs/{}", row.page);
        match files.get(&page).map(|p| page_version(p)) {
            None => out.push(format!("{}: {page} does not exist", row.contract)),
            Some(None) => out.push(format!(
                "{}: {page}'s heading states no version",
                row.contract
            )),
            Some(Some(v)) if v != row.version => out.push(format!(
                "{}: docs/README.md says version {}, {page} says {v}",
                row.contract, row.version
            )),
            Some(Some(_)) => {}
        }
        let exempt = WITHOUT_CONSTANT.iter().any(|(c, _)| *c == row.contract);
        match (&row.constant, exempt) {
            (None, true) => {}
            (Some(_), true) => out.push(format!(
                "{}: now has a constant; take it off WITHOUT_CONSTANT",
                row.contract
            )),
            (_, false) => match constant_value(row, files) {
                Ok(v) if v != row.version => out.push(format!(
                    "{}: docs/README.md says version {}, `{}` is {v}",
                    row.contract,
                    row.version,
                    row.constant.as_deref().unwrap_or_default()
                )),
                Ok(_) => {}
                Err(e) => out.push(e),
            },
        }
    }
    out
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// Adds every `.md` and `.rs` file under `dir` (outside build output) to `out`.
fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && name != "fuzz" && !name.starts_with('.') {
                collect(root, &path, out);
            }
        } else if name.ends_with(".rs") || name.ends_with(".md") {
            let rel = path.strip_prefix(root).expect("under the root");
            let text = std::fs::read_to_string(&path).expect("readable source");
            out.insert(rel.to_string_lossy().replace('\\', "/"), text);
        }
    }
}

fn tree() -> BTreeMap<String, String> {
    let root = workspace_root();
    let mut files = BTreeMap::new();
    collect(&root, &root, &mut files);
    files
}

/// The version `docs/README.md` states for `contract`.
fn index_version(contract: &str) -> u64 {
    let files = tree();
    let rows = parse_index(&files["docs/README.md"]).expect("the index parses");
    rows.iter()
        .find(|r| r.contract == contract)
        .unwrap_or_else(|| panic!("docs/README.md lists no `{contract}`"))
        .version
}

#[test]
fn contract_versions_agree_with_their_pages_and_constants() {
    let problems = mismatches(&tree());
    assert!(
        problems.is_empty(),
        "docs/README.md disagrees with the tree (bump the page, the index and the constant in the same commit):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_index_lists_every_contract_page() {
    let files = tree();
    let rows = parse_index(&files["docs/README.md"]).expect("the index parses");
    let mut listed: Vec<&str> = rows.iter().map(|r| r.page.as_str()).collect();
    listed.sort_unstable();
    // Pages that are not versioned contracts.
    let others = [
        "README.md",
        "fuzzing.md",
        "guest-sdk.md",
        "linux.md",
        "threat-model.md",
    ];
    let pages: Vec<&str> = files
        .keys()
        .filter_map(|k| k.strip_prefix("docs/"))
        .filter(|p| !p.contains('/') && !others.contains(p))
        .collect();
    assert_eq!(
        listed, pages,
        "every contract page in docs/ has one index row"
    );
}

/// The readers the tests link check the versions they accept against the
/// index, beside the owners' constants above.
#[test]
fn readers_expect_the_indexed_versions() {
    assert_eq!(tools::report::REPORT_VERSION, index_version("Run report"));
    assert_eq!(
        u64::from(partition_config::manifest::FORMAT_VERSION),
        index_version("Manifest")
    );
    assert_eq!(
        u64::from(partition_config::LAYOUT_FORMAT_VERSION),
        index_version("Layout format (TOML)")
    );
    assert_eq!(
        u64::from(abi::boot::BOOT_PROTOCOL_VERSION),
        index_version("Guest boot protocol")
    );
    assert_eq!(
        abi::hypercall::HYPERCALL_VERSION,
        index_version("Hypercalls")
    );
    assert_eq!(
        u64::from(abi::bundle::VERSION),
        index_version("Boot bundle")
    );
}

// The checker itself, on synthetic trees.

const INDEX: &str = "# Contracts\n\n\
| contract | page | version | owner (code) | readers |\n\
|---|---|---|---|---|\n\
| Widget | [widget.md](widget.md) | 3 (`gadget::wire::WIDGET_VERSION`) | `gadget::wire` | all |\n\
| Frob | [frob.md](frob.md) | 1 (`FROB_VERSION`) | `frob-crate::codec` | all |\n\
| Console markers | [console.md](console.md) | 2 | `abi::console` | tools |\n\
\nText after the table.\n";

fn synthetic(widget_code: u64, widget_page: u64) -> BTreeMap<String, String> {
    [
        ("docs/README.md", INDEX.to_owned()),
        (
            "docs/widget.md",
            format!("# Widgets — version {widget_page}\n"),
        ),
        ("docs/frob.md", "# Frob (format v1)\n".to_owned()),
        (
            "docs/console.md",
            "# Console markers — version 2\n".to_owned(),
        ),
        (
            "gadget/src/wire.rs",
            format!("//! x\npub const WIDGET_VERSION: u32 = {widget_code};\n"),
        ),
        (
            "gadget/src/other.rs",
            "pub const WIDGET_VERSION: u32 = 9;\n".to_owned(),
        ),
        (
            "frob-crate/src/codec/mod.rs",
            "pub(crate) const FROB_VERSION: u16 = 0x1;\n".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[test]
fn index_parser_reads_rows() {
    let rows = parse_index(INDEX).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        Row {
            contract: "Widget".into(),
            page: "widget.md".into(),
            version: 3,
            constant: Some("gadget::wire::WIDGET_VERSION".into()),
            owner: "gadget::wire".into(),
        }
    );
    assert_eq!(rows[2].constant, None);
    assert!(parse_index("# no table here\n").is_err());
}

#[test]
fn page_headings_state_versions() {
    assert_eq!(page_version("# Run report — version 2\n"), Some(2));
    assert_eq!(page_version("# Guest boot protocol (version 1)"), Some(1));
    assert_eq!(
        page_version("# Channels — channel layout v3\n## v2"),
        Some(3)
    );
    assert_eq!(page_version("# Fuzzing\n"), None);
}

#[test]
fn checker_accepts_an_agreeing_tree() {
    assert_eq!(mismatches(&synthetic(3, 3)), Vec::<String>::new());
}

#[test]
fn checker_catches_a_constant_bumped_without_the_docs() {
    let problems = mismatches(&synthetic(4, 3));
    assert_eq!(
        problems,
        ["Widget: docs/README.md says version 3, `gadget::wire::WIDGET_VERSION` is 4"]
    );
}

#[test]
fn checker_catches_a_page_bumped_without_the_index() {
    let problems = mismatches(&synthetic(3, 4));
    assert_eq!(
        problems,
        ["Widget: docs/README.md says version 3, docs/widget.md says 4"]
    );
}

#[test]
fn checker_catches_a_missing_or_doubled_constant() {
    let mut files = synthetic(3, 3);
    files.remove("frob-crate/src/codec/mod.rs");
    assert_eq!(
        mismatches(&files),
        ["Frob: no `const FROB_VERSION` under frob-crate/src/codec"]
    );
    let mut files = synthetic(3, 3);
    files.insert(
        "frob-crate/src/codec/v1.rs".into(),
        "const FROB_VERSION: u16 = 1;\n".into(),
    );
    assert_eq!(
        mismatches(&files),
        ["Frob: `const FROB_VERSION` defined 2 times under frob-crate/src/codec"]
    );
}

#[test]
fn checker_requires_a_constant_outside_the_exemptions() {
    let files: BTreeMap<String, String> = synthetic(3, 3)
        .into_iter()
        .map(|(k, v)| {
            let v = v.replace(" (`FROB_VERSION`)", "");
            (k, v)
        })
        .collect();
    assert_eq!(
        mismatches(&files),
        ["Frob: the index names no version constant"]
    );
}

/// The code spans of a Markdown text outside fenced blocks, with the text
/// between consecutive spans: `(span, text after it)`.
fn code_spans(text: &str) -> Vec<(String, String)> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let pieces: Vec<&str> = prose.split('`').collect();
    (1..pieces.len())
        .step_by(2)
        .map(|i| {
            let after = pieces.get(i + 1).copied().unwrap_or_default();
            (pieces[i].to_owned(), after.to_owned())
        })
        .collect()
}

/// What a contributors' guide cites: the paths it names (spans that look
/// like a file or folder of the tree) and the tests it names ("`name` in
/// `path.rs`").
fn citations(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let spans = code_spans(text);
    let is_path = |s: &str| {
        s.contains('/')
            && !s.contains(char::is_whitespace)
            && !s.contains(['*', ':', '('])
            && [".rs", ".md", ".sh", ".toml", "/"]
                .iter()
                .any(|end| s.ends_with(end))
    };
    let paths = spans
        .iter()
        .map(|(s, _)| s.clone())
        .filter(|s| is_path(s))
        .collect();
    let tests = spans
        .windows(2)
        .filter(|w| {
            let (name, between) = &w[0];
            between.split_whitespace().eq(["in"])
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && w[1].0.ends_with(".rs")
        })
        .map(|w| (w[0].0.clone(), w[1].0.clone()))
        .collect();
    (paths, tests)
}

#[test]
fn citation_parser_finds_paths_and_tests() {
    let text = "Rule. *Checked by* `no_static_mut` in\n  `tests/tests/tidy.rs`.\n\
        See `docs/README.md`, `hypervisor/src/arch/` and `cargo test -p x`.\n\
        ```sh\nignored `a/b.rs`\n```\n`u32::try_from(n)` `*/x.rs`\n";
    let (paths, tests) = citations(text);
    assert_eq!(
        paths,
        [
            "tests/tests/tidy.rs",
            "docs/README.md",
            "hypervisor/src/arch/"
        ]
    );
    assert_eq!(
        tests,
        [("no_static_mut".to_owned(), "tests/tests/tidy.rs".to_owned())]
    );
}

/// CONTRIBUTING.md points at the checks that enforce each rule: every file
/// it names exists and every test it names is defined where it says.
#[test]
fn contributing_cites_real_files_and_tests() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("CONTRIBUTING.md")).expect("CONTRIBUTING.md");
    let (paths, tests) = citations(&text);
    assert!(
        paths.len() >= 10 && tests.len() >= 3,
        "the guide cites its checks"
    );
    let missing: Vec<&String> = paths.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "CONTRIBUTING.md names missing paths: {missing:?}"
    );
    for (name, file) in &tests {
        let source = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(
            source.contains(&format!("fn {name}(")),
            "CONTRIBUTING.md says `{name}` is in {file}, which has no such test"
        );
    }
}
