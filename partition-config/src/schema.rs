//! The JSON Schema of the layout format (for editors and `flotilla schema`).
//!
//! It is generated from the same limits, key lists and workload catalog the
//! front end checks against, so it cannot drift from them. The schema
//! describes the shape; whole-system rules (unique names and cores, memory
//! budget, channel endpoints) are only checked by `flotilla check`.

use serde_json::{json, Map, Value};

use abi::ports::PLATFORM_PORTS;

use crate::catalog::{ArgKind, BUILTIN_KERNEL, GUEST_KERNEL_WORKLOADS};
use crate::front::{CHANNEL_KEYS, GROUP_KEYS, MACHINE_KEYS, PARTITION_KEYS, TOP_KEYS};
use crate::limits::{
    CMDLINE_MAX_LEN, DEFAULT_MAX_RESTARTS, MAX_ARGS, MAX_CHANNELS, MAX_CPUS, MAX_GROUPS,
    MAX_GROUP_MEMBERS, MAX_PARTITIONS, MAX_PORT_RANGES_PER_PARTITION, MAX_RESTARTS, MAX_SLOTS,
    MAX_TIMEOUT_SECS, MIN_GROUP_MEMBERS, MIN_SLOTS, NAME_MAX_LEN,
};

fn size(description: &str) -> Value {
    json!({
        "description": description,
        "oneOf": [
            { "type": "integer", "minimum": 0, "description": "bytes" },
            { "type": "string", "pattern": "^\\s*[0-9]+\\s*(B|KiB|MiB|GiB)?\\s*$",
              "examples": ["64 KiB", "16 MiB", "1 GiB"] }
        ]
    })
}

fn partition_properties() -> Value {
    let mut workloads = Vec::new();
    for w in GUEST_KERNEL_WORKLOADS {
        workloads.push(json!(w.name));
    }
    let compat: Vec<&str> = crate::layout::Compat::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    json!({
        "name": {
            "type": "string",
            "pattern": format!("^[a-z][a-z0-9-]{{0,{}}}$", NAME_MAX_LEN - 1),
            "description": "unique partition name"
        },
        "cpu": {
            "type": "integer", "minimum": 0, "maximum": MAX_CPUS - 1,
            "description": "the core this partition owns (below machine.cpus, used once)"
        },
        "memory": size("RAM of the partition: non-zero, a multiple of 2 MiB"),
        "base": size("optional explicit host-physical base (2 MiB aligned, at least 64 MiB)"),
        "kernel": {
            "oneOf": [
                {
                    "type": "string",
                    "description": "\"guest-kernel\" (built in) or a path to a PVH-bootable ELF, relative to the layout file"
                },
                {
                    "type": "object",
                    "description": "a workload crate, which flotilla builds: { crate = \"DIR\" }, relative to the layout file",
                    "properties": {
                        "crate": { "type": "string", "description": "the directory of the crate's Cargo.toml" }
                    },
                    "required": ["crate"],
                    "additionalProperties": false
                }
            ],
            "default": BUILTIN_KERNEL,
            "description": "the partition's kernel: built in, an ELF by path, or a workload crate"
        },
        "workload": {
            "type": "string",
            "description": "a workload of the kernel",
            "examples": workloads
        },
        "args": {
            "type": "object",
            "maxProperties": MAX_ARGS,
            "additionalProperties": { "type": ["integer", "boolean", "string"] },
            "description": "the workload's arguments (type-checked for the built-in kernel)"
        },
        "ports": ports_schema(),
        "on_fault": {
            "enum": ["stop", "restart"], "default": "stop",
            "description": "what happens when the partition faults: it stays stopped, or it is reloaded and run again (this hypervisor version refuses \"restart\" at boot)"
        },
        "max_restarts": {
            "type": "integer", "minimum": 1, "maximum": MAX_RESTARTS, "default": DEFAULT_MAX_RESTARTS,
            "description": "most restarts under on_fault = \"restart\" (ignored, with a warning, under \"stop\")"
        },
        "compat": {
            "enum": compat, "default": "none",
            "description": "the platform of a stock kernel given by path: \"linux\" adds ACPI tables, a virtual COM1, floating ports, #GP for unknown MSRs and a read-only RTC (docs/linux.md)"
        },
        "cmdline": {
            "type": "string", "maxLength": CMDLINE_MAX_LEN, "pattern": "^[ -~]*$",
            "description": "the kernel command line (printable ASCII), for a kernel given by path; the hypervisor appends flotilla-block=<gpa>"
        },
        "initrd": {
            "type": "string",
            "description": "an initramfs file, relative to the layout file, handed to a kernel given by path as PVH module 0"
        }
    })
}

