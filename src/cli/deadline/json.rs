//! The `--batch` JSON fast path: a strict reader for the plain shape of an input line and a
//! writer for the answer. Anything the reader is unsure of (escapes, other value types,
//! duplicate keys, bad numbers) makes it give up, and the caller parses that line with
//! serde_json instead, so answers and error messages are those of serde_json in every case.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate};

use super::Line;

/// Reads `{"key": value, …}` where values are strings without escapes, unsigned integers or
/// `null`; `None` when the line is anything else.
pub(super) fn parse_line(text: &[u8]) -> Option<Line<'_>> {
    let mut r = Reader { s: text, at: 0 };
    let mut line = Fields::default();
    r.ws();
    r.eat(b'{')?;
    r.ws();
    if r.peek()? == b'}' {
        return None;
    }
    loop {
        let key = r.string()?;
        r.ws();
        r.eat(b':')?;
        r.ws();
        let value = r.value()?;
        line.set(key, value)?;
        r.ws();
        match r.next()? {
            b',' => r.ws(),
            b'}' => break,
            _ => return None,
        }
    }
    r.ws();
    if r.at != text.len() {
        return None;
    }
    // Missing optional keys are `None`, as serde's derive makes them; the required ones give
    // up so that serde_json words the error.
    Some(Line {
        country: Cow::Borrowed(line.country?),
        time_zone: line.time_zone.flatten().map(Cow::Borrowed),
        from: Cow::Borrowed(line.from?),
        business_days: line.business_days.flatten(),
        calendar_days: line.calendar_days.flatten(),
    })
}

/// A JSON value of the plain shape.
enum Value<'a> {
    Str(&'a str),
    Int(u32),
    Null,
}

/// The known keys seen so far (`Some` once seen; a second sighting gives up).
#[derive(Default)]
struct Fields<'a> {
    country: Option<&'a str>,
    time_zone: Option<Option<&'a str>>,
    from: Option<&'a str>,
    business_days: Option<Option<u32>>,
    calendar_days: Option<Option<u32>>,
}

impl<'a> Fields<'a> {
    fn set(&mut self, key: &str, value: Value<'a>) -> Option<()> {
        let text = |v: &Value<'a>| match *v {
            Value::Str(s) => Some(s),
            _ => None,
        };
        let count = |v: &Value<'a>| match *v {
            Value::Int(n) => Some(Some(n)),
            Value::Null => Some(None),
            Value::Str(_) => None,
        };
        match key {
            "country" if self.country.is_none() => self.country = Some(text(&value)?),
            "from" if self.from.is_none() => self.from = Some(text(&value)?),
            "time_zone" if self.time_zone.is_none() => {
                self.time_zone = Some(match value {
                    Value::Str(s) => Some(s),
                    Value::Null => None,
                    Value::Int(_) => return None,
                });
            }
            "business_days" if self.business_days.is_none() => {
                self.business_days = Some(count(&value)?)
            }
            "calendar_days" if self.calendar_days.is_none() => {
                self.calendar_days = Some(count(&value)?)
            }
            "country" | "from" | "time_zone" | "business_days" | "calendar_days" => return None,
            _ => {}
        }
        Some(())
    }
}

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    #[inline]
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters, valid UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => {}
            }
        }
        std::str::from_utf8(&self.s[start..self.at - 1]).ok()
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Value::Str),
            b'n' => {
                let end = self.at.checked_add(4)?;
                (self.s.get(self.at..end)? == b"null").then(|| {
                    self.at = end;
                    Value::Null
                })
            }
            b'0'..=b'9' => {
                let start = self.at;
                let mut n: u64 = 0;
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    n = n * 10 + u64::from(d - b'0');
                    if n > u64::from(u32::MAX) {
                        return None;
                    }
                    self.at += 1;
                }
                let digits = self.at - start;
                if (digits > 1 && self.s[start] == b'0')
                    || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
                {
                    return None;
                }
                u32::try_from(n).ok().map(Value::Int)
            }
            _ => None,
        }
    }
}

/// Appends `s` as a JSON string exactly as serde_json writes it.
pub(super) fn push_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        // serde_json writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Appends `d` as serde (chrono) writes a `NaiveDate`: `"YYYY-MM-DD"`.
pub(super) fn push_date(out: &mut Vec<u8>, d: NaiveDate) {
    let y = d.year();
    if !(0..=9999).contains(&y) {
        let _ = serde_json::to_writer(&mut *out, &d);
        return;
    }
    let mut buf = *b"\"0000-00-00\"";
    digits(&mut buf[1..5], y.unsigned_abs());
    digits(&mut buf[6..8], d.month());
    digits(&mut buf[9..11], d.day());
    out.extend_from_slice(&buf);
}

/// Appends `n` in decimal.
pub(super) fn push_u32(out: &mut Vec<u8>, n: u32) {
    let mut buf = [0u8; 10];
    let mut at = buf.len();
    let mut v = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

/// Writes `v` into `slot` as zero-padded decimal digits.
pub(super) fn digits(slot: &mut [u8], v: u32) {
    let mut v = v;
    for b in slot.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}
