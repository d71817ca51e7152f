//! The worker's own row states, each an enum whose ids are written once: [`TimerState`] of a
//! `cpor_timers` row, [`OutboxState`] of a `cpor_outbox` row. Statements splice an id as an SQL
//! literal with `timer_state!(Pending)` / `outbox_state!(Sent)`, made from the same list as the
//! enum, so the partial indexes of the migrations (`WHERE state = 'pending'`) still apply.

/// Defines a state enum with [`crate::lifecycle::id_enum`] and, from the same ids, a macro
/// `$sql!(Variant)` that expands to the id as a quoted SQL literal.
macro_rules! state_enum {
    ($(#[$meta:meta])* $name:ident, $sql:ident, $kind:literal,
     { $($(#[$vmeta:meta])* $variant:ident => $id:literal),+ $(,)? }) => {
        crate::lifecycle::id_enum!($(#[$meta])* $name, $kind, { $($(#[$vmeta])* $variant => $id),+ });

        macro_rules! $sql {
            $( ($variant) => { concat!("'", $id, "'") }; )+
        }
        pub(crate) use $sql;
    };
}

state_enum!(
    /// Where a run of a timer stands in `cpor_timers`.
    TimerState, timer_state, "timer state", {
        /// Waiting for its due instant.
        Pending => "pending",
        /// Acted on (its outcome says how).
        Fired => "fired",
        /// Held on first sight: never fired until an operator releases it.
        Held => "held",
    }
);

state_enum!(
    /// Where an email stands in `cpor_outbox`.
    OutboxState, outbox_state, "outbox state", {
        /// Waiting for a delivery attempt.
        Pending => "pending",
        /// Leased to a sender until its lease passes.
        Sending => "sending",
        /// Delivered.
        Sent => "sent",
        /// Dead-lettered: never retried unless an operator retries it.
        Dead => "dead",
        /// Not sent: its not-after instant passed first.
        Expired => "expired",
        /// Not sent: the claim moved on while it waited.
        Withdrawn => "withdrawn",
        /// Not sent: an operator discarded it.
        Discarded => "discarded",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_literals_are_the_enum_ids() {
        assert_eq!(timer_state!(Pending), format!("'{}'", TimerState::Pending));
        assert_eq!(timer_state!(Fired), format!("'{}'", TimerState::Fired));
        assert_eq!(
            outbox_state!(Sending),
            format!("'{}'", OutboxState::Sending)
        );
        assert_eq!(
            outbox_state!(Discarded),
            format!("'{}'", OutboxState::Discarded)
        );
    }
}