/// The `ports` array: strings like `"0x2f8-0x2ff"` or single integers. The
/// platform-owned ranges (`abi::ports::PLATFORM_PORTS`) are excluded from
/// integers by the schema itself; for strings (ranges) JSON Schema cannot
/// express it, so the description lists them and `flotilla check` refuses
/// them (`platform-port`).
fn ports_schema() -> Value {
    let owned: Vec<Value> = PLATFORM_PORTS
        .iter()
        .map(|p| json!({ "minimum": p.range.first, "maximum": p.range.last }))
        .collect();
    let listed: Vec<String> = PLATFORM_PORTS
        .iter()
        .map(|p| format!("{} ({})", p.range, p.name))
        .collect();
    let number = "(0[xX][0-9a-fA-F]+|[0-9]+)";
    json!({
        "type": "array",
        "maxItems": MAX_PORT_RANGES_PER_PARTITION,
        "items": {
            "oneOf": [
                { "type": "string",
                  "pattern": format!("^\\s*{number}\\s*(-\\s*{number}\\s*)?$"),
                  "examples": ["0x2f8-0x2ff", "0x3e8"] },
                { "type": "integer", "minimum": 0, "maximum": 65535,
                  "not": { "anyOf": owned } }
            ]
        },
        "description": format!(
            "I/O port ranges (inclusive) given to this partition alone. Ports the platform owns are refused: {}",
            listed.join(", ")
        )
    })
}

fn closed_object(keys: &[&str], properties: Value, required: &[&str]) -> Value {
    debug_assert!(properties
        .as_object()
        .is_some_and(|p| keys.iter().all(|k| p.contains_key(*k)) && p.len() == keys.len()));
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "required": required
    })
}

/// The JSON Schema (draft 2020-12) of the layout format, pretty-printed.
#[must_use]
pub fn schema() -> String {
    let mut workload_args = Map::new();
    for w in GUEST_KERNEL_WORKLOADS {
        let mut args = Map::new();
        for a in w.args {
            let v = match a.kind {
                ArgKind::Integer { min, max, default } => json!({
                    "type": "integer", "minimum": min, "maximum": max, "default": default, "description": a.doc
                }),
                ArgKind::Choice { choices, default } => json!({
                    "enum": choices, "default": default, "description": a.doc
                }),
            };
            args.insert(a.name.to_owned(), v);
        }
        workload_args.insert(
            w.name.to_owned(),
            json!({ "description": w.doc, "arguments": args, "min_channels": w.min_channels }),
        );
    }
    let machine = closed_object(
        MACHINE_KEYS,
        json!({
            "cpus": { "type": "integer", "minimum": 1, "maximum": MAX_CPUS, "description": "cores the layout needs" },
            "memory": size("RAM of the machine: a multiple of 2 MiB, at most 3 GiB"),
            "timeout": { "type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_SECS, "default": 120,
                         "description": "run timeout in seconds" }
        }),
        &["cpus", "memory"],
    );
    let partition = closed_object(PARTITION_KEYS, partition_properties(), &[]);
    let defaults = closed_object(PARTITION_KEYS, partition_properties(), &[]);
    let channel = closed_object(
        CHANNEL_KEYS,
        json!({
            "between": {
                "type": "array", "minItems": 2, "maxItems": 2,
                "items": { "type": "string" },
                "description": "the two partitions the channel connects"
            },
            "slots": {
                "type": "integer", "minimum": MIN_SLOTS, "maximum": MAX_SLOTS, "default": 64,
                "description": "64-byte slots per direction, a power of two"
            },
            "notify": { "enum": ["ipi", "poll"], "default": "ipi",
                        "description": "how the receiver learns of a message" }
        }),
        &["between"],
    );
    let group = closed_object(
        GROUP_KEYS,
        json!({
            "name": {
                "type": "string",
                "pattern": format!("^[a-z][a-z0-9-]{{0,{}}}$", NAME_MAX_LEN - 1),
                "description": "unique group name"
            },
            "members": {
                "type": "array", "minItems": MIN_GROUP_MEMBERS, "maxItems": MAX_GROUP_MEMBERS,
                "uniqueItems": true, "items": { "type": "string" },
                "description": "the partitions that replicate state; they must be connected by channels among themselves"
            }
        }),
        &["name", "members"],
    );
    let top = closed_object(
        TOP_KEYS,
        json!({
            "machine": machine,
            "defaults": defaults,
            "partition": { "type": "array", "minItems": 1, "maxItems": MAX_PARTITIONS, "items": partition },
            "channel": { "type": "array", "maxItems": MAX_CHANNELS, "items": channel },
            "group": { "type": "array", "maxItems": MAX_GROUPS, "items": group }
        }),
        &["machine", "partition"],
    );
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://flotilla.invalid/schema/layout-v{}.json", crate::LAYOUT_FORMAT_VERSION),
        "title": "Flotilla partition layout",
        "description": "A Flotilla layout (TOML). See docs/layout.md.",
        "x-flotilla-guest-kernel-workloads": workload_args
    });
    if let (Some(r), Some(t)) = (root.as_object_mut(), top.as_object()) {
        for (k, v) in t {
            r.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_string_pretty(&root).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_is_json_and_closed() {
        let s: serde_json::Value = serde_json::from_str(&super::schema()).expect("valid JSON");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(
            s["properties"]["partition"]["items"]["additionalProperties"],
            false
        );
        assert_eq!(
            s["properties"]["channel"]["items"]["properties"]["notify"]["enum"][1],
            "poll"
        );
        let group = &s["properties"]["group"]["items"];
        assert_eq!(group["additionalProperties"], false);
        assert_eq!(group["properties"]["members"]["minItems"], 2);
        assert_eq!(
            s["properties"]["partition"]["items"]["properties"]["on_fault"]["enum"][1],
            "restart"
        );
    }
}
