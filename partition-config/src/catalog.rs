//! The workload catalog of the built-in guest kernel (`guest-kernel`).
//!
//! Validation type-checks a partition's `args` against the entry of its
//! workload here, and the encoder fills in defaults, so the guest always
//! receives every argument its workload declares. The guest kernel
//! implements exactly these workloads; a change here is a change of the
//! layout contract (`docs/layout.md`).

/// Name of the built-in guest kernel in a layout's `kernel` key.
pub const BUILTIN_KERNEL: &str = "guest-kernel";

/// The type and constraints of one workload argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// An integer in `min..=max`.
    Integer {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
        /// Value when the argument is left out (`None`: required).
        default: Option<i64>,
    },
    /// A string, one of `choices`.
    Choice {
        /// The allowed values.
        choices: &'static [&'static str],
        /// Value when the argument is left out (`None`: required).
        default: Option<&'static str>,
    },
}

/// One argument a workload declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    /// Key in the layout's `args` table.
    pub name: &'static str,
    /// Type and constraints.
    pub kind: ArgKind,
    /// One line for documentation and diagnostics.
    pub doc: &'static str,
}

impl ArgSpec {
    /// Whether the layout must give this argument.
    #[must_use]
    pub const fn is_required(&self) -> bool {
        matches!(
            self.kind,
            ArgKind::Integer { default: None, .. } | ArgKind::Choice { default: None, .. }
        )
    }
}

/// A workload of the built-in guest kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Name in the layout's `workload` key.
    pub name: &'static str,
    /// One line for documentation and diagnostics.
    pub doc: &'static str,
    /// Declared arguments.
    pub args: &'static [ArgSpec],
    /// Fewest channels the partition must be an endpoint of.
    pub min_channels: usize,
    /// The workload every channel peer on the built-in kernel must run
    /// (`pingpong` needs a peer that echoes, `stream` one that receives):
    /// `None` when the workload does not talk over its channels.
    pub peer_workload: Option<&'static str>,
    /// Whether the workload uses its channels at all (a channel between
    /// two partitions whose workloads both do not is warned about).
    pub uses_channels: bool,
}

impl WorkloadSpec {
    /// The declared argument called `name`.
    #[must_use]
    pub fn arg(&self, name: &str) -> Option<&'static ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }
}

/// Attacks the `rogue` workload can try (the guest kernel's
/// `workloads/rogue.rs` implements the same list; `docs/threat-model.md`
/// has the matrix of what each must end in).
pub const ROGUE_ATTACKS: &[&str] = &[
    "write-outside",
    "read-outside",
    "fetch-outside",
    "write-apic-mmio",
    "read-ioapic",
    "read-hpet",
    "write-channel-identity",
    "write-peer-control",
    "write-receive-ring",
    "page-1g-beyond-ram",
    "port-com1",
    "port-debug-exit",
    "port-bochs-shutdown",
    "port-pci-address",
    "port-pci-data",
    "port-reset-cf9",
    "port-a20-92",
    "port-keyboard-64",
    "port-pic",
    "port-pit",
    "port-rtc",
    "port-apm",
    "port-dma",
    "port-fw-cfg",
    "port-debugcon",
    "port-string-io",
    "port-in",
    "msr-vmx-basic",
    "msr-svm-vm-cr",
    "msr-svm-hsave",
    "msr-mtrr-def-type",
    "msr-pat-reserved",
    "msr-efer-svme",
    "msr-tsc",
    "msr-debugctl",
    "msr-pmu-evtsel",
    "msr-pmu-counter",
    "msr-mca-ctl",
    "msr-mcg-status",
    "msr-spec-ctrl",
    "msr-sysenter",
    "apic-base",
    "ipi-non-peer",
    "icr-lowest-priority",
    "icr-smi",
    "icr-nmi",
    "init-non-peer",
    "icr-sipi",
    "icr-self-shorthand",
    "icr-all-including",
    "icr-all-excluding",
    "icr-logical",
    "ipi-nmi-peer",
    "ipi-flood-peer",
    "lvt-timer-smi",
    "lvt-timer-reserved",
    "lvt-error-reserved",
    "lvt-lint0-extint",
    "lvt-thermal-nmi",
    "self-ipi",
    "vmrun",
    "vmload",
    "vmsave",
    "stgi",
    "clgi",
    "skinit",
    "invlpga",
    "vmxon",
    "vmptrld",
    "vmclear",
    "vmread",
    "invept",
    "wrong-hypercall",
    "invd",
    "xsetbv-x87-cleared",
    "xsetbv-avx-without-sse",
    "xsetbv-reserved-bit",
    "xsetbv-avx512-partial",
    "xsetbv-mpx-partial",
    "xsetbv-amx-partial",
    "xsetbv-xcr1",
    "triple-fault",
    "wbinvd-loop",
    "cli-hlt",
    "cpuid-loop",
    "timer-storm",
    "hc-unknown",
    "hc-console-wild-pointer",
    "hc-console-huge-length",
    "hc-console-control",
    "hc-console-flood",
    "hc-result-leading-zero",
    "hc-result-quoted-key",
    "hc-result-long-value",
    "hc-result-channel-pointer",
    "hc-ipi-no-channel",
    "hc-membership-ack-foreign",
    "hc-exit-huge-code",
    "hc-from-ring3",
];

