//! `deadline --batch`: JSON lines in, one JSON line out per line in, in order. Input is read in
//! chunks of whole lines; each chunk is split between the cores, every part answered into its
//! own buffer (plain lines through the fast reader and writer of `json`, the rest through
//! serde_json), and the buffers are written in input order.

use std::io::{Read, Write};

use anyhow::Context;

use super::json;
use super::{Failure, Line, ZoneCache, compute, rfc3339_utc, write_json};
use crate::calendar::{Calendar, Calendars, DayCount, Deadline};

/// Bytes read per chunk (whole lines are carried to the next chunk).
pub(super) const CHUNK: usize = 1 << 20;

/// Answers every line of `input` on `out`, using up to `threads` threads and reading about
/// `chunk` bytes at a time.
pub(super) fn batch(
    cals: &Calendars,
    mut input: impl Read,
    out: &mut impl Write,
    threads: usize,
    chunk: usize,
) -> anyhow::Result<()> {
    let threads = threads.max(1);
    let chunk = chunk.max(1);
    let mut buf: Vec<u8> = Vec::with_capacity(chunk + 4096);
    let mut outs: Vec<Vec<u8>> = (0..threads).map(|_| Vec::new()).collect();
    let mut caches: Vec<ZoneCache> = (0..threads).map(|_| ZoneCache::default()).collect();
    let mut number = 0u64;
    let mut eof = false;
    while !eof {
        // Fill the buffer to `chunk` bytes and at least one newline (or EOF), keeping any
        // partial line from before.
        let mut newline = buf.contains(&b'\n');
        while buf.len() < chunk || !newline {
            let len = buf.len();
            buf.resize(len + (chunk - len.min(chunk)).max(1 << 12), 0);
            let n = loop {
                match input.read(&mut buf[len..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break r.context("reading stdin")?,
                }
            };
            buf.truncate(len + n);
            if n == 0 {
                eof = true;
                break;
            }
            newline = newline || buf[len..].contains(&b'\n');
        }
        // Whole lines only, unless the input has ended.
        let end = match buf.iter().rposition(|&b| b == b'\n') {
            _ if eof => buf.len(),
            Some(i) => i + 1,
            None => continue,
        };
        let parts = split(&buf[..end], threads);
        let counts: Vec<u64> = parts.iter().map(|p| count_lines(p)).collect();
        std::thread::scope(|s| {
            let mut start = number;
            let mut jobs = Vec::new();
            for ((part, lines), (o, zones)) in parts
                .iter()
                .zip(&counts)
                .zip(outs.iter_mut().zip(caches.iter_mut()))
            {
                o.clear();
                jobs.push((*part, start, o, zones));
                start += lines;
            }
            let mut jobs = jobs.into_iter();
            let own = jobs.next();
            for (part, start, o, zones) in jobs {
                s.spawn(move || answer_part(cals, zones, part, start, o));
            }
            if let Some((part, start, o, zones)) = own {
                answer_part(cals, zones, part, start, o);
            }
        });
        for (lines, o) in counts.iter().zip(&outs) {
            number += lines;
            out.write_all(o).context("writing stdout")?;
        }
        buf.drain(..end);
    }
    Ok(())
}

/// `text` cut into at most `n` parts of about equal size, each ending after a newline (the
/// last one where `text` ends).
fn split(text: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut rest = text;
    for k in (1..=n).rev() {
        if rest.is_empty() {
            break;
        }
        if k == 1 {
            parts.push(rest);
            break;
        }
        let target = rest.len() / k;
        let cut = match rest[target..].iter().position(|&b| b == b'\n') {
            Some(i) => target + i + 1,
            None => rest.len(),
        };
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    parts
}

/// Lines in `part`: newlines, plus one for a last line without its newline.
fn count_lines(part: &[u8]) -> u64 {
    let newlines = part.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(part.last().is_some_and(|&b| b != b'\n'))
}

/// Answers each line of `part` (line numbers from `number + 1`) into `out`.
fn answer_part(
    cals: &Calendars,
    zones: &mut ZoneCache,
    part: &[u8],
    number: u64,
    out: &mut Vec<u8>,
) {
    let mut number = number;
    let body = part.strip_suffix(b"\n").unwrap_or(part);
    if part.is_empty() {
        return;
    }
    for line in body.split(|&b| b == b'\n') {
        number += 1;
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        match json::parse_line(text) {
            Some(l) => answer(cals, zones, &l, number, out, push_answer),
            None => answer_line_serde(cals, zones, text, number, out),
        }
    }
}

/// Answers one line through serde_json alone (the reference for the fast path).
pub(super) fn answer_line_serde(
    cals: &Calendars,
    zones: &mut ZoneCache,
    text: &[u8],
    number: u64,
    out: &mut Vec<u8>,
) {
    match serde_json::from_slice::<Line>(text) {
        Ok(l) => answer(
            cals,
            zones,
            &l,
            number,
            out,
            |out, country, cal, from, d| {
                // Writing to a Vec cannot fail.
                let _ = write_json(out, country, cal, from, d);
            },
        ),
        Err(e) => push_failure(out, &format!("bad JSON line: {e}"), number),
    }
}

/// Computes the deadline of `l` and writes it with `write`, or its error line.
fn answer(
    cals: &Calendars,
    zones: &mut ZoneCache,
    l: &Line<'_>,
    number: u64,
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>, &str, &Calendar, &str, &Deadline),
) {
    let count = match (l.business_days, l.calendar_days) {
        (Some(n), None) => DayCount::Business(n),
        (None, Some(n)) => DayCount::Calendar(n),
        _ => {
            return push_failure(out, "give one of business_days or calendar_days", number);
        }
    };
    let tz = l.time_zone.as_deref();
    match compute(cals, zones, &l.country, tz, &l.from, count) {
        Ok((cal, d)) => write(out, &l.country, cal, &l.from, &d),
        Err(e) => push_failure(out, &e, number),
    }
}

/// The error line of input line `number`.
fn push_failure(out: &mut Vec<u8>, error: &str, number: u64) {
    let _ = serde_json::to_writer(
        &mut *out,
        &Failure {
            error,
            line: number,
        },
    );
    out.push(b'\n');
}

/// The answer line, byte for byte what `write_json` writes, without serde.
fn push_answer(out: &mut Vec<u8>, country: &str, cal: &Calendar, from: &str, d: &Deadline) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(b"{\"deadline\":");
    json::push_str(out, &rfc3339_utc(d.due, &mut buf));
    out.extend_from_slice(b",\"last_day\":");
    json::push_date(out, d.last_day);
    out.extend_from_slice(b",\"country\":");
    json::push_str(out, country);
    out.extend_from_slice(b",\"calendar\":");
    json::push_str(out, cal.id());
    out.extend_from_slice(b",\"time_zone\":");
    json::push_str(out, d.time_zone.name());
    out.extend_from_slice(b",\"from\":");
    json::push_str(out, from);
    out.extend_from_slice(b",\"from_date\":");
    json::push_date(out, d.from_date);
    let (key, n): (&[u8], u32) = match d.count {
        DayCount::Business(n) => (b",\"business_days\":", n),
        DayCount::Calendar(n) => (b",\"calendar_days\":", n),
    };
    out.extend_from_slice(key);
    json::push_u32(out, n);
    out.extend_from_slice(b"}\n");
}

/// The sequential reference: every line through serde_json, one at a time.
#[cfg(test)]
pub(super) fn batch_sequential(cals: &Calendars, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut zones = ZoneCache::default();
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if input.is_empty() {
        return out;
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        answer_line_serde(cals, &mut zones, text, i as u64 + 1, &mut out);
    }
    out
}
