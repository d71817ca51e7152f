//! The deadline hot path: one table per (calendar, zone), built on first use from the zone's
//! midnight table and the calendar's running business-day count, so that [`deadline`] is a
//! handful of array reads — no date arithmetic, no time-zone rules, no allocation.
//!
//! [`deadline`]: super::deadline

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use super::RANGE_START;
use super::midnights::Midnights;
use super::zone::{DayCount, Deadline};

/// One local day of the range: 12 bytes.
#[derive(Clone, Copy)]
struct Day {
    /// Its first instant, as Unix seconds minus `86_400 · index` (fits ±26 h): the range starts
    /// at the Unix epoch.
    delta: i32,
    /// Business days of the calendar in `RANGE_START ..= this day`.
    rank: u32,
    /// The day itself.
    date: NaiveDate,
}

/// One business day of the range with the answer a deadline ending on it gives: 16 bytes.
#[derive(Clone, Copy)]
struct BusinessDay {
    /// The first instant of the next local day.
    due: DateTime<Utc>,
    /// The day itself.
    date: NaiveDate,
}

/// The local days of one calendar in one zone, `RANGE_START ..= RANGE_END + 1`, and its
/// business days in order: a business-day deadline reads one `Day` and one `BusinessDay`.
pub(super) struct DayTable {
    days: Box<[Day]>,
    bdays: Box<[BusinessDay]>,
    zone: &'static Midnights,
    tz: Tz,
}

impl DayTable {
    /// Combines a zone's midnights with a calendar's running count (`rank[i]` per day index)
    /// and its business days (`bday_index[k]`: day index of the (k+1)-th).
    pub(super) fn build(
        tz: Tz,
        zone: &'static Midnights,
        rank: &[u32],
        bday_index: &[u32],
    ) -> Option<DayTable> {
        let starts = zone.starts();
        let mut days = Vec::with_capacity(starts.len());
        let mut date = RANGE_START;
        let mut last_rank = 0;
        for (i, &start) in starts.iter().enumerate() {
            let base = 86_400 * i64::try_from(i).ok()?;
            last_rank = rank.get(i).copied().unwrap_or(last_rank);
            days.push(Day {
                delta: i32::try_from(start - base).ok()?,
                rank: last_rank,
                date,
            });
            date = date.checked_add_days(Days::new(1))?;
        }
        let bdays = bday_index
            .iter()
            .map(|&i| {
                let i = i as usize;
                Some(BusinessDay {
                    due: zone.start_at_index(i + 1)?,
                    date: days.get(i)?.date,
                })
            })
            .collect::<Option<Box<[_]>>>()?;
        Some(DayTable {
            days: days.into_boxed_slice(),
            bdays,
            zone,
            tz,
        })
    }

    /// Unix seconds of the first instant of local day `i`.
    #[inline(always)]
    fn start(&self, i: usize) -> i64 {
        86_400 * i as i64 + i64::from(self.days[i].delta)
    }

    /// The deadline of an event at `from`, or `None` (use the general path) when anything
    /// falls outside the table.
    #[inline]
    pub(super) fn deadline(&self, from: DateTime<Utc>, count: DayCount) -> Option<Deadline> {
        let secs = from.timestamp();
        let len = self.days.len();
        if secs < self.start(0) || secs >= self.start(len - 1) {
            return None;
        }
        // Local days are 0–25 hours long: the estimate is at most a day or two off.
        let mut i = ((secs.max(0) / 86_400) as usize).min(len - 2);
        while i > 0 && self.start(i) > secs {
            i -= 1;
        }
        while i + 2 < len && self.start(i + 1) <= secs {
            i += 1;
        }
        let day = self.days[i];
        let (last_day, due) = match count {
            DayCount::Business(n) => {
                let k = (day.rank as usize + n as usize).checked_sub(1)?;
                let b = self.bdays.get(k)?;
                (b.date, b.due)
            }
            DayCount::Calendar(n) => {
                let last = i.checked_add(n as usize)?;
                if last + 1 >= len {
                    return None;
                }
                (self.days[last].date, self.zone.start_at_index(last + 1)?)
            }
        };
        Some(Deadline {
            from,
            from_date: day.date,
            last_day,
            due,
            time_zone: self.tz,
            count,
        })
    }
}
