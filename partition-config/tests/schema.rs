//! The JSON Schema against the corpus: every valid layout (corpus and
//! examples) satisfies `flotilla schema`, and the schema refuses layouts
//! whose shape is wrong (unknown keys, bad enums, out-of-range integers,
//! groups with too few members). A small validator for the keywords the
//! schema uses (patterns aside: `flotilla check` is the judge of text).

use std::path::Path;

use serde_json::{Map, Number, Value};
use toml::de::{DeTable, DeValue};

fn to_json(v: &DeValue<'_>) -> Value {
    match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or(Value::Null, |n| Value::Number(Number::from(n))),
        DeValue::Float(f) => Value::String(f.as_str().to_owned()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(items.iter().map(|i| to_json(i.get_ref())).collect()),
        DeValue::Table(t) => table_json(t),
    }
}

fn table_json(t: &DeTable<'_>) -> Value {
    let mut m = Map::new();
    for (k, v) in t.iter() {
        m.insert(k.get_ref().to_string(), to_json(v.get_ref()));
    }
    Value::Object(m)
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        other => panic!("type {other} not handled"),
    }
}

/// Errors of `v` against `s`, as JSON-pointer-ish paths.
fn check(s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let mut fail = |why: String| errors.push(format!("{at}: {why}"));
    match s.get("type") {
        Some(Value::String(t)) if !type_ok(t, v) => return fail(format!("not {t}")),
        Some(Value::Array(ts)) if !ts.iter().any(|t| type_ok(t.as_str().unwrap_or(""), v)) => {
            return fail(format!("not any of {ts:?}"))
        }
        _ => {}
    }
    if let Some(Value::Array(choices)) = s.get("enum") {
        if !choices.contains(v) {
            fail(format!("{v} not in {choices:?}"));
        }
    }
    if let Some(n) = v.as_i64() {
        if s.get("minimum")
            .and_then(Value::as_i64)
            .is_some_and(|m| n < m)
        {
            fail(format!("{n} below the minimum"));
        }
        if s.get("maximum")
            .and_then(Value::as_i64)
            .is_some_and(|m| n > m)
        {
            fail(format!("{n} above the maximum"));
        }
    }
    if let Some(items) = v.as_array() {
        let len = items.len() as u64;
        if s.get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            fail(format!("{len} items, fewer than minItems"));
        }
        if s.get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            fail(format!("{len} items, more than maxItems"));
        }
        if s.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, a) in items.iter().enumerate() {
                if items[..i].contains(a) {
                    fail(format!("{a} repeated"));
                }
            }
        }
        if let Some(item) = s.get("items") {
            for (i, x) in items.iter().enumerate() {
                check(item, x, &format!("{at}/{i}"), errors);
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        if s.get("maxProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| obj.len() as u64 > m)
        {
            errors.push(format!("{at}: too many properties"));
        }
        if let Some(Value::Array(required)) = s.get("required") {
            for r in required {
                if !obj.contains_key(r.as_str().unwrap_or("")) {
                    errors.push(format!("{at}: {r} required"));
                }
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(ps, x, &format!("{at}/{k}"), errors),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{at}: unknown key {k}")),
                    Some(extra @ Value::Object(_)) => check(extra, x, &format!("{at}/{k}"), errors),
                    _ => {}
                },
            }
        }
    }
    if let Some(Value::Array(options)) = s.get("oneOf") {
        let passing = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                check(o, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            errors.push(format!("{at}: {passing} of oneOf match"));
        }
    }
    if let Some(Value::Array(options)) = s.get("anyOf") {
        let any = options.iter().any(|o| {
            let mut e = Vec::new();
            check(o, v, at, &mut e);
            e.is_empty()
        });
        if !any {
            errors.push(format!("{at}: no anyOf matches"));
        }
    }
    if let Some(not) = s.get("not") {
        let mut e = Vec::new();
        check(not, v, at, &mut e);
        if e.is_empty() {
            errors.push(format!("{at}: matches `not`"));
        }
    }
}

fn schema() -> Value {
    serde_json::from_str(&partition_config::schema()).expect("the schema is JSON")
}

fn errors_of(text: &str) -> Vec<String> {
    let root = DeTable::parse(text).expect("TOML");
    let mut errors = Vec::new();
    check(&schema(), &table_json(root.get_ref()), "", &mut errors);
    errors
}

#[test]
fn every_valid_layout_satisfies_the_schema() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for dir in ["tests/corpus/valid", "../examples"] {
        for entry in std::fs::read_dir(crate_dir.join(dir)).expect("directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let errors = errors_of(&text);
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 10, "{seen}");
}

#[test]
fn the_schema_refuses_wrong_shapes() {
    let base =
        "[machine]\ncpus = 2\nmemory = \"256 MiB\"\n\n[[partition]]\nname = \"a\"\ncpu = 0\n\
                memory = \"16 MiB\"\nworkload = \"hello\"\n";
    assert!(errors_of(base).is_empty(), "{:?}", errors_of(base));
    for (extra, expected) in [
        ("on_fault = \"restrat\"\n", "/partition/0/on_fault"),
        ("max_restarts = 17\n", "/partition/0/max_restarts"),
        ("max_restarts = 0\n", "/partition/0/max_restarts"),
        (
            "\n[[group]]\nname = \"g\"\nmembers = [\"a\"]\n",
            "/group/0/members",
        ),
        (
            "\n[[group]]\nname = \"g\"\nmembers = [\"a\", \"a\"]\n",
            "/group/0/members",
        ),
        (
            "\n[[group]]\nname = \"g\"\nmember = [\"a\", \"b\"]\n",
            "/group/0",
        ),
        ("\n[[group]]\nmembers = [\"a\", \"b\"]\n", "/group/0"),
    ] {
        let errors = errors_of(&format!("{base}{extra}"));
        assert!(
            partition_config::parse_str(&format!("{base}{extra}"), "x.toml").is_err(),
            "{extra:?}: the schema refuses it, so must check"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("{expected}:"))),
            "{extra:?}: {errors:?}"
        );
    }
}

/// `flotilla check` and the schema agree on the whole corpus: whatever
/// check accepts satisfies the schema, whatever the schema refuses check
/// refuses (the schema cannot see everything check does, e.g. two
/// partitions on one core, so the converse does not hold).
#[test]
fn check_and_the_schema_agree_on_the_corpus() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut refused_by_both = 0;
    for dir in ["tests/corpus/valid", "tests/corpus/invalid", "../examples"] {
        for entry in std::fs::read_dir(crate_dir.join(dir)).expect("directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let Ok(root) = DeTable::parse(&text) else {
                continue; // not TOML: nothing for the schema to judge
            };
            let mut errors = Vec::new();
            check(&schema(), &table_json(root.get_ref()), "", &mut errors);
            let checked = partition_config::parse_str(&text, &path.display().to_string());
            if checked.is_ok() {
                assert!(
                    errors.is_empty(),
                    "check accepts {}, the schema does not: {errors:#?}",
                    path.display()
                );
            }
            if !errors.is_empty() {
                assert!(
                    checked.is_err(),
                    "the schema refuses {}, check accepts it: {errors:#?}",
                    path.display()
                );
                refused_by_both += 1;
            }
        }
    }
    assert!(refused_by_both >= 5, "{refused_by_both}");
}