/// Every workload of the built-in guest kernel.
pub const GUEST_KERNEL_WORKLOADS: &[WorkloadSpec] = &[
    WorkloadSpec {
        name: "hello",
        doc: "prints a greeting with its partition, core and memory (then `lines` numbered lines \
              as fast as it can, for console tests), then exits",
        args: &[ArgSpec {
            name: "lines",
            kind: ArgKind::Integer {
                min: 0,
                max: 1_000_000,
                default: Some(0),
            },
            doc: "extra numbered lines to print at once (0: none)",
        }],
        min_channels: 0,
        peer_workload: None,
        uses_channels: false,
    },
    WorkloadSpec {
        name: "compute",
        doc: "counts the primes below `n` (CPU-bound, no VM exits) and reports the count",
        args: &[ArgSpec {
            name: "n",
            kind: ArgKind::Integer {
                min: 1,
                max: 100_000_000,
                default: Some(1_000_000),
            },
            doc: "count the primes below this number",
        }],
        min_channels: 0,
        peer_workload: None,
        uses_channels: false,
    },
    WorkloadSpec {
        name: "rogue",
        doc: "a hostile guest: tries one attack of the threat model's matrix, which must be stopped or refused",
        args: &[ArgSpec {
            name: "attack",
            kind: ArgKind::Choice {
                choices: ROGUE_ATTACKS,
                default: None,
            },
            doc: "which forbidden thing to try",
        }, ArgSpec {
            name: "only_first",
            kind: ArgKind::Choice {
                choices: &["false", "true"],
                default: Some("false"),
            },
            doc: "attack only in the first incarnation; once restarted, exit 0",
        }],
        min_channels: 0,
        peer_workload: None,
        uses_channels: true,
    },
    WorkloadSpec {
        name: "watch",
        doc: "a member of a two-member replication group that checks the hypervisor's membership \
              contract: status page, notification, MEMBERSHIP_ACK, restart and re-attach",
        args: &[
            ArgSpec {
                name: "role",
                kind: ArgKind::Choice {
                    choices: &["survivor", "victim", "vandal"],
                    default: Some("survivor"),
                },
                doc: "victim: faults once (under on_fault = \"restart\"); vandal: the same, by \
                      writing its read-only status page; survivor: watches it",
            },
            ArgSpec {
                name: "rounds",
                kind: ArgKind::Integer {
                    min: 0,
                    max: 1_000_000,
                    default: Some(10),
                },
                doc: "pings over the re-attached channel",
            },
            ArgSpec {
                name: "ack",
                kind: ArgKind::Choice {
                    choices: &["false", "true"],
                    default: Some("true"),
                },
                doc: "whether the survivor acknowledges the epochs",
            },
        ],
        min_channels: 1,
        peer_workload: Some("watch"),
        uses_channels: true,
    },
    WorkloadSpec {
        name: "pingpong",
        doc:
            "bounces a message `rounds` times with each channel peer in turn and reports the round-trip time",
        args: &[ArgSpec {
            name: "rounds",
            kind: ArgKind::Integer {
                min: 1,
                max: 100_000_000,
                default: Some(10_000),
            },
            doc: "round trips",
        }],
        min_channels: 1,
        peer_workload: Some("pingpong"),
        uses_channels: true,
    },
    WorkloadSpec {
        name: "stream",
        doc: "streams `messages` messages over its channels and reports the throughput",
        args: &[ArgSpec {
            name: "messages",
            kind: ArgKind::Integer {
                min: 1,
                max: 100_000_000,
                default: Some(100_000),
            },
            doc: "messages to send",
        }],
        min_channels: 1,
        peer_workload: Some("stream"),
        uses_channels: true,
    },
    WorkloadSpec {
        name: "idle",
        doc:
            "idles with its timer ticking and never exits: a partition for the run timeout to stop",
        args: &[],
        min_channels: 0,
        peer_workload: None,
        uses_channels: false,
    },
    WorkloadSpec {
        name: "replica",
        doc: "runs as a member of a replication group, proposes its deterministic sequence of `updates` \
              to the replicated key-value table and registry and reports the state's hash once \
              every member's updates are applied (every member needs the same `updates`)",
        args: &[
            ArgSpec {
                name: "updates",
                kind: ArgKind::Integer {
                    min: 0,
                    max: 1_000_000,
                    default: Some(100),
                },
                doc: "updates this member proposes",
            },
            ArgSpec {
                name: "fault_after",
                kind: ArgKind::Integer {
                    min: 0,
                    max: 1_000_000,
                    default: Some(0),
                },
                doc: "0: never; k: in the first incarnation only, write outside RAM right after \
                      the k-th update committed",
            },
            ArgSpec {
                name: "retain",
                kind: ArgKind::Integer {
                    min: 1,
                    // A log entry takes about 56 bytes and a repair queues up to
                    // the whole retained log for one neighbour at 64 bytes a
                    // message: 16,384 keeps each under about 1 MiB, which fits
                    // the default 16 MiB partition beside the replicated table
                    // (1,000,000 took 56 MiB for the log alone).
                    max: 16_384,
                    // `replication::Config::default().retain` (checked by a test).
                    default: Some(1024),
                },
                doc: "committed log entries kept for repair; a restarted member further behind \
                      catches up from a snapshot",
            },
            MAX_TICKS_ARG,
        ],
        min_channels: 1,
        peer_workload: Some("replica"),
        uses_channels: true,
    },
    WorkloadSpec {
        name: "shootdown",
        doc: "runs as a member of a replication group whose member 0 invalidates an entry on every member \
              `rounds` times, waiting for every acknowledgement, and reports the cycles per \
              shootdown",
        args: &[
            ArgSpec {
                name: "rounds",
                kind: ArgKind::Integer {
                    min: 1,
                    max: 1_000_000,
                    default: Some(100),
                },
                doc: "shootdowns member 0 makes",
            },
            MAX_TICKS_ARG,
        ],
        min_channels: 1,
        peer_workload: Some("shootdown"),
        uses_channels: true,
    },
];

