//! The machine, raw, for the built-in `rogue` workload (feature
//! `hostile`): the forbidden actions of `docs/threat-model.md` as safe
//! functions ([`attack`]), raw hypercalls ([`hv`]), the x2APIC
//! ([`apic`]), the interrupt counters ([`idt`]) and the image's range.
//! Nothing here is meant for an ordinary workload: each function does one
//! thing the hypervisor must stop, refuse or shrug off.

pub use crate::arch::{apic, attack, hv, idt, image_range};
pub use crate::block::non_peer_apic_id;
