//! Events interrupted by a VM exit, and their re-injection.
//!
//! An exit can happen while the processor delivers an event to the guest
//! (an interrupt, an NMI or an exception going through the guest's IDT):
//! the stop NMI arriving then, or a nested page fault on the IDT or the
//! stack. The processor reports the event it was delivering — SVM in
//! EXITINTINFO (AMD APM Vol. 2 §15.7.2), VMX in the IDT-vectoring
//! information and error-code fields (Intel SDM Vol. 3C §28.2.4,
//! "Information for VM Exits During Event Delivery") — and the event is
//! lost unless the hypervisor injects it on the next entry (SVM EVENTINJ,
//! APM §15.20; VMX VM-entry interruption information, exception error code
//! and instruction length, SDM §27.2.3 checks and §27.6 injection). A lost
//! timer interrupt or exception hangs the guest.
//!
//! Raw fields are decoded into an arch-neutral [`PendingEvent`] and encoded
//! back, as plain functions tested against the manuals' bit layouts.

/// The kind of an event being delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A maskable external interrupt (a timer tick, an IPI).
    External,
    /// A non-maskable interrupt.
    Nmi,
    /// A hardware exception (#PF, #GP, #DB from a debug trap, ...).
    Exception,
    /// `INT n` (VMX type 4, SVM type 4).
    SoftwareInterrupt,
    /// `INT1` / ICEBP (VMX type 5 only).
    PrivilegedSoftwareException,
    /// `INT3` or `INTO` (VMX type 6; SVM reports them as type 3).
    SoftwareException,
}

/// An event the processor was delivering when the exit happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    /// What it is.
    pub kind: EventKind,
    /// IDT vector.
    pub vector: u8,
    /// The error code it pushes, if any.
    pub error_code: Option<u32>,
    /// Length of the instruction that raised it (software kinds on VMX,
    /// from the VM-exit instruction-length field; 0 otherwise).
    pub instruction_len: u32,
}

const VALID: u64 = 1 << 31;
const ERROR_CODE_VALID: u64 = 1 << 11;

fn vector(raw: u64) -> u8 {
    (raw & 0xff) as u8
}

fn event_type(raw: u64) -> u64 {
    (raw >> 8) & 0b111
}

/// Decodes SVM EXITINTINFO (APM Vol. 2 §15.7.2; same layout as EVENTINJ,
/// §15.20): bits 7:0 vector, 10:8 type (0 INTR, 2 NMI, 3 exception,
/// 4 software interrupt), bit 11 error code valid, bit 31 valid, bits 63:32
/// error code. `None` when nothing was being delivered or the type is one
/// the APM reserves (1, 5–7).
pub fn decode_svm_exitintinfo(raw: u64) -> Option<PendingEvent> {
    if raw & VALID == 0 {
        return None;
    }
    let kind = match event_type(raw) {
        0 => EventKind::External,
        2 => EventKind::Nmi,
        3 => EventKind::Exception,
        4 => EventKind::SoftwareInterrupt,
        _ => return None,
    };
    Some(PendingEvent {
        kind,
        vector: vector(raw),
        error_code: (raw & ERROR_CODE_VALID != 0).then_some((raw >> 32) as u32),
        instruction_len: 0,
    })
}

/// The EVENTINJ value that re-injects `event` on SVM, or `None` when the
/// event must not be injected but re-raised by re-executing the guest's
/// instruction: `INT n`, `INT3` and `INTO` had not completed, so the saved
/// RIP still points at them and they run again (without next-RIP
/// information an injected software interrupt would push the wrong return
/// address).
pub fn svm_eventinj(event: &PendingEvent) -> Option<u64> {
    let ty = match event.kind {
        EventKind::External => 0,
        EventKind::Nmi => 2,
        // SVM reports INT3 (#BP, 3) and INTO (#OF, 4) as exceptions.
        EventKind::Exception if matches!(event.vector, 3 | 4) => return None,
        EventKind::Exception => 3,
        EventKind::SoftwareInterrupt
        | EventKind::PrivilegedSoftwareException
        | EventKind::SoftwareException => return None,
    };
    let mut raw = VALID | (ty << 8) | u64::from(event.vector);
    if let Some(code) = event.error_code {
        raw |= ERROR_CODE_VALID | (u64::from(code) << 32);
    }
    Some(raw)
}

