//! The last passes of this process, kept in memory for the console's overview.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many passes the overview keeps.
const KEEP: usize = 20;

/// One pass as the overview shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PassRecord {
    /// The instant it acted as of.
    pub at: DateTime<Utc>,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// Timer runs acted on, by `timer: outcome`.
    pub fired: BTreeMap<String, usize>,
    /// Emails delivered.
    pub sent: usize,
    /// Claims skipped with a problem.
    pub problems: usize,
    /// Why the pass failed, if it did.
    pub error: Option<String>,
}

/// The last passes, newest first; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct PassLog(Arc<Mutex<VecDeque<PassRecord>>>);

impl PassLog {
    /// Adds a pass, forgetting the oldest beyond the last few.
    pub fn push(&self, record: PassRecord) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.push_front(record);
        q.truncate(KEEP);
    }

    /// The kept passes, newest first.
    pub fn recent(&self) -> Vec<PassRecord> {
        let q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().cloned().collect()
    }
}
