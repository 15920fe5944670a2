//! The fake machine under the policy code: a vCPU that records what the handler did to it, a
//! host with a realistic CPU (its CPUID table, not "everything supported") that records every
//! side effect, guest RAM, and the partition's grants decoded from the input.
//!
//! The fakes stay small on purpose: when `Vcpu`, `ExitHost` or `HypercallHost` grow a
//! method, it is one more field or one more [`HostEffect`] here.

use super::bytes::{Reader, Writer};
use abi::boot::GroupInfo;
use abi::group::{MemberState, StatusPage, STATUS_WORDS};
use abi::hypercall as hc;
use core::sync::atomic::{AtomicU64, Ordering};
use hypervisor::cpuid_policy::GuestFeatures;
use hypervisor::exit_handler::{CpuRefused, ExitHost};
use hypervisor::guest_memory::GuestMemory;
use hypervisor::hypercall::HypercallHost;
use hypervisor::membership;
use hypervisor::partition::{ChannelGrant, Partition};
use hypervisor::vcpu::{Gpr, Vcpu, VmExit};

/// Largest fake guest RAM, in bytes.
pub const MAX_RAM: usize = 4096;
/// Most channel grants a fake partition has.
pub const MAX_CHANNELS: u8 = 4;

/// One host CPU model: the CPUID leaves the handler may ask about.
#[derive(Debug)]
pub struct HostCpu {
    /// Name, for messages.
    pub name: &'static str,
    /// `(leaf, subleaf, [eax, ebx, ecx, edx])`; leaves not listed read as zeros.
    pub leaves: &'static [(u32, u32, [u32; 4])],
    /// Its local APIC's "Max LVT Entry" (version register bits 23:16): 6 with CMCI, 5 without.
    pub max_lvt: u8,
}

const fn word(s: &[u8; 12], i: usize) -> u32 {
    u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]])
}
const fn vendor(s: &[u8; 12]) -> [u32; 3] {
    [word(s, 0), word(s, 4), word(s, 8)]
}
const INTEL: [u32; 3] = vendor(b"GenuineIntel");
const AMD: [u32; 3] = vendor(b"AuthenticAMD");

/// Realistic host CPUs, after real parts (feature words abridged; the XSAVE masks, the VMX, SVM,
/// XSAVE, OSXSAVE and TSC-deadline bits are as on those parts). The first with AMX, the second
/// with MPX and AVX-512, then AMD with AVX-512 and SVM, AMD with AVX only, and a host without
/// XSAVE at all.
pub const HOST_CPUS: &[HostCpu] = &[
    HostCpu {
        name: "intel-sapphire-rapids",
        max_lvt: 6,
        leaves: &[
            (0, 0, [0x20, INTEL[0], INTEL[2], INTEL[1]]),
            (1, 0, [0x0008_06f8, 0x0080_0800, 0x7ffe_fbff, 0xbfeb_fbff]),
            (7, 0, [2, 0xf3bf_fbff, 0x1b41_7ffe, 0xffdc_4432]),
            (0xd, 0, [0x0006_02e7, 0x2b00, 0x2b00, 0]),
            (0xd, 1, [0x1f, 0x2b70, 0x1900, 0]),
            (0x8000_0000, 0, [0x8000_0008, 0, 0, 0]),
            (0x8000_0001, 0, [0, 0, 0x121, 0x2c10_0800]),
        ],
    },
    HostCpu {
        name: "intel-skylake-sp",
        max_lvt: 6,
        leaves: &[
            (0, 0, [0x16, INTEL[0], INTEL[2], INTEL[1]]),
            (1, 0, [0x0005_0654, 0x0020_0800, 0x7ffe_fbff, 0xbfeb_fbff]),
            (7, 0, [0, 0xd19f_ffff, 0x0000_0008, 0xbc00_0000]),
            (0xd, 0, [0x2ff, 0xa88, 0xa88, 0]),
            (0xd, 1, [0xf, 0xa08, 0x100, 0]),
            (0x8000_0000, 0, [0x8000_0008, 0, 0, 0]),
            (0x8000_0001, 0, [0, 0, 0x121, 0x2c10_0800]),
        ],
    },
    HostCpu {
        name: "amd-zen4",
        max_lvt: 5,
        leaves: &[
            (0, 0, [0x10, AMD[0], AMD[2], AMD[1]]),
            (1, 0, [0x00a6_0f12, 0x0010_0800, 0x7ef8_320b, 0x178b_fbff]),
            (7, 0, [1, 0xf1bf_97a9, 0x0040_5fce, 0x1000_0010]),
            (0xd, 0, [0x2e7, 0x988, 0x988, 0]),
            (0xd, 1, [0xf, 0x348, 0x1800, 0]),
            (0x8000_0000, 0, [0x8000_0028, AMD[0], AMD[2], AMD[1]]),
            (0x8000_0001, 0, [0x00a6_0f12, 0, 0x75c2_37ff, 0x2fd3_fbff]),
            (0x8000_000a, 0, [1, 0x8000, 0, 0x1ebf_bcff]),
        ],
    },
    HostCpu {
        name: "amd-zen2",
        max_lvt: 5,
        leaves: &[
            (0, 0, [0x10, AMD[0], AMD[2], AMD[1]]),
            (1, 0, [0x0083_0f10, 0x0010_0800, 0x7ed8_320b, 0x178b_fbff]),
            (7, 0, [0, 0x219c_91a9, 0x0040_0004, 0]),
            (0xd, 0, [0x7, 0x340, 0x380, 0]),
            (0xd, 1, [0xf, 0x340, 0, 0]),
            (0x8000_0000, 0, [0x8000_0020, AMD[0], AMD[2], AMD[1]]),
            (0x8000_0001, 0, [0x0083_0f10, 0, 0x75c2_37ff, 0x2fd3_fbff]),
            (0x8000_000a, 0, [1, 0x8000, 0, 0x0013_bcff]),
        ],
    },
    HostCpu {
        name: "no-xsave",
        max_lvt: 6,
        leaves: &[
            (0, 0, [0xb, INTEL[0], INTEL[2], INTEL[1]]),
            (1, 0, [0x0001_06a5, 0x0010_0800, 0x0098_e3bd, 0xbfeb_fbff]),
            (0x8000_0000, 0, [0x8000_0008, 0, 0, 0]),
            (0x8000_0001, 0, [0, 0, 0x1, 0x2810_0800]),
        ],
    },
];