/// Decodes the VMX IDT-vectoring information field with its error-code
/// field and the VM-exit instruction length (Intel SDM Vol. 3C §28.2.4):
/// bits 7:0 vector, 10:8 type (0 external interrupt, 2 NMI, 3 hardware
/// exception, 4 software interrupt, 5 privileged software exception,
/// 6 software exception), bit 11 error code valid, bit 31 valid. The
/// instruction length is kept for the software types only (§28.2.5).
/// `None` when nothing was being delivered or the type is reserved (1, 7).
pub fn decode_vmx_idt_vectoring(
    info: u32,
    error_code: u32,
    instruction_len: u32,
) -> Option<PendingEvent> {
    let raw = u64::from(info);
    if raw & VALID == 0 {
        return None;
    }
    let kind = match event_type(raw) {
        0 => EventKind::External,
        2 => EventKind::Nmi,
        3 => EventKind::Exception,
        4 => EventKind::SoftwareInterrupt,
        5 => EventKind::PrivilegedSoftwareException,
        6 => EventKind::SoftwareException,
        _ => return None,
    };
    let software = matches!(event_type(raw), 4..=6);
    Some(PendingEvent {
        kind,
        vector: vector(raw),
        error_code: (raw & ERROR_CODE_VALID != 0).then_some(error_code),
        instruction_len: if software { instruction_len } else { 0 },
    })
}

