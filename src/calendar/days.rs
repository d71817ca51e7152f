//! The deadline hot path: a calendar's business days as a bit per day (a running count per 64
//! days beside it) and the index of each, read with the zone's compact midnight table, so that
//! [`deadline`] is a handful of reads — no date arithmetic, no time-zone rules, no allocation —
//! in tables small enough to stay in a core's cache: about 250 kB per calendar (nearly all of it
//! the business days' indices) and 84 kB per zone over 1970–2199. Tables per (calendar, zone)
//! pair, 2 MB each, were faster only while one pair was in use: a batch mixing pairs missed the
//! cache on nearly every line.
//!
//! [`deadline`]: super::deadline

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::midnights::Midnights;
use super::zone::{DayCount, Deadline};

/// A calendar's business days over the range, by day index since `RANGE_START`.
pub(super) struct BusinessDays {
    /// Bit `i % 64` of word `i / 64`: day `i` is a business day.
    bits: Box<[u64]>,
    /// Business days in the words before word `w`.
    before: Box<[u32]>,
    /// The day index of the (k+1)-th business day.
    index: Box<[u32]>,
}

impl BusinessDays {
    /// The table of `days` (one flag per day index).
    pub(super) fn new(days: impl IntoIterator<Item = bool>) -> BusinessDays {
        let mut bits: Vec<u64> = Vec::new();
        let mut index = Vec::new();
        for (i, business) in days.into_iter().enumerate() {
            if i % 64 == 0 {
                bits.push(0);
            }
            if business {
                if let Some(w) = bits.last_mut() {
                    *w |= 1 << (i % 64);
                }
                // Ranges longer than u32 days are not built (the range is about 84,000 days).
                index.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
        let mut before = Vec::with_capacity(bits.len());
        let mut count = 0u32;
        for w in &bits {
            before.push(count);
            count += w.count_ones();
        }
        BusinessDays {
            bits: bits.into(),
            before: before.into(),
            index: index.into(),
        }
    }

    /// Business days among day indices `0 ..= i`.
    #[inline(always)]
    fn rank(&self, i: usize) -> Option<u32> {
        let w = *self.bits.get(i / 64)?;
        let upto = w & (u64::MAX >> (63 - i % 64));
        Some(self.before.get(i / 64)? + upto.count_ones())
    }

    /// The deadline of an event at `from`, counted in `zone` (the table of `tz`), or `None`
    /// (use the general path) when anything falls outside the tables.
    #[inline]
    pub(super) fn deadline(
        &self,
        zone: &Midnights,
        tz: Tz,
        from: DateTime<Utc>,
        count: DayCount,
    ) -> Option<Deadline> {
        let i = zone.local_index(from.timestamp())?;
        let last = match count {
            DayCount::Business(n) => {
                let k = (self.rank(i)? as usize + n as usize).checked_sub(1)?;
                *self.index.get(k)? as usize
            }
            DayCount::Calendar(n) => i.checked_add(n as usize)?,
        };
        Some(Deadline {
            from,
            from_date: zone.date_at(i)?,
            last_day: zone.date_at(last)?,
            due: zone.start_at_index(last.checked_add(1)?)?,
            time_zone: tz,
            count,
        })
    }
}
