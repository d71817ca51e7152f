//! The database behind one interface: PostgreSQL (production) and SQLite (embedded default).
