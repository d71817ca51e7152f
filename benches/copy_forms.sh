#!/bin/bash
# Inserting 5,000 outbox-shaped rows three ways, alternated, each in its own transaction:
# binary COPY, INSERT … SELECT unnest(…) from arrays already in a table (so without the bind
# step's parsing of array parameters), text COPY. Into a copy of cpor_outbox's shape holding
# 205,000 rows. Needs a superuser on a local server (server-side COPY to and from DIR).
# usage: PSQL='psql -h /tmp -p 5432 -U postgres -d postgres' benches/copy_forms.sh [DIR]
set -euo pipefail
dir=${1:-/tmp/copy_forms}
mkdir -p "$dir" && chmod 777 "$dir"
cols='message_id, claim_id, timer, started_at, email, to_name, to_address, locale, payload, state, attempts, next_attempt_at, created_at, not_after, announced_last_day, announced_passes_at, calendar_version, template_version'
$PSQL -q <<SQL
DROP TABLE IF EXISTS ob;
CREATE TABLE ob (id BIGSERIAL PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, claim_id TEXT NOT NULL,
  timer TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL, email TEXT NOT NULL, to_name TEXT NOT NULL,
  to_address TEXT NOT NULL, locale TEXT NOT NULL, payload JSONB NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TIMESTAMPTZ NOT NULL, last_error TEXT,
  created_at TIMESTAMPTZ NOT NULL, sent_at TIMESTAMPTZ, not_after TIMESTAMPTZ, announced_last_day TEXT,
  announced_passes_at TIMESTAMPTZ, calendar_version TEXT, template_version TEXT);
CREATE INDEX ON ob (next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX ON ob (claim_id, email, started_at);
CREATE INDEX ON ob (state, id);
CREATE OR REPLACE FUNCTION rows_for(k int) RETURNS TABLE (message_id text, claim_id text, timer text,
  started_at timestamptz, email text, to_name text, to_address text, locale text, payload text, state text,
  attempts int, next_attempt_at timestamptz, created_at timestamptz, not_after timestamptz,
  announced_last_day text, announced_passes_at timestamptz, calendar_version text, template_version text)
LANGUAGE sql AS \$\$
 SELECT 'cpor.c' || lpad(i::text, 7, '0') || '.partner_response_deadline.20261125T070000Z.rejection_notice.' || k || '@cpor.example',
   'c' || lpad(i::text, 7, '0'), 'partner_response_deadline', '2026-11-25T07:00:00Z'::timestamptz + (i || ' s')::interval,
   'rejection_notice', 'Partner AB ' || i, 'partner' || i || '@example.com', 'sv-SE',
   '{"kind":"rejection_notice","to":{"name":"Partner AB ' || i || '","address":"partner' || i || '@example.com"},"locale":"sv-SE","claim_id":"c' || lpad(i::text, 7, '0') || '","partner_name":"Partner AB ' || i || '","customer_name":"Kund ' || i || ' AB","products":"Azure, Microsoft 365","info_request_reason":null,"rejection_reason":"no_partner_response","last_day":"2027-01-05","window_end":"2027-01-05T23:00:00Z","time_zone":"Europe/Stockholm"}',
   'pending', 0, now(), now(), now() + interval '30 days', '2027-01-05', '2027-01-05T23:00:00Z'::timestamptz,
   '2026.1+265d6ede321b13f0', NULL::text
 FROM generate_series(k * 5000, k * 5000 + 4999) i \$\$;
INSERT INTO ob ($cols) SELECT message_id, claim_id, timer, started_at, email, to_name, to_address, locale,
  payload::jsonb, state, attempts, next_attempt_at, created_at, not_after, announced_last_day,
  announced_passes_at, calendar_version, template_version FROM generate_series(1000, 1040) k, rows_for(k);
VACUUM ANALYZE ob;
SQL
for k in $(seq 1 24); do
  echo "COPY (SELECT * FROM rows_for($k)) TO '$dir/$k.txt';"
  echo "COPY (SELECT message_id, claim_id, timer, started_at, email, to_name, to_address, locale, payload::jsonb, state, attempts, next_attempt_at, created_at, not_after, announced_last_day, announced_passes_at, calendar_version, template_version FROM rows_for($k)) TO '$dir/$k.bin' (FORMAT binary);"
  echo "DROP TABLE IF EXISTS arr$k; CREATE TABLE arr$k AS SELECT array_agg(message_id) a1, array_agg(claim_id) a2, array_agg(timer) a3, array_agg(started_at) a4, array_agg(email) a5, array_agg(to_name) a6, array_agg(to_address) a7, array_agg(locale) a8, array_agg(payload) a9, array_agg(not_after) a11, array_agg(announced_last_day) a12, array_agg(announced_passes_at) a13, array_agg(calendar_version) a14, array_agg(template_version) a15 FROM rows_for($k);"
done | $PSQL -q
for k in $(seq 1 24); do
  case $((k % 3)) in
    0) echo "\\echo unnest"
       echo "INSERT INTO ob ($cols) SELECT m, c, t, s, e, n, a, l, p::jsonb, 'pending', 0, now(), now(), na, ald, apa, cv, tv FROM (SELECT unnest(a1) m, unnest(a2) c, unnest(a3) t, unnest(a4) s, unnest(a5) e, unnest(a6) n, unnest(a7) a, unnest(a8) l, unnest(a9) p, unnest(a11) na, unnest(a12) ald, unnest(a13) apa, unnest(a14) cv, unnest(a15) tv FROM arr$k) u;" ;;
    1) echo "\\echo text_copy"; echo "COPY ob ($cols) FROM '$dir/$k.txt';" ;;
    2) echo "\\echo binary_copy"; echo "COPY ob ($cols) FROM '$dir/$k.bin' (FORMAT binary);" ;;
  esac
done | (echo '\timing on'; cat) | $PSQL | grep -v "^COPY\|^INSERT\|Timing" | paste - - | awk '{print $1, $3}' \
  | sort -k1,1 -k2n | awk '{a[$1] = a[$1] " " $2} END {for (k in a) print k ":" a[k] " ms"}'