/// The group workloads' stall limit: below the default run timeout (120 s),
/// so that a stalled member reports its diagnostic line and exit code 8
/// before the run's timeout stops it silently.
const MAX_TICKS_ARG: ArgSpec = ArgSpec {
    name: "max_ticks",
    kind: ArgKind::Integer {
        min: 1,
        max: 86_400_000,
        default: Some(100_000),
    },
    doc: "timer ticks (about 1 ms each) the member may take in all before it reports a stall \
          (exit code 8, with its counters); keep it below the run's `timeout`",
};

/// Workloads that run as a member of a replication group: a partition
/// running one must be in a `[[group]]` (`workload-needs-group`).
pub const GROUP_WORKLOADS: &[&str] = &["replica", "shootdown"];

/// Whether the built-in workload `name` must run in a replication group.
#[must_use]
pub fn needs_group(name: &str) -> bool {
    GROUP_WORKLOADS.contains(&name)
}

/// The built-in guest kernel's workload called `name`.
#[must_use]
pub fn builtin_workload(name: &str) -> Option<&'static WorkloadSpec> {
    GUEST_KERNEL_WORKLOADS.iter().find(|w| w.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        for w in GUEST_KERNEL_WORKLOADS {
            assert!(crate::limits::is_valid_workload_name(w.name));
            assert!(w.args.len() <= crate::limits::MAX_ARGS);
            for a in w.args {
                assert!(crate::limits::is_valid_arg_key(a.name));
                match a.kind {
                    ArgKind::Integer { min, max, default } => {
                        assert!(min <= max);
                        if let Some(d) = default {
                            assert!((min..=max).contains(&d));
                        }
                    }
                    ArgKind::Choice { choices, default } => {
                        if let Some(d) = default {
                            assert!(choices.contains(&d));
                        }
                    }
                }
            }
        }
        assert_eq!(builtin_workload("rogue").map(|w| w.args.len()), Some(2));
        assert!(builtin_workload("rogue").is_some_and(|w| w.args[0].is_required()));
        assert!(builtin_workload("nope").is_none());
        for w in GROUP_WORKLOADS {
            assert!(builtin_workload(w).is_some_and(|w| w.uses_channels));
        }
        assert!(needs_group("replica") && !needs_group("pingpong"));
        // `retain`'s default is the protocol's.
        let retain = builtin_workload("replica").and_then(|w| w.arg("retain"));
        let expected = i64::try_from(replication::Config::default().retain).ok();
        assert!(matches!(
            retain.map(|a| a.kind),
            Some(ArgKind::Integer { default, .. }) if default == expected
        ));
    }
}
