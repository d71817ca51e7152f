//! The calendars shipped in `config/calendars/`, compiled in so the binary works from any folder.

/// (file name, contents) of every built-in calendar.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "config/calendars/se.toml",
        include_str!("../../config/calendars/se.toml"),
    ),
    (
        "config/calendars/us.toml",
        include_str!("../../config/calendars/us.toml"),
    ),
    (
        "config/calendars/gb.toml",
        include_str!("../../config/calendars/gb.toml"),
    ),
    (
        "config/calendars/de.toml",
        include_str!("../../config/calendars/de.toml"),
    ),
];
