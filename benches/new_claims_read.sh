#!/bin/bash
# Reading a page of 5,000 claims new to the worker (no sync row) three ways, alternated, eight
# of each, as a sync page's transaction reads them (enable_seqscan off): by id with the custom
# plans a connection makes for a statement's first five executions, by id with the generic
# plan it settles on, and by their id range merged with the sync rows of the same range (what
# src/store/sync_page.rs does for a page of many new claims; its plans chosen as the worker's
# are, custom for the first five executions, then generic if that is no dearer). Tables of the shape of `claims`
# and `cpor_claim_sync`: 1,000,000 claims, the first half with a sync row (KEEP=1 keeps them).
# usage: PSQL='psql -h /tmp -p 5432 -U postgres -d postgres' benches/new_claims_read.sh
set -euo pipefail
$PSQL -q <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS nc_claims, nc_sync;
CREATE TABLE nc_claims (id TEXT PRIMARY KEY, status TEXT NOT NULL, partner_name TEXT,
  partner_email TEXT, customer_name TEXT, customer_email TEXT, products TEXT, country TEXT,
  locale TEXT, submitted_at TIMESTAMPTZ, review_started_at TIMESTAMPTZ, updated_at TIMESTAMPTZ,
  version BIGINT NOT NULL);
INSERT INTO nc_claims SELECT 'c' || lpad(g::text, 8, '0'), 'submitted', 'Partner ' || g,
  'p' || g || '@partner.example', 'Customer ' || g, 'c' || g || '@customer.example',
  'Dynamics 365 Sales', 'SE', 'en', now(), now(), now(), 1 FROM generate_series(1, 1000000) g;
CREATE TABLE nc_sync (claim_id TEXT PRIMARY KEY, version BIGINT NOT NULL, fingerprint TEXT NOT NULL,
  dirty BOOLEAN NOT NULL DEFAULT FALSE, dirty_gen BIGINT NOT NULL DEFAULT 0, problem TEXT,
  synced_at TIMESTAMPTZ NOT NULL);
INSERT INTO nc_sync SELECT id, 1, 'fp', FALSE, 0, NULL, now() FROM nc_claims WHERE id <= 'c00500000';
VACUUM ANALYZE nc_claims;
VACUUM ANALYZE nc_sync;
SQL
select='SELECT c.*, s.version AS sync_version, s.fingerprint, s.problem FROM nc_claims c LEFT JOIN nc_sync s ON s.claim_id = c.id'
ids() { # the 5,000 ids from $1 on, as an array literal
  seq "$1" $(($1 + 4999)) | awk '{printf "%sc%08d", (NR > 1 ? "," : "'"'"'{"), $1} END {print "}'"'"'"}'
}
{
  echo '\timing on'
  echo "BEGIN; SET LOCAL enable_seqscan = off;"
  echo "PREPARE custom(text[]) AS $select WHERE c.id = ANY(\$1) AND s.claim_id IS NULL ORDER BY c.id;"
  echo "PREPARE generic(text[]) AS $select WHERE c.id = ANY(\$1) AND s.claim_id IS NULL ORDER BY c.id;"
  echo "PREPARE range(text, text, bigint) AS $select AND s.claim_id >= \$1 AND s.claim_id <= \$2 WHERE c.id >= \$1 AND c.id <= \$2 ORDER BY c.id LIMIT \$3;"
  for k in $(seq 0 23); do
    from=$((500001 + k * 20000))
    case $((k % 3)) in
      0) echo "SET LOCAL plan_cache_mode = force_custom_plan;"; echo "\\echo by_id_custom_plan"
         echo "EXECUTE custom($(ids $from));" ;;
      1) echo "SET LOCAL plan_cache_mode = force_generic_plan;"; echo "\\echo by_id_generic_plan"
         echo "EXECUTE generic($(ids $from));" ;;
      2) echo "RESET plan_cache_mode;"; echo "\\echo by_range"; printf "EXECUTE range('c%08d', 'c%08d', 10000);\n" $from $((from + 4999)) ;;
    esac
  done
  echo "COMMIT;"
} | $PSQL -o /dev/null -f - | awk '/^by_/ {label = $1; next} /^Time:/ && label {print label, $2; label = ""}' \
  | sort -k1,1 -k2n \
  | awk '{a[$1] = a[$1] " " $2; n[$1]++; v[$1, n[$1]] = $2}
         END {for (k in a) printf "%s:%s ms (median %s)\n", k, a[k], (v[k, 4] + v[k, 5]) / 2}'
[ -n "${KEEP:-}" ] || $PSQL -q -c 'DROP TABLE nc_claims, nc_sync'