impl HostCpu {
    /// CPUID as this CPU answers it.
    pub fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let indexed = matches!(leaf, 4 | 7 | 0xb | 0xd | 0xf | 0x10 | 0x12 | 0x14 | 0x1f);
        self.leaves
            .iter()
            .find(|(l, s, _)| *l == leaf && (!indexed || *s == subleaf))
            .map_or([0; 4], |(_, _, regs)| *regs)
    }

    /// The XCR0 components it supports: CPUID.(EAX=0DH,ECX=0) EDX:EAX.
    pub fn xcr0_supported(&self) -> u64 {
        let [eax, _, _, edx] = self.cpuid(0xd, 0);
        (u64::from(edx) << 32) | u64::from(eax)
    }

    /// Whether its APIC timer has TSC-deadline mode (CPUID.01H:ECX[24]).
    pub fn tsc_deadline(&self) -> bool {
        self.cpuid(1, 0)[2] & (1 << 24) != 0
    }
}

/// What the handler made the host do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEffect {
    /// A console line of `partition`.
    Console {
        /// The partition name passed.
        partition: String,
        /// The line.
        line: String,
        /// Whether the console took it (`false`: dropped, over the budget).
        printed: bool,
    },
    /// A fixed IPI.
    Ipi {
        /// Destination x2APIC ID.
        apic_id: u32,
        /// Vector.
        vector: u8,
    },
    /// A local vector table write on this core.
    Lvt {
        /// x2APIC MSR.
        msr: u32,
        /// Value.
        value: u64,
    },
    /// XCR0 loaded on this core.
    Xcr0(u64),
    /// A guest EFER value given to the backend.
    Efer(u64),
    /// A guest PAT value given to the backend.
    Pat(u64),
    /// A write to this core's timer initial count or divide configuration,
    /// with the timer state it met (for the minimum-period oracle).
    Timer {
        /// x2APIC MSR (0x838 or 0x83E).
        msr: u32,
        /// Value written.
        value: u32,
        /// Whether the timer LVT was periodic then.
        periodic: bool,
        /// The initial count then.
        count: u32,
        /// The divide configuration then.
        divide: u32,
    },
    /// The backend turned the count/divide write intercepts on or off.
    TimerIntercept(bool),
}

