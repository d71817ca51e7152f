//! One calendar ready for counting: the holidays of every year in [`RANGE_START`]..=[`RANGE_END`]
//! are generated once at start-up into a `bdays::HolidayCalendarCache`, plus arrays of our own
//! that make "the N-th business day strictly after d0" O(1): the running count of business days
//! per day and the list of business days in order (for dates), and the same in the compact form
//! the deadline hot path reads (`days::BusinessDays`). bdays' own `advance_bdays` steps day by
//! day and rolls a non-business start forward, which is not SPEC §3, so it is not used for adding.

use bdays::{HolidayCalendar, HolidayCalendarCache};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;

use super::CalendarError;
use super::days::BusinessDays;
use super::generate::{Active, Holiday, is_weekend};
use super::rules::CalendarDef;

/// First day the engine counts in O(1).
pub const RANGE_START: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
/// Last day the engine counts in O(1).
pub const RANGE_END: NaiveDate = NaiveDate::from_ymd_opt(2199, 12, 31).expect("valid date");

/// A holiday calendar with its rules in force, counting business days in O(1).
pub struct Calendar {
    def: CalendarDef,
    active: Active,
    cache: HolidayCalendarCache<NaiveDate>,
    /// `rank[i]`: business days in `RANGE_START ..= RANGE_START + i`.
    rank: Vec<u32>,
    /// Every business day in the range, in order.
    bdays: Vec<NaiveDate>,
    /// The same days in the compact form [`super::deadline`] reads.
    business: BusinessDays,
    /// Every holiday in the range, sorted by date.
    holidays: Vec<Holiday>,
    disabled_groups: Vec<String>,
    fingerprint: u64,
}

/// The holiday bitmap the cache is built from.
#[derive(Clone, Copy)]
struct Bits<'a>(&'a [bool]);

impl HolidayCalendar<NaiveDate> for Bits<'_> {
    fn is_holiday(&self, date: NaiveDate) -> bool {
        index(date).is_some_and(|i| self.0[i])
    }
}

/// Position of `date` in the range, if inside it.
#[inline]
fn index(date: NaiveDate) -> Option<usize> {
    let off = date.num_days_from_ce() - RANGE_START.num_days_from_ce();
    let len = RANGE_END.num_days_from_ce() - RANGE_START.num_days_from_ce() + 1;
    (0..len).contains(&off).then_some(off as usize)
}

impl Calendar {
    /// Builds the calendar of `def` with the named groups (without `ID/` prefix) switched off.
    pub fn new(def: CalendarDef, disabled: &[&str]) -> Result<Calendar, CalendarError> {
        Active::new(&def, &[]).check_dates(&def)?;
        let active = Active::new(&def, disabled);
        let mut holidays = Vec::new();
        for y in RANGE_START.year()..=RANGE_END.year() {
            holidays.extend(active.year(y));
        }
        let len = index(RANGE_END).map_or(0, |i| i + 1);
        let mut bits = vec![false; len];
        for h in &holidays {
            if let Some(i) = index(h.date) {
                bits[i] = true;
            }
        }
        let cache = HolidayCalendarCache::new(Bits(&bits), RANGE_START, RANGE_END);
        let mut rank = Vec::with_capacity(len);
        let mut bdays = Vec::with_capacity(len * 5 / 7);
        let mut is_business = Vec::with_capacity(len);
        let mut count = 0u32;
        for d in RANGE_START.iter_days().take(len) {
            let business = cache.is_bday(d);
            if business {
                count += 1;
                bdays.push(d);
            }
            rank.push(count);
            is_business.push(business);
        }
        let business = BusinessDays::new(is_business);
        let fingerprint = fingerprint(&def, &holidays);
        Ok(Calendar {
            def,
            active,
            cache,
            rank,
            bdays,
            business,
            holidays,
            disabled_groups: disabled.iter().map(|g| (*g).to_owned()).collect(),
            fingerprint,
        })
    }

    /// The calendar's id (e.g. `SE`).
    pub fn id(&self) -> &str {
        &self.def.id
    }

    /// Human name (e.g. `Sweden`).
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The default time zone of claims in this calendar.
    pub fn time_zone(&self) -> Tz {
        self.def.time_zone
    }

    /// ISO 3166-1 alpha-2 codes this calendar serves.
    pub fn countries(&self) -> &[String] {
        &self.def.countries
    }

    /// Where the rules come from, as the file says.
    pub fn source(&self) -> &str {
        &self.def.source
    }

    /// The file the calendar was read from (`built-in …` for the embedded ones).
    pub fn origin(&self) -> &str {
        &self.def.origin
    }

    /// Rule groups switched off by `calendars.disabled_groups`.
    pub fn disabled_groups(&self) -> &[String] {
        &self.disabled_groups
    }

