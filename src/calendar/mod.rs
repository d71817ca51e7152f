//! Holiday calendars as data, business-day arithmetic and time zones (SPEC §3). Pure.