/// The timer's minimum period in ticks at divide 1 in the fake host.
pub const FAKE_TIMER_FLOOR: u64 = 1000;

/// x2APIC timer MSRs the fake host keeps: LVT, initial count, divide.
const TIMER_MSRS: [u32; 3] = [0x832, 0x838, 0x83e];

/// The fake host.
#[derive(Debug)]
pub struct FakeHost {
    /// Its CPU.
    pub cpu: &'static HostCpu,
    /// Whether the run's timeout asked this partition to stop.
    pub stop: bool,
    /// Every side effect so far.
    pub effects: Vec<HostEffect>,
    /// Console lines it still takes before dropping (`None`: no budget).
    pub console_room: Option<u32>,
    /// The timer LVT, initial count and divide configuration.
    pub timer: [u32; 3],
    /// The hypervisor's own console lines.
    pub notices: Vec<String>,
    /// The compat devices (unused: the fuzzed partition is strict).
    pub platform: hypervisor::compat::Platform,
    /// The one replication group it serves `MEMBERSHIP_ACK` for (`None`:
    /// a host without groups, which refuses every ack).
    pub group: Option<FakeGroup>,
}

/// A real status page (`abi::group`) of group [`FakeGroup::GROUP`], three
/// members, with the caller's group record, behind the real
/// `membership::ack`.
#[derive(Debug)]
pub struct FakeGroup {
    /// The page's words.
    pub words: Vec<AtomicU64>,
    /// The caller's record in that group.
    pub record: GroupInfo,
}

impl FakeGroup {
    /// The group's layout index.
    pub const GROUP: u32 = 1;

    /// The caller is member `seed % 3`; before the calls another member
    /// died and came back `seed / 3 % 4` times (epoch 1..=9).
    pub fn new(seed: u8) -> Self {
        let words: Vec<AtomicU64> = (0..STATUS_WORDS).map(|_| AtomicU64::new(0)).collect();
        let member = u32::from(seed % 3);
        if let Some(page) = StatusPage::new(&words) {
            let _ = page.init(Self::GROUP, &[0, 1, 2]);
            let other = usize::from((seed % 3 + 1) % 3);
            for _ in 0..seed / 3 % 4 {
                let _ = page.member_ended(other, MemberState::Restarting, None);
                let _ = page.member_restarted(other);
            }
        }
        let record = GroupInfo {
            group: Self::GROUP,
            member_id: member,
            member_count: 3,
            vector: u32::from(abi::boot::MEMBERSHIP_VECTOR),
            members: 0b111,
            status_gpa: abi::boot::GROUP_STATUS_GPA,
            name: [0; 32],
            adjacency: [0; 32],
        };
        FakeGroup { words, record }
    }

    /// The page's words now.
    pub fn snapshot(&self) -> Vec<u64> {
        self.words
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .collect()
    }
}

impl FakeHost {
    /// A host with CPU model `index` (modulo the table).
    pub fn new(index: u8, stop: bool) -> Self {
        FakeHost {
            cpu: &HOST_CPUS[usize::from(index) % HOST_CPUS.len()],
            stop,
            effects: Vec::new(),
            console_room: None,
            timer: [1 << 16, 0, 0],
            notices: Vec::new(),
            platform: hypervisor::compat::Platform::default(),
            group: None,
        }
    }
}

impl HypercallHost for FakeHost {
    fn console_line(&mut self, partition: &str, line: &str) -> bool {
        let printed = match self.console_room.as_mut() {
            Some(0) => false,
            Some(room) => {
                *room -= 1;
                true
            }
            None => true,
        };
        self.effects.push(HostEffect::Console {
            partition: partition.to_string(),
            line: line.to_string(),
            printed,
        });
        printed
    }
    fn send_ipi(&mut self, apic_id: u32, vector: u8) {
        self.effects.push(HostEffect::Ipi { apic_id, vector });
    }
    fn membership_ack(&mut self, group: u64, epoch: u64) -> Result<u64, hc::Error> {
        let Some(g) = &self.group else {
            return Err(hc::Error::Denied);
        };
        let page_of = |id: u32| {
            (id == FakeGroup::GROUP)
                .then(|| StatusPage::new(&g.words))
                .flatten()
        };
        membership::ack(&[g.record], page_of, group, epoch)
    }
}