    /// Monday–Friday and not a holiday; works for any date (outside the range, slowly).
    ///
    /// ```
    /// # use cpor_worker::calendar::Calendars;
    /// # use chrono::NaiveDate;
    /// let cals = Calendars::builtin().unwrap();
    /// let se = cals.for_country("SE").unwrap();
    /// assert!(!se.is_business_day(NaiveDate::from_ymd_opt(2026, 12, 24).unwrap()));
    /// assert!(se.is_business_day(NaiveDate::from_ymd_opt(2026, 12, 28).unwrap()));
    /// ```
    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        self.is_bday(d)
    }

    /// The N-th business day strictly after `d0` (numpy `busday_offset(d0, n, roll='backward')`);
    /// O(1). `n = 0` gives the last business day on or before `d0`. Errors outside the range.
    ///
    /// ```
    /// # use cpor_worker::calendar::Calendars;
    /// # use chrono::NaiveDate;
    /// let cals = Calendars::builtin().unwrap();
    /// let se = cals.for_country("SE").unwrap();
    /// let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// // Christmas Eve, Christmas, the weekend, New Year's Eve and Day are skipped.
    /// assert_eq!(se.add_business_days(d(2026, 12, 23), 5).unwrap(), d(2027, 1, 5));
    /// // A Saturday start counts from the Monday after.
    /// assert_eq!(se.add_business_days(d(2026, 3, 7), 1).unwrap(), d(2026, 3, 9));
    /// ```
    #[inline]
    pub fn add_business_days(&self, d0: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let Some(i) = index(d0) else {
            return Err(CalendarError::OutOfRange {
                date: d0,
                start: RANGE_START,
                end: RANGE_END,
            });
        };
        (self.rank[i] as usize + n as usize)
            .checked_sub(1)
            .and_then(|k| self.bdays.get(k))
            .copied()
            .ok_or(if n == 0 {
                // No business day on or before d0 in the range (1970-01-01 is a Thursday, so
                // only a calendar that makes it a holiday gets here).
                CalendarError::OutOfRange {
                    date: d0,
                    start: RANGE_START,
                    end: RANGE_END,
                }
            } else {
                CalendarError::PastRange {
                    from: d0,
                    n,
                    start: RANGE_START,
                    end: RANGE_END,
                }
            })
    }

    /// The business days in the form the deadline hot path reads.
    #[inline]
    pub(super) fn business_days(&self) -> &BusinessDays {
        &self.business
    }

    /// Business days in `(a, b]` (negative when `b < a`), so that
    /// `business_days_between(d0, add_business_days(d0, n)) == n` for business-day results.
    ///
    /// ```
    /// # use cpor_worker::calendar::Calendars;
    /// # use chrono::NaiveDate;
    /// let cals = Calendars::builtin().unwrap();
    /// let us = cals.for_country("US").unwrap();
    /// let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    /// // Fri 3 Jul 2026 is Independence Day (observed).
    /// assert_eq!(us.business_days_between(d(2026, 7, 1), d(2026, 7, 8)).unwrap(), 4);
    /// ```
    pub fn business_days_between(&self, a: NaiveDate, b: NaiveDate) -> Result<i64, CalendarError> {
        let r = |d: NaiveDate| {
            index(d)
                .map(|i| i64::from(self.rank[i]))
                .ok_or(CalendarError::OutOfRange {
                    date: d,
                    start: RANGE_START,
                    end: RANGE_END,
                })
        };
        Ok(r(b)? - r(a)?)
    }

    /// The holiday on `d`, if any (the first listed when two coincide); `None` outside the range.
    ///
    /// ```
    /// # use cpor_worker::calendar::Calendars;
    /// # use chrono::NaiveDate;
    /// let cals = Calendars::builtin().unwrap();
    /// let gb = cals.for_country("GB").unwrap();
    /// let h = gb.holiday(NaiveDate::from_ymd_opt(2026, 12, 28).unwrap()).unwrap();
    /// assert_eq!(&*h.name, "Boxing Day (substitute day)");
    /// ```
    pub fn holiday(&self, d: NaiveDate) -> Option<&Holiday> {
        let i = self.holidays.partition_point(|h| h.date < d);
        self.holidays.get(i).filter(|h| h.date == d)
    }

    /// All holidays dated in year `y` (any year), sorted by date, including weekend ones.
    ///
    /// ```
    /// # use cpor_worker::calendar::Calendars;
    /// let cals = Calendars::builtin().unwrap();
    /// let de = cals.for_country("DE").unwrap();
    /// assert_eq!(de.holidays_in_year(2026).len(), 9);
    /// ```
    pub fn holidays_in_year(&self, y: i32) -> Vec<Holiday> {
        self.active.year(y)
    }

    /// A stable hash (FNV-1a) of what the calendar makes of its rules in force over the whole
    /// range — id, time zone, every holiday's date, name and group. It changes exactly when a
    /// pending deadline could change or be explained differently.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The file's own `version` field, if it has one.
    pub fn file_version(&self) -> Option<&str> {
        self.def.version.as_deref()
    }

    /// The version recorded with every deadline: the file's `version` (if any), `+`, and the
    /// content hash ([`Calendar::fingerprint`], 16 hex digits), e.g. `2026.1+3f0c…`.
    pub fn version(&self) -> String {
        match self.file_version() {
            Some(v) => format!("{v}+{:016x}", self.fingerprint),
            None => format!("{:016x}", self.fingerprint),
        }
    }
}

impl HolidayCalendar<NaiveDate> for Calendar {
    fn is_holiday(&self, date: NaiveDate) -> bool {
        if index(date).is_some() {
            self.cache.is_holiday(date)
        } else {
            self.active.year(date.year()).iter().any(|h| h.date == date)
        }
    }

    fn is_bday(&self, date: NaiveDate) -> bool {
        if index(date).is_some() {
            self.cache.is_bday(date)
        } else {
            !is_weekend(date) && !self.is_holiday(date)
        }
    }
}

fn fingerprint(def: &CalendarDef, holidays: &[Holiday]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain([0xff].iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(def.id.as_bytes());
    eat(def.time_zone.name().as_bytes());
    for x in holidays {
        eat(&x.date.num_days_from_ce().to_le_bytes());
        eat(x.name.as_bytes());
        eat(x.group.as_bytes());
    }
    h
}
