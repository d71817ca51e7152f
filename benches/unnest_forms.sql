-- Inserting rows bound as arrays, the two forms side by side (docs/benchmarks.md, "Inserts
-- stream their rows"): `FROM UNNEST(...)` (a function scan, rows copied into a tuplestore)
-- against `unnest` in a select list (a ProjectSet, streamed). Run in any scratch database:
--   psql -d DB -f benches/unnest_forms.sql | grep -E 'Function Scan|ProjectSet|temp|Execution'
-- Temporary tables only; nothing is left behind.

-- 1. Rows shaped like the outbox's: 13 columns, a 420-byte JSON payload cast to jsonb.
CREATE TEMP TABLE src AS SELECT 'cpor.' || g || '.rejection_notice.2026-11-25T08:00:00Z@cpor.example' AS m,
  'c' || lpad(g::text, 7, '0') AS c, 'rejection_notice' AS t, now() AS s, 'claim_rejected' AS e,
  'Partner Company Number ' || g AS n, 'partner' || g || '@example.com' AS a, 'sv-SE' AS l,
  '{"kind":"claim_rejected","to":{"name":"Harbor Point Solutions LLC","address":"cpor@harborpoint.example"},"locale":"en-US","claim_id":"CPOR-100007","partner_name":"Harbor Point Solutions LLC","customer_name":"Akerlund & Soner AB","products":"Microsoft 365 E5","info_request_reason":null,"rejection_reason":"no_partner_response","last_day":"2027-01-03","window_end":"2027-01-04T08:00:00Z","time_zone":"America/Los_Angeles"}' AS p,
  now() AS na, '2027-01-03' AS ald, now() AS apa, '2026.1+265d6ede321b13f0' AS cv
  FROM generate_series(1, 5000) g;
CREATE TEMP TABLE dst (m text, c text, t text, s timestamptz, e text, n text, a text, l text,
  p jsonb, na timestamptz, ald text, apa timestamptz, cv text);
PREPARE scan(text[], text[], text[], timestamptz[], text[], text[], text[], text[], text[],
  timestamptz[], text[], timestamptz[], text[]) AS
  INSERT INTO dst SELECT m, c, t, s, e, n, a, l, p::jsonb, na, ald, apa, cv
  FROM UNNEST($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    AS u(m, c, t, s, e, n, a, l, p, na, ald, apa, cv);
PREPARE streamed(text[], text[], text[], timestamptz[], text[], text[], text[], text[], text[],
  timestamptz[], text[], timestamptz[], text[]) AS
  INSERT INTO dst SELECT m, c, t, s, e, n, a, l, p::jsonb, na, ald, apa, cv
  FROM (SELECT unnest($1) AS m, unnest($2) AS c, unnest($3) AS t, unnest($4) AS s,
    unnest($5) AS e, unnest($6) AS n, unnest($7) AS a, unnest($8) AS l, unnest($9) AS p,
    unnest($10) AS na, unnest($11) AS ald, unnest($12) AS apa, unnest($13) AS cv) AS u;
-- In turns, six times each, the table emptied after each run: \gexec runs every column of
-- every row below as a statement, the arrays bound as literals (a custom plan, as the worker's).
SELECT format('EXPLAIN (ANALYZE, BUFFERS) EXECUTE %s(%L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L, %L)',
    form, a.m, a.c, a.t, a.s, a.e, a.n, a.a, a.l, a.p, a.na, a.ald, a.apa, a.cv),
  'TRUNCATE dst'
  FROM (SELECT array_agg(m) AS m, array_agg(c) AS c, array_agg(t) AS t, array_agg(s) AS s,
      array_agg(e) AS e, array_agg(n) AS n, array_agg(a) AS a, array_agg(l) AS l,
      array_agg(p) AS p, array_agg(na) AS na, array_agg(ald) AS ald, array_agg(apa) AS apa,
      array_agg(cv) AS cv FROM src) AS a,
    generate_series(1, 6), unnest(ARRAY['scan', 'streamed']) AS form
\gexec
DEALLOCATE scan;
DEALLOCATE streamed;
DROP TABLE src, dst;

-- 2. Three columns with 1.4 kB of text: a batch past work_mem (4 MB by default).
CREATE TEMP TABLE src AS SELECT 'c' || g AS c, repeat('x', 1400) || g AS p, now() AS t
  FROM generate_series(1, 5000) g;
CREATE TEMP TABLE dst (c text, p jsonb, t timestamptz, k text);
PREPARE scan(text[], text[], timestamptz[]) AS
  INSERT INTO dst SELECT c, to_jsonb(p), t, 'k' FROM UNNEST($1, $2, $3) AS u(c, p, t);
PREPARE streamed(text[], text[], timestamptz[]) AS
  INSERT INTO dst SELECT c, to_jsonb(p), t, 'k'
  FROM (SELECT unnest($1) AS c, unnest($2) AS p, unnest($3) AS t) AS u;
SELECT format('EXPLAIN (ANALYZE, BUFFERS) EXECUTE %s(%L, %L, %L)', form, a.c, a.p, a.t),
  'TRUNCATE dst'
  FROM (SELECT array_agg(c) AS c, array_agg(p) AS p, array_agg(t) AS t FROM src) AS a,
    generate_series(1, 6), unnest(ARRAY['scan', 'streamed']) AS form
\gexec
DEALLOCATE scan;
DEALLOCATE streamed;
DROP TABLE src, dst;