impl ExitHost for FakeHost {
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.cpu.cpuid(leaf, subleaf)
    }
    fn stop_requested(&self) -> bool {
        self.stop
    }
    fn apic_max_lvt(&self) -> u8 {
        self.cpu.max_lvt
    }
    // The fake CPU refuses what a real one would (#GP, caught by the exception fixup); the
    // attempt is still recorded, and the harness reports a value that reached the CPU.
    fn write_lvt(&mut self, msr: u32, value: u32) -> Result<(), CpuRefused> {
        let wide = u64::from(value);
        self.effects.push(HostEffect::Lvt { msr, value: wide });
        let ok = super::oracle::Lvt::of_msr(msr)
            .is_some_and(|lvt| super::oracle::lvt_write_safe(lvt, wide, self.cpu.tsc_deadline()));
        if !ok {
            return Err(CpuRefused);
        }
        if msr == TIMER_MSRS[0] {
            self.timer[0] = value;
        }
        Ok(())
    }
    fn write_xcr0(&mut self, value: u64) -> Result<(), CpuRefused> {
        self.effects.push(HostEffect::Xcr0(value));
        if super::oracle::xcr0_valid(value, self.cpu.xcr0_supported()) {
            Ok(())
        } else {
            Err(CpuRefused)
        }
    }
    fn timer_floor(&self) -> u64 {
        FAKE_TIMER_FLOOR
    }
    fn read_timer(&self, msr: u32) -> u32 {
        TIMER_MSRS
            .iter()
            .position(|m| *m == msr)
            .map_or(0, |i| self.timer[i])
    }
    // Like the CPU: reserved divide bits raise #GP; the attempt is recorded either way.
    fn write_timer(&mut self, msr: u32, value: u32) -> Result<(), CpuRefused> {
        self.effects.push(HostEffect::Timer {
            msr,
            value,
            periodic: super::oracle::timer_periodic(self.timer[0]),
            count: self.timer[1],
            divide: self.timer[2],
        });
        match msr {
            0x838 => self.timer[1] = value,
            0x83e if super::oracle::timer_divide(value).is_some() => self.timer[2] = value,
            _ => return Err(CpuRefused),
        }
        Ok(())
    }
    fn notice(&mut self, line: &str) {
        self.notices.push(line.to_string());
    }
    fn platform(&mut self) -> &mut hypervisor::compat::Platform {
        &mut self.platform
    }
    fn tsc(&self) -> u64 {
        0
    }
}

/// The fake vCPU. Backend writes (EFER, PAT) are logged in `effects` like the host's, so one
/// list says everything an exit changed outside the guest registers.
#[derive(Clone, Debug)]
pub struct FakeVcpu {
    /// rax, rbx, rcx, rdx, rsi, rdi.
    pub regs: [u64; 6],
    /// Guest RIP (never moved: skips are counted instead).
    pub rip: u64,
    /// `skip_instruction` calls.
    pub skipped: u32,
    /// The guest's EFER.
    pub efer: u64,
    /// The guest's PAT.
    pub pat: u64,
    /// The backend (its id answers CPUID `abi::cpuid::LEAF_INTERFACE`).
    pub backend: abi::cpuid::Backend,
    /// Whether control-register emulation succeeds.
    pub cr_ok: bool,
    /// Current privilege level.
    pub cpl: u8,
    /// The guest's CR4 as it sees it.
    pub cr4: u64,
    /// What the backend offers beyond the baseline.
    pub features: GuestFeatures,
    /// EFER and PAT writes, as [`HostEffect::Efer`] / [`HostEffect::Pat`].
    pub effects: Vec<HostEffect>,
}

/// Index of `reg` in [`FakeVcpu::regs`].
pub fn slot(reg: Gpr) -> usize {
    match reg {
        Gpr::Rax => 0,
        Gpr::Rbx => 1,
        Gpr::Rcx => 2,
        Gpr::Rdx => 3,
        Gpr::Rsi => 4,
        Gpr::Rdi => 5,
    }
}