/// The VMX VM-entry fields that re-inject `event`: interruption
/// information, exception error code and instruction length (SDM Vol. 3C
/// §27.6.1; the VM-entry checks of §27.2.1.3 hold for what the processor
/// reported, and are re-checked here: an error code only with a hardware
/// exception, a software event's length in 1..=15). `None` if `event`
/// could not have come from the processor.
pub fn vmx_entry_fields(event: &PendingEvent) -> Option<(u32, u32, u32)> {
    let ty: u32 = match event.kind {
        EventKind::External => 0,
        EventKind::Nmi => 2,
        EventKind::Exception => 3,
        EventKind::SoftwareInterrupt => 4,
        EventKind::PrivilegedSoftwareException => 5,
        EventKind::SoftwareException => 6,
    };
    if event.kind == EventKind::Nmi && event.vector != 2 {
        return None;
    }
    if event.kind == EventKind::Exception && event.vector > 31 {
        return None;
    }
    if event.error_code.is_some() && event.kind != EventKind::Exception {
        return None;
    }
    let software = matches!(ty, 4..=6);
    if software && !(1..=15).contains(&event.instruction_len) {
        return None;
    }
    let mut info = (1 << 31) | (ty << 8) | u32::from(event.vector);
    if event.error_code.is_some() {
        info |= 1 << 11;
    }
    Some((
        info,
        event.error_code.unwrap_or(0),
        if software { event.instruction_len } else { 0 },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, vector: u8, error_code: Option<u32>, len: u32) -> PendingEvent {
        PendingEvent {
            kind,
            vector,
            error_code,
            instruction_len: len,
        }
    }

    #[test]
    fn svm_nothing_pending_without_the_valid_bit() {
        assert_eq!(decode_svm_exitintinfo(0), None);
        assert_eq!(decode_svm_exitintinfo(0x0000_0020), None, "V clear");
        assert_eq!(
            decode_svm_exitintinfo(0x8000_0120),
            None,
            "type 1 is reserved"
        );
    }

    #[test]
    fn svm_external_interrupt_round_trips() {
        // A timer tick on vector 0x20: V | type 0 | vector.
        let raw = 0x8000_0020;
        let e = decode_svm_exitintinfo(raw).unwrap();
        assert_eq!(e, ev(EventKind::External, 0x20, None, 0));
        assert_eq!(svm_eventinj(&e), Some(raw));
    }

    #[test]
    fn svm_page_fault_keeps_its_error_code() {
        // #PF (14) with error code 2: V | EV | type 3 | vector, code in 63:32.
        let raw = (2u64 << 32) | 0x8000_0b0e;
        let e = decode_svm_exitintinfo(raw).unwrap();
        assert_eq!(e, ev(EventKind::Exception, 14, Some(2), 0));
        assert_eq!(svm_eventinj(&e), Some(raw));
    }

    #[test]
    fn svm_nmi_is_reinjected_and_software_events_re_executed() {
        let nmi = decode_svm_exitintinfo(0x8000_0202).unwrap();
        assert_eq!(nmi.kind, EventKind::Nmi);
        assert_eq!(svm_eventinj(&nmi), Some(0x8000_0202));
        let int80 = decode_svm_exitintinfo(0x8000_0480).unwrap();
        assert_eq!(int80, ev(EventKind::SoftwareInterrupt, 0x80, None, 0));
        assert_eq!(svm_eventinj(&int80), None);
        let int3 = decode_svm_exitintinfo(0x8000_0303).unwrap();
        assert_eq!(svm_eventinj(&int3), None, "INT3 runs again");
        let debug_trap = decode_svm_exitintinfo(0x8000_0301).unwrap();
        assert_eq!(svm_eventinj(&debug_trap), Some(0x8000_0301));
    }

    #[test]
    fn vmx_external_interrupt_and_nmi_round_trip() {
        let e = decode_vmx_idt_vectoring(0x8000_0030, 0xdead, 7).unwrap();
        assert_eq!(
            e,
            ev(EventKind::External, 0x30, None, 0),
            "error code and length ignored"
        );
        assert_eq!(vmx_entry_fields(&e), Some((0x8000_0030, 0, 0)));
        let nmi = decode_vmx_idt_vectoring(0x8000_0202, 0, 0).unwrap();
        assert_eq!(vmx_entry_fields(&nmi), Some((0x8000_0202, 0, 0)));
        assert_eq!(decode_vmx_idt_vectoring(0x30, 0, 0), None, "not valid");
        assert_eq!(decode_vmx_idt_vectoring(0x8000_0130, 0, 0), None, "type 1");
        assert_eq!(decode_vmx_idt_vectoring(0x8000_0700, 0, 0), None, "type 7");
    }

    #[test]
    fn vmx_exception_with_error_code_round_trips() {
        // #GP (13) with error code 0x10: valid | deliver-error-code | type 3.
        let e = decode_vmx_idt_vectoring(0x8000_0b0d, 0x10, 0).unwrap();
        assert_eq!(e, ev(EventKind::Exception, 13, Some(0x10), 0));
        assert_eq!(vmx_entry_fields(&e), Some((0x8000_0b0d, 0x10, 0)));
    }

    #[test]
    fn vmx_software_events_carry_their_instruction_length() {
        // INT 0x80 (CD 80): type 4, length 2.
        let int80 = decode_vmx_idt_vectoring(0x8000_0480, 0, 2).unwrap();
        assert_eq!(int80, ev(EventKind::SoftwareInterrupt, 0x80, None, 2));
        assert_eq!(vmx_entry_fields(&int80), Some((0x8000_0480, 0, 2)));
        // INT3 (CC): type 6, length 1; ICEBP (F1): type 5, length 1.
        let int3 = decode_vmx_idt_vectoring(0x8000_0603, 0, 1).unwrap();
        assert_eq!(vmx_entry_fields(&int3), Some((0x8000_0603, 0, 1)));
        let icebp = decode_vmx_idt_vectoring(0x8000_0501, 0, 1).unwrap();
        assert_eq!(icebp.kind, EventKind::PrivilegedSoftwareException);
        assert_eq!(vmx_entry_fields(&icebp), Some((0x8000_0501, 0, 1)));
    }

    #[test]
    fn vmx_entry_refuses_what_the_processor_cannot_report() {
        assert_eq!(
            vmx_entry_fields(&ev(EventKind::SoftwareInterrupt, 0x80, None, 0)),
            None,
            "software event without a length"
        );
        assert_eq!(
            vmx_entry_fields(&ev(EventKind::SoftwareInterrupt, 0x80, None, 16)),
            None
        );
        assert_eq!(
            vmx_entry_fields(&ev(EventKind::External, 0x30, Some(1), 0)),
            None,
            "error code on an interrupt"
        );
        assert_eq!(vmx_entry_fields(&ev(EventKind::Nmi, 3, None, 0)), None);
        assert_eq!(
            vmx_entry_fields(&ev(EventKind::Exception, 32, None, 0)),
            None
        );
    }
}
