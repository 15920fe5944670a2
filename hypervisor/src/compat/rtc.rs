//! A read-only CMOS clock (ports 0x70/0x71): a fixed date plus the seconds
//! since the partition started, BCD, 24-hour, update-in-progress never set
//! (a kernel never waits). Writes are dropped; CMOS RAM reads zero.

use abi::regs::cmos::*;

/// 2026-01-01, in days since 1970-01-01: the start (not the host's time).
pub const EPOCH_DAYS: u64 = 20_454;

/// The index register of the clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rtc {
    index: u8,
}

fn bcd(value: u64) -> u8 {
    // Two decimal digits.
    let v = abi::regs::half::low8(value % 100);
    (v / 10) << 4 | (v % 10)
}

/// The civil date (year, month 1–12, day 1–31) of `days` since 1970-01-01.
pub fn civil_date(days: u64) -> (u64, u64, u64) {
    let mut year = 1970;
    let mut days = days;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let mut month = 1;
    for len in [
        31,
        if is_leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
    ] {
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    (year, month, days + 1)
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

impl Rtc {
    /// A write of `value` to the index port.
    pub fn select(&mut self, value: u8) {
        self.index = value & 0x7f;
    }

    /// A read of the data port, `seconds` after the partition started.
    pub fn read(&self, seconds: u64) -> u8 {
        let days = EPOCH_DAYS + seconds / 86_400;
        let secs = seconds % 86_400;
        let (year, month, day) = civil_date(days);
        match self.index {
            SECONDS => bcd(secs % 60),
            MINUTES => bcd(secs / 60 % 60),
            HOURS => bcd(secs / 3600),
            // Day of the week, 1 = Sunday; 1970-01-01 was a Thursday.
            WEEKDAY => bcd((days + 4) % 7 + 1),
            DAY => bcd(day),
            MONTH => bcd(month),
            YEAR => bcd(year % 100),
            STATUS_A => STATUS_A_VALUE,
            STATUS_B => STATUS_B_VALUE,
            STATUS_D => STATUS_D_VALUE,
            CENTURY => bcd(year / 100),
            _ => 0, // alarms, register C, CMOS RAM
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(rtc: &mut Rtc, index: u8, seconds: u64) -> u8 {
        rtc.select(index);
        rtc.read(seconds)
    }

    #[test]
    fn the_clock_starts_on_new_year_2026_and_counts_seconds() {
        let mut rtc = Rtc::default();
        let at = |rtc: &mut Rtc, s| [0x32, 9, 8, 7, 4, 2, 0, 6].map(|i| read(rtc, i | 0x80, s));
        // 2026-01-01 was a Thursday (weekday 5 with Sunday = 1).
        assert_eq!(at(&mut rtc, 0), [0x20, 0x26, 0x01, 0x01, 0, 0, 0, 5]);
        assert_eq!(
            at(&mut rtc, 86_400 * 59 + 3600 * 23 + 60 * 59 + 58),
            [0x20, 0x26, 0x03, 0x01, 0x23, 0x59, 0x58, 1],
            "59 days on: March 1st (2026 is no leap year), a Sunday"
        );
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(EPOCH_DAYS + 365), (2027, 1, 1));
    }

    #[test]
    fn no_update_is_ever_in_progress() {
        let mut rtc = Rtc::default();
        assert_eq!(read(&mut rtc, 0x0a, 12345) & 0x80, 0, "UIP clear");
        assert_eq!(read(&mut rtc, 0x0b, 0), 0x02, "24 h, BCD");
        assert_eq!(read(&mut rtc, 0x0d, 0), 0x80, "valid RAM and time");
        assert_eq!(read(&mut rtc, 0x0c, 0), 0, "no interrupt flags");
        assert_eq!(read(&mut rtc, 0x40, 0), 0, "CMOS RAM reads zero");
    }
}