impl Vcpu for FakeVcpu {
    fn run(&mut self) -> VmExit {
        VmExit::Other { code: 0 }
    }
    fn gpr(&self, reg: Gpr) -> u64 {
        self.regs[slot(reg)]
    }
    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        self.regs[slot(reg)] = value;
    }
    fn rip(&self) -> u64 {
        self.rip
    }
    fn skip_instruction(&mut self) {
        self.skipped += 1;
    }
    fn cpl(&self) -> u8 {
        self.cpl
    }
    fn write_efer(&mut self, value: u64) {
        self.efer = value;
        self.effects.push(HostEffect::Efer(value));
    }
    fn read_efer(&self) -> u64 {
        self.efer
    }
    fn read_pat(&self) -> u64 {
        self.pat
    }
    fn write_pat(&mut self, value: u64) {
        self.pat = value;
        self.effects.push(HostEffect::Pat(value));
    }
    fn backend(&self) -> abi::cpuid::Backend {
        self.backend
    }
    fn emulate_control_register_access(&mut self) -> Result<(), &'static str> {
        if self.cr_ok {
            Ok(())
        } else {
            Err("fake: control-register access refused")
        }
    }
    fn guest_cr4(&self) -> u64 {
        self.cr4
    }
    fn guest_features(&self) -> GuestFeatures {
        self.features
    }
    fn intercept_timer_writes(&mut self, intercept: bool) {
        self.effects.push(HostEffect::TimerIntercept(intercept));
    }
    fn inject_exception(&mut self, event: &hypervisor::event::PendingEvent) {
        panic!("a strict partition never gets an exception injected: {event:?}");
    }
    fn pass_tsc_deadline(&mut self) {
        panic!("a strict partition never gets the TSC-deadline MSR");
    }
}

/// Guest RAM. An access the caller did not bounds-check panics (slice indexing), which is a
/// finding: every guest pointer must go through `read_checked`.
#[derive(Debug)]
pub struct FakeMemory(pub Vec<u8>);

impl GuestMemory for FakeMemory {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_unchecked(&self, gpa: u64, out: &mut [u8]) {
        let start = usize::try_from(gpa).expect("read_unchecked outside the fake RAM");
        out.copy_from_slice(&self.0[start..start + out.len()]);
    }
}

/// One channel grant as the input states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Channel index.
    pub channel_id: u8,
    /// Whether it notifies by IPI.
    pub ipi: bool,
    /// The peer's x2APIC ID.
    pub peer_apic_id: u8,
    /// The peer's vector.
    pub peer_vector: u8,
}

/// The partition under test: its core, grants and RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Its own x2APIC ID.
    pub apic_id: u8,
    /// Its channels.
    pub grants: Vec<Grant>,
    /// Its RAM (size and contents).
    pub ram: Vec<u8>,
}

impl Setup {
    /// Decodes: apic id, grant count, grants (4 bytes each), RAM length (u16), RAM bytes.
    pub fn decode(r: &mut Reader) -> Self {
        let apic_id = r.u8();
        let count = r.u8() % (MAX_CHANNELS + 1);
        let grants = (0..count)
            .map(|_| Grant {
                channel_id: r.u8(),
                ipi: r.u8() & 1 != 0,
                peer_apic_id: r.u8(),
                peer_vector: r.u8(),
            })
            .collect();
        let len = usize::from(r.u16()) % (MAX_RAM + 1);
        let mut ram = r.take(len).to_vec();
        ram.resize(len, 0);
        Setup {
            apic_id,
            grants,
            ram,
        }
    }

    /// Encodes in [`Setup::decode`]'s layout.
    pub fn encode(&self, w: &mut Writer) {
        w.u8(self.apic_id);
        w.u8(u8::try_from(self.grants.len()).expect("at most 255 grants"));
        for g in &self.grants {
            w.u8(g.channel_id);
            w.u8(u8::from(g.ipi));
            w.u8(g.peer_apic_id);
            w.u8(g.peer_vector);
        }
        w.u16(u16::try_from(self.ram.len()).expect("at most 64 KiB of RAM"));
        w.bytes(&self.ram);
    }

    /// The hypervisor's view of this partition.
    pub fn partition(&self) -> Partition {
        Partition {
            id: 0,
            name: "fuzzed".to_string(),
            cpu: 0,
            apic_id: u32::from(self.apic_id),
            memory: self.ram.len() as u64,
            compat: false,
            channels: self
                .grants
                .iter()
                .map(|g| ChannelGrant {
                    channel_id: u32::from(g.channel_id),
                    ipi: g.ipi,
                    peer_apic_id: u32::from(g.peer_apic_id),
                    peer_vector: g.peer_vector,
                })
                .collect(),
        }
    }
}
